#!/usr/bin/python
# -*- coding: utf-8 -*-
import socket,os,sys
def enc(strr):
    aa = strr.encode('utf-8')
    return aa
if __name__ == '__main__':
    port = int(sys.argv[1])
    ip_port = ('127.0.0.1',port)
    sock = socket.socket(socket.AF_INET,socket.SOCK_DGRAM)
    sock.bind(ip_port)
    while True:
        print('server is running...')
        dat, address = sock.recvfrom(1024)
        data = dat.decode('utf-8')
        send_str = ''
        print(data,address)
        if data == 'exit':
            break
        if data == 'exit':
            break
        elif len(data) == '0':
            send_str = enc('0 ni mei...')
        elif data.find('nihao') >= 0 :
            send_str = enc('hello,baby,nihao')
        elif data.find('sb') >= 0 :
            send_str = enc('sb,to you')
        else:
            send_str = enc('input exit to exit')
        sock.sendto(send_str,address)
    sock.close()

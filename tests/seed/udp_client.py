#!/usr/bin/python
# -*- coding: utf-8 -*-
import socket,os,sys
port = int(sys.argv[1])
ip_port = ('127.0.0.1',port)
sk = socket.socket(socket.AF_INET,socket.SOCK_DGRAM)
while True:
    inp = input('请输入:').strip()
    if inp == 'exit':
        break
    inpp = inp.encode('utf-8')
    sk.sendto(inpp,ip_port)
    data,address = sk.recvfrom(1024)
    print(data.decode('utf-8'),address)
sk.close()

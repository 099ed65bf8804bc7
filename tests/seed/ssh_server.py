#!/usr/bin/python
# -*- coding: utf-8 -*-
import socket,os,sys,subprocess,time
def main():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(ip_port)
    sock.listen(5)
    print('server is running...')
    while True:
        connection, address = sock.accept()
        while True:
            buf = connection.recv(1024)
            if not buf:
                break
            print("recv cmd:",str(buf,'utf-8'))
            cmd = str(buf,'utf-8').strip()
            cmd_call = subprocess.Popen(cmd,shell=True,stdout=subprocess.PIPE)
            cmd_result = cmd_call.stdout.read()
            if len(cmd_result) == 0:
                cmd_result = b"cmd execution has no output..."
            ack_msg = "CMD_RESULT_SIZE|%s" % len(cmd_result)
            print(ack_msg)
            connection.send(bytes(ack_msg,'utf8'))
            ack_re = connection.recv(50)
            print(ack_re)
            connection.send(cmd_result)
        connection.close()
if __name__ == '__main__':
    port = int(sys.argv[1])
    ip_port = ('127.0.0.1',port)
    main()

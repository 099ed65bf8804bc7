#!/usr/bin/python
# -*- coding: utf-8 -*-
import socket,os,sys
port = int(sys.argv[1])
ip_port = ('127.0.0.1',port)
while True:
    sk = socket.socket()
    sk.connect(ip_port)
    inp = input('please input the info : ').strip()
    sk.sendall(('%s' % inp ).encode('utf-8'))
    #sk.sendall('nihao'.encode('utf-8'))
    if inp == 'exit':
        break
    server_reply = sk.recv(1024)
    print(server_reply)
    sk.close()

#!/usr/bin/python
# -*- coding: utf-8 -*-
import socket,os,sys
port = int(sys.argv[1])
ip_port = ('127.0.0.1',port)
sk = socket.socket()
sk.connect(ip_port)
while True:
    inp = input('cmd : ').strip()
    if len(inp) == 0:
        continue
    if inp == 'q':
        break
    sk.send(bytes(inp,'utf8'))
    data = sk.recv(1024)
    print("server reply:",str(data,'utf8'))
sk.close()

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
    server_ack_msg = sk.recv(100)
    cmd_res_msg = server_ack_msg.decode().split("|")
    print(cmd_res_msg)
    if cmd_res_msg[0] == "CMD_RESULT_SIZE":
        cmd_res_size = int(cmd_res_msg[1])
        ack_re = sk.send(b'CMD_RESULT')
        res = ''
        recv_size = 0
        while recv_size < cmd_res_size:
            server_reply = sk.recv(500)
            recv_size += len(server_reply)
            res += str(server_reply,'utf8')
        else:
            print(res)
            print('==========recv done=========')
sk.close()

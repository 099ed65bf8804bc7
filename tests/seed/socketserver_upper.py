#!/usr/bin/python
# -*- coding: utf-8 -*-
import socketserver,os,sys
class MyTCPHandler(socketserver.BaseRequestHandler):
    def handle(self):
        print("new conn:",self.client_address)
        while True:
            data = self.request.recv(1024).strip()
            if not data:
                break
            print([self.client_address],data)
            self.request.sendall(data.upper())
if __name__ == '__main__':
    port = int(sys.argv[1])
    ip_port = ('127.0.0.1',port)
    server = socketserver.ThreadingTCPServer(ip_port, MyTCPHandler) #多线程实现并发
    #server = socketserver.ForkingTCPServer(ip_port, MyTCPHandler) #多进程实现并发
    #server = socketserver.TCPServer(ip_port, MyTCPHandler) #单进程的阻塞模式
    server.serve_forever()

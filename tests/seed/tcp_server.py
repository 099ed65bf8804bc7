#!/usr/bin/python
# -*- coding: utf-8 -*-
import socket,os,sys
def handle_request(client,address):
    buf = client.recv(1024)
    print(buf,address)
    client.sendall(("your input is %s" % buf).encode('utf-8'))
def main():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(ip_port)
    sock.listen(5)
    while True:
        print('server is running...')
        connection, address = sock.accept()
        handle_request(connection,address)
        connection.close()
if __name__ == '__main__':
    port = int(sys.argv[1])
    ip_port = ('127.0.0.1',port)
    main()

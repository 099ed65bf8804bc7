#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The seed's socketserver.ThreadingTCPServer, as an echo server.

As in the seed (socketserver_upper.py) but echoing bytes unchanged and with
request_queue_size raised from Python's default of 5: with 1000 clients
connecting at once, a backlog of 5 makes connections time out.
usage: seed_threading_echo.py [PORT]
"""
import socket
import socketserver
import sys


class EchoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            data = self.request.recv(65536)
            if not data:
                break
            self.request.sendall(data)


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 4096


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    with Server(("127.0.0.1", port), EchoHandler) as server:
        sys.stderr.write("seed_threading_echo: listening on tcp://127.0.0.1:%d\n"
                         % server.server_address[1])
        sys.stderr.flush()
        server.serve_forever()

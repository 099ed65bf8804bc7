#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""asyncio echo server on uvloop (Debian's python3-uvloop, for /usr/bin/python3).

A Protocol, not streams: the fastest way asyncio serves an echo, and the way
uvloop's own benchmarks write it.
usage: uvloop_echo.py [PORT]
"""
import asyncio
import socket
import sys

import uvloop


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data):
        self.transport.write(data)


async def main(port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", port, backlog=4096)
    bound = server.sockets[0].getsockname()[1]
    sys.stderr.write("uvloop_echo: listening on tcp://127.0.0.1:%d\n" % bound)
    sys.stderr.flush()
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.install()
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))

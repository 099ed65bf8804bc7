# SPDX-License-Identifier: MIT
"""CLI.md's seed table, server side: each sockserve server command against the
seed's own Python client on the other end (`sockserve connect` against the
seed's servers is tested with connect).

ctest-labels: tsan
"""
import signal
import socket

import sstest
from sstest import SLOW


def port_of(address):
    return sstest.split_inet(address)[1]


class SeedRows(sstest.TestCase):

    def test_tcp_server_row_with_seed_tcp_client(self):
        # TCP server ("your input is ...")
        p, bound = self.server("echo", "--prefix", "your input is ", "--once", "--model",
                               "serial", "tcp://127.0.0.1:0")
        c = self.seed_py("tcp_client.py", port_of(bound))
        c.write(b"hello\n")
        c.wait_out(b"your input is hello")
        c.write(b"  two words  \n")  # the seed's client strips
        c.wait_out(b"your input is two words'")
        c.write(b"exit\n")  # sent, then the client stops without reading
        self.assertEqual(c.wait(), 0, c.err_lines)
        self.assertIn(b"b'your input is hello'", c.out_data)
        # the server survives the client's goodbye and serves the next one
        with sstest.connect(bound) as s:
            s.sendall(b"next")
            self.assertEqual(s.recv(100), b"your input is next")
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(), 0)

    def test_udp_server_row_with_seed_udp_client(self):
        p, bound = self.server("reply", "udp://127.0.0.1:0", "--rule",
                               "nihao=hello,baby,nihao", "--rule", "sb=sb,to you",
                               "--default", "input exit to exit", "--stop-word", "exit")
        c = self.seed_py("udp_client.py", port_of(bound))
        c.write("nihao\n".encode())
        c.wait_out(b"hello,baby,nihao ('127.0.0.1', %d)" % port_of(bound))
        c.write(b"you are sb\n")
        c.wait_out(b"sb,to you")
        c.write(b"anything\n")
        c.wait_out(b"input exit to exit")
        c.write(b"exit\n")  # the seed's client stops here, without sending it
        self.assertEqual(c.wait(), 0, c.err_lines)
        self.assertIsNone(p.p.poll())
        # the seed's server stopped on "exit": so does ours, with exit 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"exit", ("127.0.0.1", port_of(bound)))
        self.assertEqual(p.wait(), 0, p.err_lines)

    def test_socketserver_row_with_seed_client(self):
        p, bound = self.server("echo", "--upper", "--model", "threading", "tcp://127.0.0.1:0")
        clients = [self.seed_py("socketserver_client.py", port_of(bound)) for _ in range(3)]
        for i, c in enumerate(clients):  # three at once: the threading model
            c.write(b"hello %d\n" % i)
        for i, c in enumerate(clients):
            c.wait_out(b"server reply: HELLO %d" % i)
        for c in clients:
            c.write(b"\nsecond\nq\n")  # empty lines are skipped by the client
            c.wait_out(b"server reply: SECOND")
            self.assertEqual(c.wait(), 0, c.err_lines)
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(), 0, p.err_lines)

    def test_make_run_server_serves_the_upper_case_client(self):
        # `make run` is `sockserve echo` on tcp://127.0.0.1:9999; here on port 0,
        # with --upper so the seed's socketserver client sees its upper-case answers
        p, bound = self.server("echo", "--upper", "tcp://127.0.0.1:0")
        c = self.seed_py("socketserver_client.py", port_of(bound))
        c.write(b"make run\nq\n")
        c.wait_out(b"server reply: MAKE RUN")
        self.assertEqual(c.wait(), 0)

    def test_make_run_default_address(self):
        # the real default, only when nobody else holds port 9999 right now
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", 9999))
            except OSError:
                self.skipTest("port 9999 is busy")
        p = self.sockserve("echo")
        try:
            bound = p.wait_listening()
        except AssertionError:
            if any("Address already in use" in l for l in p.err_lines):
                self.skipTest("port 9999 was taken meanwhile")
            raise
        self.assertEqual(bound, "tcp://127.0.0.1:9999")
        with sstest.connect(bound) as s:
            s.sendall(b"ping")
            self.assertEqual(s.recv(10), b"ping")
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(), 0)


if __name__ == "__main__":
    sstest.main()

# SPDX-License-Identifier: MIT
"""examples/: each C program against the seed's Python program on the other
end, in both directions, and against its C partner.

ctest-labels: tsan
"""
import os
import re
import signal
import socket
import subprocess
import time

import sstest
from sstest import SLOW

EXAMPLES = os.path.join(sstest.BUILD_DIR, "examples")


def example(name):
    return os.path.join(EXAMPLES, name)


def wait_port(port, kind=socket.SOCK_STREAM, timeout=10.0):
    """Wait until a seed server (which cannot report its port) listens."""
    def up():
        if kind == socket.SOCK_DGRAM:
            return any(":%04X " % port in line for line in open("/proc/net/udp"))
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0
    if not sstest.wait_until(up, timeout):
        raise AssertionError("nothing listens on port %d" % port)


class Examples(sstest.TestCase):

    def example_server(self, name, address):
        p = self.start([example(name), address], stdin=subprocess.PIPE)
        p.wait_out(b"server is running on ")
        m = re.search(rb"server is running on (\S+?)\.\.\.", p.out_data)
        return p, m.group(1).decode()

    def client(self, name, address):
        return self.start([example(name), address], stdin=subprocess.PIPE)

    # ---- the "your input is" pair ------------------------------------------

    def test_tcp_server_with_seed_client(self):
        srv, bound = self.example_server("tcp_server", "tcp://127.0.0.1:0")
        c = self.seed_py("tcp_client.py", sstest.split_inet(bound)[1])
        c.write(b"hello\nworld\nexit\n")
        self.assertEqual(c.wait(), 0, c.err_lines)
        self.assertIn(b"b'your input is hello'", c.out_data)
        self.assertIn(b"b'your input is world'", c.out_data)
        srv.wait_out(b"hello tcp://127.0.0.1:")

    def test_tcp_client_with_seed_server(self):
        port = sstest.free_port()
        self.seed_py("tcp_server.py", port)
        wait_port(port)
        c = self.client("tcp_client", "tcp://127.0.0.1:%d" % port)
        c.write(b"hello\nexit\n")
        self.assertEqual(c.wait(), 0, c.err_lines)
        self.assertIn(b"your input is b'hello'", c.out_data)  # the seed's own answer

    def test_tcp_pair(self):
        srv, bound = self.example_server("tcp_server", "tcp://127.0.0.1:0")
        c = self.client("tcp_client", bound)
        c.write(b"  spaced out \nexit\n")
        self.assertEqual(c.wait(), 0)
        self.assertIn(b"your input is spaced out\n", c.out_data)

    # ---- the UDP keyword responder --------------------------------------------

    def test_udp_server_with_seed_client(self):
        srv, bound = self.example_server("udp_server", "udp://127.0.0.1:0")
        port = sstest.split_inet(bound)[1]
        c = self.seed_py("udp_client.py", port)
        c.write(b"nihao\nsb\nfoo\nexit\n")
        self.assertEqual(c.wait(), 0, c.err_lines)
        for want in (b"hello,baby,nihao", b"sb,to you", b"input exit to exit"):
            self.assertIn(want, c.out_data)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"exit", ("127.0.0.1", port))
        self.assertEqual(srv.wait(), 0)

    def test_udp_client_with_seed_server(self):
        port = sstest.free_port(socket.SOCK_DGRAM)
        srv = self.seed_py("udp_server.py", port)
        srv.wait_out(b"server is running")
        c = self.client("udp_client", "udp://127.0.0.1:%d" % port)
        c.write(b"nihao\nsb sb\n?\nexit\n")
        self.assertEqual(c.wait(), 0, c.err_lines)
        self.assertIn(b"hello,baby,nihao udp://127.0.0.1:%d" % port, c.out_data)
        self.assertIn(b"sb,to you", c.out_data)
        self.assertIn(b"input exit to exit", c.out_data)

    def test_udp_pair_on_unixgram(self):
        name = sstest.abstract_name("ex")
        srv, bound = self.example_server("udp_server", "unixgram:" + name)
        self.assertEqual(bound, "unixgram:" + name)
        # a unixgram client needs its own name to get answers: use Python's
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.bind("\0" + sstest.abstract_name("exc")[1:])
            s.settimeout(5 * SLOW)
            s.sendto(b"nihao", "\0" + name[1:])
            self.assertEqual(s.recv(100), b"hello,baby,nihao")
            s.sendto(b"exit", "\0" + name[1:])
        self.assertEqual(srv.wait(), 0)

    # ---- socketserver ThreadingTCPServer, upper case ------------------------

    def test_upper_server_with_seed_clients(self):
        srv, bound = self.example_server("upper_server", "tcp://127.0.0.1:0")
        port = sstest.split_inet(bound)[1]
        clients = [self.seed_py("socketserver_client.py", port) for _ in range(3)]
        for i, c in enumerate(clients):
            c.write(b"hello %d\n" % i)
        for i, c in enumerate(clients):  # all three served at once (threads)
            c.wait_out(b"server reply: HELLO %d" % i)
        for c in clients:
            c.write(b"q\n")
            self.assertEqual(c.wait(), 0)

    def test_upper_client_with_seed_server(self):
        port = sstest.free_port()
        self.seed_py("socketserver_upper.py", port)
        wait_port(port)
        c = self.client("upper_client", "tcp://127.0.0.1:%d" % port)
        c.write(b"abc\n\n  def \nq\n")
        self.assertEqual(c.wait(), 0, c.err_lines)
        self.assertIn(b"server reply: ABC\n", c.out_data)
        self.assertIn(b"server reply: DEF\n", c.out_data)

    def test_upper_pair_on_unix(self):
        name = sstest.abstract_name("up")
        srv, bound = self.example_server("upper_server", "unix:" + name)
        c = self.client("upper_client", bound)
        c.write(b"unix too\nq\n")
        self.assertEqual(c.wait(), 0, c.err_lines)
        self.assertIn(b"server reply: UNIX TOO", c.out_data)

    # ---- the shared parts: addresses, Ctrl-C -------------------------------------

    def test_bad_address_is_named(self):
        for name in ("tcp_server", "tcp_client", "udp_server", "udp_client", "upper_server",
                     "upper_client", "event_echo"):
            r = subprocess.run([example(name), "tcp://[::1"], capture_output=True,
                               stdin=subprocess.DEVNULL, timeout=10 * SLOW)
            self.assertEqual(r.returncode, 1, name)
            self.assertIn(b"%s: bad address 'tcp://[::1'" % name.encode(), r.stderr)

    def test_sigterm_drains_then_exits_0(self):
        """ss_server_serve_until_signal: a client being served when SIGTERM
        comes is served to its end; new clients are refused; exit 0."""
        for name in ("upper_server", "tcp_server", "event_echo"):
            with self.subTest(name):
                if name == "event_echo":
                    srv = self.start([example(name), "tcp://127.0.0.1:0", "1"])
                    bound = srv.wait_stderr(r"listening on (\S+)").group(1)
                else:
                    srv, bound = self.example_server(name, "tcp://127.0.0.1:0")
                with sstest.connect(bound) as c:
                    c.sendall(b"one")
                    self.assertTrue(c.recv(100))
                    if name == "tcp_server":  # one message a connection: it is done
                        c.close()
                        srv.signal(signal.SIGTERM)
                        self.assertEqual(srv.wait(), 0, srv.err_lines)
                        continue
                    srv.signal(signal.SIGTERM)
                    self.assertTrue(sstest.wait_until(lambda: not self.connectable(bound), 5),
                                    "still accepting after SIGTERM")
                    c.sendall(b"two")  # still served while draining
                    self.assertIn(b"TWO" if name == "upper_server" else b"two", c.recv(100))
                    self.assertIsNone(srv.p.poll())
                self.assertEqual(srv.wait(), 0, srv.err_lines)

    @staticmethod
    def connectable(address):
        try:
            sstest.connect(address, timeout=1).close()
            return True
        except OSError:
            return False


if __name__ == "__main__":
    sstest.main()

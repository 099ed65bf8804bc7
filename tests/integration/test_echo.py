# SPDX-License-Identifier: MIT
"""`sockserve echo`: every address kind, every model, --upper/--prefix/--once,
logging flags, clean exit, and the usage/runtime errors of the common flags.

ctest-labels: tsan
"""
import os
import re
import signal
import socket
import threading
import time
import unittest

import sstest
from sstest import SLOW

MODELS = ["serial", "threading", "forking", "pool", "prefork", "event", "coroutine"]


def dgram_client(address):
    """A datagram socket that can receive replies (unixgram peers need a name)."""
    fam, typ, sa = sstest.sock_for(address)
    s = socket.socket(fam, typ)
    s.settimeout(5 * SLOW)
    if fam == socket.AF_UNIX:
        s.bind("\0" + sstest.abstract_name("c")[1:])
    return s, sa


def exchange(address, payload):
    """Send one message to a sockserve address, return the reply."""
    if address.startswith(("udp://", "unixgram:")):
        s, sa = dgram_client(address)
        with s:
            s.sendto(payload, sa)
            return s.recv(65536)
    with sstest.connect(address) as s:
        s.sendall(payload)
        return s.recv(65536)


def recv_all(s, n):
    got = b""
    while len(got) < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


class EchoKinds(sstest.TestCase):
    """Every address form, serial model."""

    def check(self, address, *extra):
        p, bound = self.server("echo", "-q", *extra, address)
        for msg in (b"hello", b"second message\n", bytes(range(256))):
            self.assertEqual(exchange(bound, msg), msg)
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(), 0)
        return bound

    def test_tcp4(self):
        bound = self.check("tcp://127.0.0.1:0")
        self.assertRegex(bound, r"^tcp://127\.0\.0\.1:\d+$")

    def test_tcp6(self):
        bound = self.check("tcp://[::1]:0")
        self.assertRegex(bound, r"^tcp://\[::1\]:\d+$")

    def test_host_port_means_tcp(self):
        bound = self.check("127.0.0.1:0")
        self.assertTrue(bound.startswith("tcp://127.0.0.1:"))

    def test_udp4(self):
        self.check("udp://127.0.0.1:0")

    def test_udp6(self):
        self.check("udp://[::1]:0")

    def test_unix_path_removed_on_clean_exit(self):
        d = sstest.temp_dir()
        path = os.path.join(d, "echo.sock")
        bound = self.check("unix:" + path)
        self.assertEqual(bound, "unix:" + path)
        self.assertFalse(os.path.exists(path), "socket file left behind")
        os.rmdir(d)

    def test_unix_abstract(self):
        name = sstest.abstract_name("echo")
        self.assertEqual(self.check("unix:" + name), "unix:" + name)

    def test_unixgram_path(self):
        d = sstest.temp_dir()
        path = os.path.join(d, "echo.dgram")
        self.check("unixgram:" + path)
        self.assertFalse(os.path.exists(path))
        os.rmdir(d)

    def test_unixgram_abstract(self):
        self.check("unixgram:" + sstest.abstract_name("g"))

    def test_seqpacket(self):
        self.check("seqpacket:" + sstest.abstract_name("sp"))

    def test_stale_unix_file_replaced(self):
        d = sstest.temp_dir()
        path = os.path.join(d, "stale.sock")
        old = socket.socket(socket.AF_UNIX)
        old.bind(path)
        old.close()  # a socket file nobody listens on
        self.check("unix:" + path)
        os.rmdir(d)

    def test_live_unix_socket_is_address_in_use(self):
        name = sstest.abstract_name("live")
        p, bound = self.server("echo", "unix:" + name)
        r = self.run_cli("echo", "unix:" + name)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"Address already in use", r.stderr)
        self.assertEqual(exchange(bound, b"still"), b"still")


class EchoModels(sstest.TestCase):
    """The same echo under every model, on tcp, unix and udp."""

    def check_model(self, model, address):
        p, bound = self.server("echo", "-q", "--model", model, "--workers", "4", address)
        if address.startswith("udp"):
            for i in range(5):
                self.assertEqual(exchange(bound, b"dgram %d" % i), b"dgram %d" % i)
        else:
            # several clients at once, each with a few messages on one connection
            # a serial server holds one connection at a time: talk to it alone
            conns = [sstest.connect(bound) for _ in range(1 if model == "serial" else 3)]
            try:
                for round_ in range(3):
                    for i, c in enumerate(conns):
                        c.sendall(b"m%d.%d" % (i, round_))
                    for i, c in enumerate(conns):
                        self.assertEqual(recv_all(c, len(b"m0.0")), b"m%d.%d" % (i, round_))
            finally:
                for c in conns:
                    c.close()
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(), 0, p.err_lines)


    def test_coroutine_stalled_reply_keeps_its_bytes(self):
        # One loop thread: echo's read chunk is the thread's, shared by its
        # connections. A client that stops reading stalls its long replies
        # in the middle (its coroutine waits to write); the other client's
        # messages are read into the chunk meanwhile, and must not end up
        # in the first one's echo.
        p, bound = self.server("echo", "-q", "--model", "coroutine", "--workers", "1",
                               "tcp://127.0.0.1:0")
        host, port = sstest.split_inet(bound)
        slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.settimeout(10)
        slow.connect((host, port))
        # more than the server's socket can queue (tcp_wmem's 4 MiB at most)
        payload = bytes(range(251)) * (12 * 1024 * 1024 // 251)
        sender = threading.Thread(target=slow.sendall, args=(payload,), daemon=True)
        sender.start()
        fast = sstest.connect(bound)
        try:
            time.sleep(0.3)  # the slow client's replies fill its socket: its writer waits
            for i in range(20):
                msg = b"B" * 30000 + b"%d" % i
                fast.sendall(msg)
                self.assertEqual(recv_all(fast, len(msg)), msg)
            got = bytearray()
            while len(got) < len(payload):
                chunk = slow.recv(1 << 20)
                if not chunk:
                    break
                got += chunk
            self.assertEqual(len(got), len(payload))
            if got != payload:
                bad = next(i for i in range(len(got)) if got[i] != payload[i])
                self.fail("the stalled echo lost its bytes: the first bad one at %d" % bad)
            sender.join(timeout=10)
        finally:
            slow.close()
            fast.close()
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(), 0, p.err_lines)


def _add_model_tests():
    for model in MODELS:
        for kind, addr in (("tcp", "tcp://127.0.0.1:0"), ("udp", "udp://127.0.0.1:0"),
                           ("unix", None)):
            def t(self, model=model, addr=addr):
                self.check_model(model, addr or "unix:" + sstest.abstract_name(model))
            setattr(EchoModels, "test_%s_%s" % (model, kind), t)


_add_model_tests()


class EchoFlags(sstest.TestCase):

    def test_upper_is_ascii_only(self):
        p, bound = self.server("echo", "--upper", "tcp://127.0.0.1:0")
        self.assertEqual(exchange(bound, "héllo wörld 1\n".encode()), "HéLLO WöRLD 1\n".encode())

    def test_prefix_and_upper(self):
        p, bound = self.server("echo", "--upper", "--prefix", "got: ", "udp://127.0.0.1:0")
        self.assertEqual(exchange(bound, b"abc"), b"got: ABC")

    def test_prefix_equals_form(self):
        p, bound = self.server("echo", "--prefix=> ", "tcp://127.0.0.1:0")
        self.assertEqual(exchange(bound, b"x"), b"> x")

    def test_once_closes_after_first_message(self):
        p, bound = self.server("echo", "--once", "--prefix", "your input is ",
                               "--model", "serial", "tcp://127.0.0.1:0")
        with sstest.connect(bound) as s:
            s.sendall(b"hello")
            self.assertEqual(recv_all(s, 100), b"your input is hello")  # then EOF
        with sstest.connect(bound) as s:  # the next connection is served too
            s.sendall(b"again")
            self.assertEqual(recv_all(s, 100), b"your input is again")

    def test_without_once_the_connection_stays(self):
        p, bound = self.server("echo", "tcp://127.0.0.1:0")
        with sstest.connect(bound) as s:
            for i in range(20):
                s.sendall(b"n%d" % i)
                self.assertEqual(s.recv(100), b"n%d" % i)

    def test_quiet_logs_nothing_per_connection(self):
        p, bound = self.server("echo", "-q", "--model", "threading", "tcp://127.0.0.1:0")
        for _ in range(3):
            exchange(bound, b"x")
        with sstest.connect(bound) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(), 0)
        self.assertEqual(len(p.err_lines), 1, p.err_lines)
        self.assertTrue(p.err_lines[0].startswith("sockserve: listening on "))

    def test_verbose_logs_each_connection(self):
        p, bound = self.server("echo", "-v", "tcp://127.0.0.1:0")
        for _ in range(3):
            exchange(bound, b"x")
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(), 0)
        logs = [l for l in p.err_lines if "listening on" not in l]
        self.assertGreaterEqual(len(logs), 3, p.err_lines)
        port = bound.rsplit(":", 1)[1]
        # each log line: an ISO 8601 UTC time, then "sockserve: "
        self.assertTrue(all(re.match(r"\d{4}-\d\d-\d\dT[\d:.]+Z sockserve: ", l) for l in logs),
                        logs)
        self.assertFalse(any(port in l and "listening" in l for l in logs))

    def test_sigint_is_a_clean_stop(self):
        p, bound = self.server("echo", "tcp://127.0.0.1:0")
        p.signal(signal.SIGINT)
        self.assertEqual(p.wait(), 0)

    def test_help(self):
        r = self.run_cli("echo", "--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"tcp://127.0.0.1:9999", r.stdout)
        self.assertIn(b"--drain-timeout", r.stdout)
        r = self.run_cli("help", "echo")
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"--upper", r.stdout)


class EchoErrors(sstest.TestCase):
    """Exit 2 with one line for what the user typed; exit 1 for run-time failures."""

    def usage(self, *args, want=None):
        r = self.run_cli("echo", *args)
        self.assertEqual(r.returncode, 2, (args, r.stderr))
        lines = r.stderr.decode().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith("sockserve: "), lines)
        if want:
            self.assertIn(want, lines[0])
        self.assertEqual(r.stdout, b"")

    def test_bad_flag_values(self):
        self.usage("--workers", "0", "tcp://127.0.0.1:0", want="--workers")
        self.usage("--workers", "-3", "tcp://127.0.0.1:0", want="--workers")
        self.usage("--workers=x", "tcp://127.0.0.1:0", want="--workers")
        self.usage("--model", "nope", "tcp://127.0.0.1:0", want="--model")
        self.usage("--max-conns", "x", "tcp://127.0.0.1:0", want="--max-conns")
        self.usage("--max-conns", "0", "tcp://127.0.0.1:0", want="--max-conns")
        self.usage("--idle-timeout", "-1", "tcp://127.0.0.1:0", want="--idle-timeout")
        self.usage("--drain-timeout", "soon", "tcp://127.0.0.1:0", want="--drain-timeout")
        self.usage("--model", want="--model")  # value missing
        self.usage("--frobnicate", "tcp://127.0.0.1:0", want="--frobnicate")
        self.usage("tcp://127.0.0.1:0", "extra", want="extra")

    def test_unknown_model(self):
        self.usage("--model", "nope", "tcp://127.0.0.1:0", want="nope")

    def test_address_that_does_not_parse(self):
        self.usage("tcp://127.0.0.1:70000", want="70000")
        self.usage("bogus://x", want="bogus://x")

    def test_address_in_use_is_runtime_error(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            port = taken.getsockname()[1]
            r = self.run_cli("echo", "tcp://127.0.0.1:%d" % port)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stderr.decode().splitlines(),
                         ["sockserve: cannot bind tcp://127.0.0.1:%d: Address already in use"
                          % port])


if __name__ == "__main__":
    sstest.main()

# SPDX-License-Identifier: MIT
"""`sockserve connect`: the interactive client, against real peers.

The peers are the seed's own Python servers (run with `python3 -u`), small
Python echo servers started here for every socket kind, and `nc -l`. Every
server thread stops by itself (accept/recv timeouts and a deadline); every
client run is bounded by run_cli's timeout.
"""
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sstest  # noqa: E402

SLOW = sstest.SLOW
# A --timeout the client must never reach in tests where the server ends the
# conversation: it is longer than run_cli's bound, so waiting it out fails.
NEVER = str(int(60 * SLOW))


def has_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class Peer(threading.Thread):
    """A Python server on one socket, in a thread; it stops within a bound."""

    LIFETIME = 60.0

    def __init__(self, family, type_, bind_to):
        super().__init__(daemon=True)
        self.sock = socket.socket(family, type_)
        self.sock.bind(bind_to)
        if type_ != socket.SOCK_DGRAM:
            self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.stopping = threading.Event()
        self.received = []  # per connection (stream) or per datagram
        self.lock = threading.Lock()

    def run(self):
        deadline = time.monotonic() + self.LIFETIME * SLOW
        while not self.stopping.is_set() and time.monotonic() < deadline:
            try:
                self.step()
            except socket.timeout:
                continue
            except OSError:
                if self.stopping.is_set():
                    break
                raise
        self.sock.close()

    def stop(self):
        self.stopping.set()
        self.join(5 * SLOW)

    def record(self, data):
        with self.lock:
            self.received.append(data)


class StreamPeer(Peer):
    """Accepts connections; `handle(conn)` serves each in its own thread."""

    def __init__(self, family, bind_to, handle, type_=socket.SOCK_STREAM):
        super().__init__(family, type_, bind_to)
        self.handle = handle
        self.conns = []

    def step(self):
        conn, _ = self.sock.accept()
        conn.settimeout(20 * SLOW)
        self.conns.append(conn)
        threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            self.handle(self, conn)
        except OSError:
            pass
        finally:
            conn.close()


def echo_handler(transform=lambda b: b):
    """Echo every chunk (transformed) until the client shuts down; record all."""
    def handle(peer, conn):
        got = bytearray()
        while True:
            chunk = conn.recv(1 << 16)
            if not chunk:
                break
            got += chunk
            conn.sendall(transform(chunk))
        peer.record(bytes(got))
    return handle


def message_echo_handler(peer, conn):
    """Seqpacket: echo each message as it is; record each one."""
    while True:
        msg = conn.recv(1 << 17)
        if not msg:
            break
        peer.record(msg)
        conn.sendall(msg)


class DatagramPeer(Peer):
    """Answers each datagram to its sender with `reply(data)` (None: silent)."""

    def __init__(self, family, bind_to, reply=lambda d: d):
        super().__init__(family, socket.SOCK_DGRAM, bind_to)
        self.reply = reply
        self.senders = []

    def step(self):
        data, sender = self.sock.recvfrom(1 << 16)
        self.record(data)
        self.senders.append(sender)
        answer = self.reply(data)
        if answer is not None and sender:
            try:
                self.sock.sendto(answer, sender)
            except (ConnectionRefusedError, FileNotFoundError):
                pass  # the client is gone already


class ConnectTest(sstest.TestCase):
    def setUp(self):
        super().setUp()
        self.tmp = sstest.temp_dir()
        self.addCleanup(shutil.rmtree, self.tmp, True)

    # ---- helpers ---------------------------------------------------------

    def peer(self, cls, *args, **kw):
        p = cls(*args, **kw)
        p.start()
        self.addCleanup(p.stop)
        return p

    def tcp_echo(self, host="127.0.0.1", handle=None):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        p = self.peer(StreamPeer, fam, (host, 0), handle or echo_handler())
        port = p.sock.getsockname()[1]
        return p, ("tcp://[%s]:%d" if ":" in host else "tcp://%s:%d") % (host, port)

    def unix_path(self, name):
        return os.path.join(self.tmp, name)

    def connect(self, address, *flags, input=b"", timeout=20.0):
        return self.run_cli("connect", *flags, address, input=input, timeout=timeout)

    def assert_ok(self, r, stdout=None):
        self.assertEqual(r.returncode, 0, "stderr: %r" % r.stderr)
        self.assertEqual(r.stderr, b"")
        if stdout is not None:
            self.assertEqual(r.stdout, stdout)

    def assert_one_error_line(self, r, code, *needles):
        self.assertEqual(r.returncode, code, "stderr: %r" % r.stderr)
        self.assertEqual(r.stdout, b"")
        lines = r.stderr.decode().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith("sockserve: connect: "), lines)
        for n in needles:
            self.assertIn(n, lines[0])

    def wait_accepting(self, port, timeout=10.0):
        def up():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return False
        self.assertTrue(sstest.wait_until(up, timeout), "nothing listens on %d" % port)

    def seed_server(self, name, udp=False):
        port = sstest.free_port(socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
        proc = self.seed_py(name, port)
        if udp:
            # The seed's UDP server prints this once it is bound.
            proc.wait_out(b"server is running")
        else:
            self.wait_accepting(port)
        return proc, port

    # ---- usage and connection errors -----------------------------------

    def test_help(self):
        r = self.run_cli("connect", "--help")
        self.assert_ok(r)
        self.assertIn(b"usage: sockserve connect", r.stdout)
        self.assertIn(b"--reconnect", r.stdout)
        self.assertIn(b"--timeout", r.stdout)

    def test_bad_address_exits_2_naming_it(self):
        r = self.connect("tcp://127.0.0.1:70000")
        self.assert_one_error_line(r, 2, "tcp://127.0.0.1:70000", "port")

    def test_usage_errors_exit_2_with_one_line(self):
        cases = [
            (["--frobnicate", "tcp://127.0.0.1:9"], "--frobnicate"),
            (["--timeout", "soon", "tcp://127.0.0.1:9"], "soon"),
            (["--timeout", "-1", "tcp://127.0.0.1:9"], "--timeout"),
            (["tcp://127.0.0.1:9", "--timeout"], "--timeout"),
            ([], "ADDRESS"),
            (["tcp://127.0.0.1:9", "tcp://127.0.0.1:10"], "tcp://127.0.0.1:10"),
            (["--reconnect", "udp://127.0.0.1:9"], "--reconnect"),
        ]
        for argv, needle in cases:
            with self.subTest(argv=argv):
                r = self.run_cli("connect", *argv)
                self.assert_one_error_line(r, 2, needle)

    def test_refused_exits_1_naming_the_address(self):
        port = sstest.free_port()
        address = "tcp://127.0.0.1:%d" % port
        r = self.connect(address, input=b"hello\n")
        self.assert_one_error_line(r, 1, address)

    def test_refused_with_reconnect_exits_1(self):
        address = "tcp://127.0.0.1:%d" % sstest.free_port()
        r = self.connect(address, "--reconnect", input=b"hello\n")
        self.assert_one_error_line(r, 1, address)

    def test_udp_nobody_there_exits_1(self):
        # The kernel's "port unreachable" is the datagram form of a refusal.
        address = "udp://127.0.0.1:%d" % sstest.free_port(socket.SOCK_DGRAM)
        r = self.connect(address, "--timeout", NEVER, input=b"anyone?\n")
        self.assert_one_error_line(r, 1, address)

    def test_missing_unixgram_socket_exits_1(self):
        address = "unixgram:" + self.unix_path("nobody-here.sock")
        r = self.connect(address, input=b"hello\n")
        self.assert_one_error_line(r, 1, address)

    def test_missing_unix_socket_exits_1(self):
        address = "unix:" + self.unix_path("nobody-here.sock")
        r = self.connect(address, input=b"hello\n")
        self.assert_one_error_line(r, 1, address)

    # ---- every socket kind, against Python echo servers ------------------

    LINES = b"hello\nsecond line\n\nlast\n"

    def check_stream_echo(self, peer, address):
        r = self.connect(address, "--timeout", NEVER, input=self.LINES)
        self.assert_ok(r, self.LINES)
        self.assertEqual(peer.received, [self.LINES])

    def test_tcp_v4(self):
        self.check_stream_echo(*self.tcp_echo())

    @unittest.skipUnless(has_ipv6_loopback(), "no IPv6 loopback")
    def test_tcp_v6(self):
        self.check_stream_echo(*self.tcp_echo("::1"))

    def test_colon_port_means_localhost(self):
        peer, address = self.tcp_echo()
        port = address.rsplit(":", 1)[1]
        r = self.connect(":" + port, "--timeout", NEVER, input=b"short form\n")
        self.assert_ok(r, b"short form\n")

    def test_host_port_means_tcp(self):
        peer, address = self.tcp_echo()
        r = self.connect(address[len("tcp://"):], "--timeout", NEVER, input=b"x\n")
        self.assert_ok(r, b"x\n")

    def test_unix_path(self):
        path = self.unix_path("echo.sock")
        peer = self.peer(StreamPeer, socket.AF_UNIX, path, echo_handler())
        self.check_stream_echo(peer, "unix:" + path)

    def test_unix_abstract(self):
        name = sstest.abstract_name("connect")
        peer = self.peer(StreamPeer, socket.AF_UNIX, "\0" + name[1:], echo_handler())
        self.check_stream_echo(peer, "unix:" + name)

    def test_seqpacket_one_message_per_line(self):
        path = self.unix_path("seq.sock")
        peer = self.peer(StreamPeer, socket.AF_UNIX, path, message_echo_handler,
                         type_=socket.SOCK_SEQPACKET)
        r = self.connect("seqpacket:" + path, "--timeout", NEVER, input=b"one\ntwo\nthree\n")
        self.assert_ok(r, b"one\ntwo\nthree\n")
        self.assertEqual(peer.received, [b"one\n", b"two\n", b"three\n"])

    def test_seqpacket_abstract_no_newline(self):
        name = sstest.abstract_name("seq")
        peer = self.peer(StreamPeer, socket.AF_UNIX, "\0" + name[1:], message_echo_handler,
                         type_=socket.SOCK_SEQPACKET)
        r = self.connect("seqpacket:" + name, "--no-newline", "--timeout", NEVER,
                         input=b"one\ntwo\n")
        self.assert_ok(r, b"onetwo")
        self.assertEqual(peer.received, [b"one", b"two"])

    def check_datagrams(self, peer, address):
        r = self.connect(address, "--timeout", str(1.0 * SLOW), input=b"ping\npong\n\nend")
        self.assert_ok(r)
        # Each datagram is a line without its newline; each reply gets one.
        self.assertEqual(peer.received, [b"ping", b"pong", b"", b"end"])
        self.assertEqual(r.stdout, b"ping\npong\n\nend\n")

    def test_udp(self):
        peer = self.peer(DatagramPeer, socket.AF_INET, ("127.0.0.1", 0))
        self.check_datagrams(peer, "udp://127.0.0.1:%d" % peer.sock.getsockname()[1])

    @unittest.skipUnless(has_ipv6_loopback(), "no IPv6 loopback")
    def test_udp_v6(self):
        peer = self.peer(DatagramPeer, socket.AF_INET6, ("::1", 0))
        self.check_datagrams(peer, "udp://[::1]:%d" % peer.sock.getsockname()[1])

    def test_unixgram_path_client_can_be_answered(self):
        path = self.unix_path("gram.sock")
        peer = self.peer(DatagramPeer, socket.AF_UNIX, path)
        self.check_datagrams(peer, "unixgram:" + path)
        # The client had an address the server could answer to (autobind).
        self.assertTrue(all(peer.senders), peer.senders)

    def test_unixgram_abstract(self):
        name = sstest.abstract_name("gram")
        peer = self.peer(DatagramPeer, socket.AF_UNIX, "\0" + name[1:])
        self.check_datagrams(peer, "unixgram:" + name)

    def test_datagram_reply_with_newline_is_not_doubled(self):
        peer = self.peer(DatagramPeer, socket.AF_INET, ("127.0.0.1", 0),
                         reply=lambda d: d + b"\n")
        r = self.connect("udp://127.0.0.1:%d" % peer.sock.getsockname()[1],
                         "--timeout", str(0.5 * SLOW), input=b"a\nb\n")
        self.assert_ok(r, b"a\nb\n")

    # ---- stream details ----------------------------------------------

    def test_no_newline_on_a_stream(self):
        peer, address = self.tcp_echo()
        r = self.connect(address, "--no-newline", "--timeout", NEVER, input=b"ab\ncd\n")
        self.assert_ok(r, b"abcd")
        self.assertEqual(peer.received, [b"abcd"])

    def test_last_line_without_newline_is_sent(self):
        peer, address = self.tcp_echo()
        r = self.connect(address, "--timeout", NEVER, input=b"one\ntail")
        self.assert_ok(r, b"one\ntail")

    def test_binary_safe(self):
        data = bytes(range(256)) * 64 + b"\0\0\r\n\xff"
        peer, address = self.tcp_echo()
        r = self.connect(address, "--timeout", NEVER, input=data)
        self.assert_ok(r, data)
        self.assertEqual(peer.received, [data])

    def test_one_mib_line_echoed_intact(self):
        line = (b"0123456789abcdef" * 65536) + b"\n"  # 1 MiB and its newline
        for address_of in (lambda: self.tcp_echo()[1],
                           lambda: "unix:" + self.unix_path("big.sock")):
            address = address_of()
            if address.startswith("unix:"):
                self.peer(StreamPeer, socket.AF_UNIX, address[5:], echo_handler())
            with self.subTest(address=address):
                r = self.connect(address, "--timeout", NEVER, input=line)
                self.assert_ok(r)
                self.assertEqual(len(r.stdout), len(line))
                self.assertEqual(r.stdout, line)

    def test_one_mib_line_with_reconnect(self):
        line = (b"fedcba9876543210" * 65536) + b"\n"
        peer, address = self.tcp_echo()
        r = self.connect(address, "--reconnect", "--timeout", NEVER, input=line + b"x\n")
        self.assert_ok(r, line + b"x\n")
        self.assertEqual(peer.received, [line, b"x\n"])

    def test_replies_are_printed_as_they_arrive(self):
        peer, address = self.tcp_echo(handle=echo_handler(lambda b: b.upper()))
        client = self.sockserve("connect", address, stdin=subprocess.PIPE)
        for word in (b"alpha", b"beta", b"gamma"):
            client.write(word + b"\n")
            # The reply shows up while stdin is still open.
            client.wait_out(word.upper() + b"\n")
        client.close_stdin()
        self.assertEqual(client.wait(), 0, client.err_lines)
        self.assertEqual(client.out_data, b"ALPHA\nBETA\nGAMMA\n")
        self.assertEqual(client.err_lines, [])

    def test_server_closing_first_is_a_note_and_exit_0(self):
        def greet_and_close(peer, conn):
            conn.sendall(b"bye\n")
        peer, address = self.tcp_echo(handle=greet_and_close)
        client = self.sockserve("connect", address, stdin=subprocess.PIPE)
        client.write(b"hello\n")
        # stdin stays open: the server's close alone must end the client.
        self.assertEqual(client.wait(), 0, client.err_lines)
        self.assertEqual(client.out_data, b"bye\n")
        self.assertEqual(client.err_lines,
                         ["sockserve: connect: server closed the connection"])

    def test_server_reset_is_a_note_not_a_crash(self):
        def reset(peer, conn):
            conn.recv(16)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        peer, address = self.tcp_echo(handle=reset)
        client = self.sockserve("connect", address, stdin=subprocess.PIPE)
        client.write(b"hello\n")
        # Keep writing after the reset: a send must not raise SIGPIPE.
        for _ in range(20):
            if client.p.poll() is not None:
                break
            try:
                client.write(b"more\n")
            except BrokenPipeError:
                break
            time.sleep(0.05)
        self.assertEqual(client.wait(), 0, client.err_lines)
        self.assertEqual(len(client.err_lines), 1, client.err_lines)
        self.assertIn("server closed the connection", client.err_lines[0])

    def test_eof_waits_for_server_close_not_timeout(self):
        # The echo server closes once our side shuts down: exit 0 without
        # waiting for --timeout (longer than the run's bound).
        peer, address = self.tcp_echo()
        r = self.connect(address, "--timeout", NEVER, input=b"", timeout=10.0)
        self.assert_ok(r, b"")
        self.assertEqual(peer.received, [b""])

    def test_timeout_after_eof_when_server_stays_silent(self):
        done = threading.Event()

        def hold_open(peer, conn):
            peer.record(conn.recv(1 << 16))
            done.wait(30 * SLOW)  # neither replies nor closes

        peer, address = self.tcp_echo(handle=hold_open)
        self.addCleanup(done.set)
        start = time.monotonic()
        r = self.connect(address, "--timeout", "0.3", input=b"anyone?\n")
        self.assert_ok(r, b"")
        self.assertGreaterEqual(time.monotonic() - start, 0.3)

    def test_timeout_resets_while_data_keeps_coming(self):
        def trickle(peer, conn):
            conn.recv(16)
            for i in range(4):
                time.sleep(0.15)
                conn.sendall(b"%d\n" % i)
            time.sleep(30 * SLOW)

        peer, address = self.tcp_echo(handle=trickle)
        r = self.connect(address, "--timeout", str(0.6 * SLOW), input=b"go\n")
        self.assert_ok(r, b"0\n1\n2\n3\n")

    def test_datagram_timeout_with_silent_server(self):
        peer = self.peer(DatagramPeer, socket.AF_INET, ("127.0.0.1", 0), reply=lambda d: None)
        r = self.connect("udp://127.0.0.1:%d" % peer.sock.getsockname()[1],
                         "--timeout", "0.3", input=b"hello?\n")
        self.assert_ok(r, b"")
        self.assertEqual(peer.received, [b"hello?"])

    # ---- the seed's own servers ------------------------------------------

    def test_seed_tcp_server_with_reconnect(self):
        _, port = self.seed_server("tcp_server.py")
        r = self.connect("tcp://127.0.0.1:%d" % port, "--reconnect", "--timeout", NEVER,
                         input=b"hello\nnihao\n")
        self.assert_ok(r, b"your input is b'hello\\n'your input is b'nihao\\n'")

    def test_seed_tcp_server_with_reconnect_no_newline(self):
        # The seed's client sends the bare line: so does --no-newline.
        _, port = self.seed_server("tcp_server.py")
        r = self.connect("127.0.0.1:%d" % port, "--reconnect", "--no-newline",
                         "--timeout", NEVER, input=b"hello\nnihao\n")
        self.assert_ok(r, b"your input is b'hello'your input is b'nihao'")

    def test_seed_udp_server(self):
        server, port = self.seed_server("udp_server.py", udp=True)
        r = self.connect("udp://127.0.0.1:%d" % port, "--timeout", str(1.0 * SLOW),
                         input="nihao\nsb\n随便\nexit\n".encode())
        self.assert_ok(r, b"hello,baby,nihao\nsb,to you\ninput exit to exit\n")
        # 'exit' stops the seed's server, as its own client would.
        self.assertEqual(server.wait(), 0)

    def test_seed_socketserver_upper(self):
        _, port = self.seed_server("socketserver_upper.py")
        client = self.sockserve("connect", "tcp://127.0.0.1:%d" % port, stdin=subprocess.PIPE)
        expected = b""
        for word in (b"hello", b"socketserver", b"nihao"):
            client.write(word + b"\n")
            expected += word.upper()  # the server strips, upper-cases, no newline
            client.wait_out(expected)
        client.close_stdin()
        self.assertEqual(client.wait(), 0, client.err_lines)
        self.assertEqual(client.out_data, b"HELLOSOCKETSERVERNIHAO")
        self.assertEqual(client.err_lines, [])

    # ---- nc ------------------------------------------------------------

    @unittest.skipUnless(shutil.which("nc"), "no nc")
    def test_against_nc_listen(self):
        port = sstest.free_port()
        nc = self.start(["nc", "-l", "127.0.0.1", str(port)], stdin=subprocess.PIPE)
        self.wait_for_nc(nc, port)
        nc.write(b"from nc\n")
        client = self.sockserve("connect", "tcp://127.0.0.1:%d" % port, "--timeout", NEVER,
                                stdin=subprocess.PIPE)
        client.wait_out(b"from nc\n")
        client.write(b"to nc\n")
        nc.wait_out(b"to nc\n")
        client.close_stdin()
        # nc sees our shutdown, exits, closes: the client exits 0, no note.
        self.assertEqual(client.wait(), 0, client.err_lines)
        self.assertEqual(client.err_lines, [])
        self.assertEqual(nc.wait(), 0)
        self.assertEqual(nc.out_data, b"to nc\n")

    def wait_for_nc(self, nc, port):
        # `nc -l` serves one connection, so do not probe it by connecting:
        # look for its listening socket in /proc/net/tcp instead.
        want = ":%04X" % port

        def listening():
            with open("/proc/net/tcp") as f:
                return any(want in line.split()[1] and line.split()[3] == "0A"
                           for line in f.readlines()[1:])
        self.assertTrue(sstest.wait_until(listening), "nc never listened on %d" % port)


if __name__ == "__main__":
    sstest.main()

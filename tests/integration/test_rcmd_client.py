# SPDX-License-Identifier: MIT
"""`sockserve rcmd` (the client) end to end against scripted peers.

A small Python peer speaks the native frames of docs/rcmd-protocol.md in
cleartext (--insecure-no-auth, on an abstract unix socket), so the client's
behaviour is pinned down independently of the server: stdout and stderr kept
apart, stdin forwarded whole, exit codes (code, 128+N, 255), Ctrl-C forwarded
as a SIGNAL frame, a broken peer gives 255. The seed protocol client runs
against the seed's own Python server.
"""
import hashlib
import os
import signal
import socket
import struct
import subprocess
import threading
import time

import sstest

HELLO, EXEC, STDIN, STDIN_EOF, STDOUT, STDERR, SIGNAL, EXIT, ERROR = range(1, 10)


def frame(t, payload=b""):
    return struct.pack(">BI", t, len(payload)) + payload


class Peer:
    """Scripted rcmd peer: behaviour chosen by argv[0] of each EXEC."""

    def __init__(self):
        self.name = sstest.abstract_name("rcmdpeer")
        self.address = "unix:" + self.name
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind("\0" + self.name[1:])
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.stop = False
        self.events = []
        self.got_exec = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def close(self):
        self.stop = True
        self.thread.join(10)
        self.sock.close()

    def run(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            conn.settimeout(30)
            try:
                self.serve(conn)
            except (OSError, ConnectionError, EOFError):
                pass
            finally:
                conn.close()

    @staticmethod
    def recv_exact(conn, n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def read_frame(self, conn):
        t, n = struct.unpack(">BI", self.recv_exact(conn, 5))
        return t, self.recv_exact(conn, n) if n else b""

    def serve(self, conn):
        t, p = self.read_frame(conn)
        assert t == HELLO and p[:5] == b"RCMD\x01", (t, p)
        conn.sendall(frame(HELLO, b"RCMD\x01\x00python peer"))
        while True:
            t, p = self.read_frame(conn)
            if t != EXEC:
                continue
            argv = p[1:-1].split(b"\0")
            self.events.append(("exec", p[0], argv))
            self.got_exec.set()
            words = argv[0].split() if p[0] == 1 else argv  # shell mode: a line
            getattr(self, "do_" + words[0].decode())(conn, words)

    def exit_code(self, conn, code):
        conn.sendall(frame(EXIT, bytes([0, code])))

    def do_outerr(self, conn, argv):
        conn.sendall(frame(STDOUT, b"to stdout\n") + frame(STDERR, b"to stderr\n"))
        self.exit_code(conn, 0)

    def do_code(self, conn, argv):
        self.exit_code(conn, int(argv[1]))

    def do_killed(self, conn, argv):
        conn.sendall(frame(EXIT, bytes([1, int(argv[1])])))

    def do_cat(self, conn, argv):
        while True:
            t, p = self.read_frame(conn)
            if t == STDIN_EOF:
                break
            if t == STDIN and p:
                conn.sendall(frame(STDOUT, p))
        self.exit_code(conn, 0)

    def do_wait(self, conn, argv):
        while True:
            t, p = self.read_frame(conn)
            if t == SIGNAL:
                self.events.append(("signal", p[0]))
                conn.sendall(frame(EXIT, bytes([1, p[0]])))
                return

    def do_deaf(self, conn, argv):
        # never answers a SIGNAL: the client's second Ctrl-C must give up
        while True:
            t, p = self.read_frame(conn)
            if t == SIGNAL:
                self.events.append(("signal", p[0]))

    def do_flood(self, conn, argv):
        chunk = frame(STDOUT, b"y" * 65536)
        for _ in range(2000):  # bounded: 128 MiB at most
            conn.sendall(chunk)
        self.exit_code(conn, 0)

    def do_bad(self, conn, argv):
        conn.sendall(b"\x05\xff\xff\xff\xff")
        time.sleep(1)

    def do_close(self, conn, argv):
        conn.sendall(frame(STDOUT, b"partial"))
        raise EOFError


class RcmdClientTest(sstest.TestCase):
    def setUp(self):
        super().setUp()
        self.peer = Peer()

    def tearDown(self):
        super().tearDown()
        self.peer.close()

    def rcmd(self, *command, input=b""):
        return self.run_cli("rcmd", "--insecure-no-auth", self.peer.address, "--",
                            *command, input=input)

    def test_stdout_and_stderr_are_kept_apart(self):
        r = self.rcmd("outerr")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"to stdout\n")
        self.assertEqual(r.stderr, b"to stderr\n")

    def test_exit_codes(self):
        for code in (0, 1, 3, 126, 127, 200):
            self.assertEqual(self.rcmd("code", str(code)).returncode, code)
        self.assertEqual(self.rcmd("killed", "9").returncode, 128 + 9)
        self.assertEqual(self.rcmd("killed", "15").returncode, 128 + 15)

    def test_argv_is_sent_exactly(self):
        self.rcmd("code", "0", "a b", "", "$HOME;x")
        self.assertEqual(self.peer.events[-1], ("exec", 0, [b"code", b"0", b"a b", b"", b"$HOME;x"]))
        r = self.run_cli("rcmd", "--insecure-no-auth", "--shell", self.peer.address, "--",
                         "code", "0", "|", "x")
        self.assertEqual(self.peer.events[-1], ("exec", 1, [b"code 0 | x"]))
        self.assertEqual(r.returncode, 0)

    def test_stdin_is_forwarded_whole(self):
        data = os.urandom(3 << 20)
        r = self.rcmd("cat", input=data)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(hashlib.sha256(r.stdout).hexdigest(),
                         hashlib.sha256(data).hexdigest())

    def test_ctrl_c_becomes_a_signal_frame(self):
        p = self.sockserve("rcmd", "--insecure-no-auth", self.peer.address, "--", "wait",
                           stdin=subprocess.PIPE)
        self.assertTrue(self.peer.got_exec.wait(10 * sstest.SLOW))
        time.sleep(0.1)
        p.signal(signal.SIGINT)
        self.assertEqual(p.wait(), 130)
        self.assertIn(("signal", signal.SIGINT), self.peer.events)

    def test_second_ctrl_c_gives_up(self):
        p = self.sockserve("rcmd", "--insecure-no-auth", self.peer.address, "--", "deaf",
                           stdin=subprocess.PIPE)
        self.assertTrue(self.peer.got_exec.wait(10 * sstest.SLOW))
        time.sleep(0.1)
        p.signal(signal.SIGINT)
        self.assertTrue(sstest.wait_until(lambda: ("signal", 2) in self.peer.events, 5))
        p.signal(signal.SIGINT)
        self.assertEqual(p.wait(), 130)

    def test_closed_stdout_ends_quietly(self):
        # `sockserve rcmd ... | head -c 10`: exit 141, no error message
        cmd = "'%s' rcmd --insecure-no-auth %s -- flood | head -c 10 >/dev/null; " \
              "echo ${PIPESTATUS[0]} >&2" % (sstest.SOCKSERVE, self.peer.address)
        r = subprocess.run(["bash", "-c", cmd], capture_output=True, timeout=30 * sstest.SLOW)
        self.assertEqual(r.stderr.strip(), b"141")

    def test_bad_frame_is_255(self):
        r = self.rcmd("bad")
        self.assertEqual(r.returncode, 255)
        self.assertIn(b"protocol error", r.stderr)
        self.assertEqual(len(r.stderr.strip().split(b"\n")), 1)

    def test_server_gone_before_exit_is_255(self):
        r = self.rcmd("close")
        self.assertEqual(r.returncode, 255)
        self.assertEqual(r.stdout, b"partial")

    def test_nobody_listening_is_255(self):
        r = self.run_cli("rcmd", "--insecure-no-auth", "unix:@sockserve-nobody-%d" % os.getpid(),
                         "--", "true")
        self.assertEqual(r.returncode, 255)
        self.assertEqual(len(r.stderr.strip().split(b"\n")), 1)

    def test_interactive_session_runs_each_line_in_the_shell(self):
        r = self.run_cli("rcmd", "--insecure-no-auth", self.peer.address,
                         input=b"outerr\n\n   \ncode 4\nq\nouterr\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        execs = [e for e in self.peer.events if e[0] == "exec"]
        self.assertEqual(execs, [("exec", 1, [b"outerr"]), ("exec", 1, [b"code 4"])])

    def test_usage_errors(self):
        self.assertEqual(self.run_cli("rcmd", "--insecure-no-auth", "tcp://192.0.2.1:1", "--",
                                      "true").returncode, 2)
        self.assertEqual(self.run_cli("rcmd", "tcp://127.0.0.1:1", "--", "true").returncode, 2)
        self.assertEqual(self.run_cli("rcmd", "--protocol", "x").returncode, 2)

    def test_group_readable_key_is_refused(self):
        d = sstest.temp_dir()
        key = os.path.join(d, "key")
        self.assertEqual(self.run_cli("keygen", key).returncode, 0)
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        self.assertEqual(self.run_cli("keygen", key).returncode, 1)  # never overwrites
        os.chmod(key, 0o644)
        r = self.run_cli("rcmd", "--key", key, "tcp://127.0.0.1:1", "--", "true")
        self.assertEqual(r.returncode, 2)  # a key file given on the command line: usage
        self.assertIn(b"accessible by others", r.stderr)


class ImpostorServer:
    """A TLS server that ignores the client's PSK and presents a self-signed
    certificate instead (finding: PSK client accepts any certificate). It
    records every application byte it manages to read."""

    def __init__(self, d):
        import ssl
        r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-nodes", "-keyout", "imp.key",
                            "-out", "imp.pem", "-days", "2", "-subj", "/CN=impostor"],
                           cwd=d, capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        self.ctx.load_cert_chain(os.path.join(d, "imp.pem"), os.path.join(d, "imp.key"))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(10 * sstest.SLOW)
        self.address = "tcp://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.received = b""
        self.handshakes = 0
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        conn.settimeout(5 * sstest.SLOW)
        try:
            with self.ctx.wrap_socket(conn, server_side=True) as tls:
                self.handshakes += 1
                tls.sendall(frame(HELLO, b"RCMD\x01\x00impostor"))
                while True:
                    chunk = tls.recv(65536)
                    if not chunk:
                        break
                    self.received += chunk
                    if EXEC in self.received[:1] or len(self.received) > 11:
                        tls.sendall(frame(STDOUT, b"forged\n") + frame(EXIT, b"\0\0"))
        except (OSError, ValueError):
            pass
        finally:
            conn.close()

    def close(self):
        self.thread.join(15 * sstest.SLOW)
        self.sock.close()


class PskImpostorTest(sstest.TestCase):
    def test_psk_client_refuses_certificate_impostor(self):
        """Finding 1: in key mode the client accepts only a server that used
        the PSK; one that presents a certificate gets no byte of the command
        or of stdin, and the client exits 255."""
        d = sstest.temp_dir()
        key = os.path.join(d, "key")
        self.assertEqual(self.run_cli("keygen", key).returncode, 0)
        imp = ImpostorServer(d)
        try:
            r = self.run_cli("rcmd", "--key", key, imp.address, "--", "echo", "secret-cmd",
                             input=b"secret-stdin\n")
        finally:
            imp.close()
        self.assertEqual(r.returncode, 255, r.stderr)
        self.assertEqual(r.stdout, b"")
        self.assertEqual(imp.received, b"", "the impostor received application bytes")
        self.assertIn(b"authentication failed", r.stderr)


class SeedClientTest(sstest.TestCase):
    """`sockserve rcmd --protocol seed` against the seed's own server."""

    def setUp(self):
        super().setUp()
        self.port = sstest.free_port()
        self.srv = self.seed_py("ssh_server.py", self.port)
        addr = ("127.0.0.1", self.port)

        def probe():
            with socket.socket() as s:
                return s.connect_ex(addr) == 0
        ok = sstest.wait_until(probe, 10)
        self.assertTrue(ok, "seed server did not start")
        # that probe connection was accepted: the seed server serves one
        # client at a time, and it has gone, so the next one is ours

    def test_command_output(self):
        r = self.run_cli("rcmd", "--protocol", "seed", "tcp://127.0.0.1:%d" % self.port,
                         "--", "echo", "hello", "world")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"hello world\n")

    def test_empty_output_and_session(self):
        r = self.run_cli("rcmd", "--protocol", "seed", "tcp://127.0.0.1:%d" % self.port,
                         input=b"true\n\necho a\nq\necho never\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"cmd execution has no output...\na\n")

    def test_large_output(self):
        r = self.run_cli("rcmd", "--protocol", "seed", "tcp://127.0.0.1:%d" % self.port,
                         "--", "head", "-c", "2000000", "/dev/zero")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"\0" * 2000000)


if __name__ == "__main__":
    sstest.main()

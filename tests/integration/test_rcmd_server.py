# SPDX-License-Identifier: MIT
# ctest-labels: tsan
"""`sockserve rcmd-server` end to end.

The seed protocol (--protocol seed) is checked against the seed's own Python
client and against `sockserve rcmd --protocol seed`; the flag checks of the
server (key / --insecure-no-auth / loopback) are checked as usage errors.
"""
import hashlib
import os
import re
import signal
import shutil
import socket
import struct
import subprocess
import time

import sstest

# CLI.md "Privileges": without authentication, root must name the user to
# serve as (--user); the tests run as whoever they are.
AS_USER = ["--user", "root"] if os.geteuid() == 0 else []


def alive(pid):
    """True while `pid` runs (a zombie counts as gone: it runs nothing)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def reap_leftover(pid):
    """A test's own leftover (the bug it looks for): end it, by its pid."""
    if alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class SeedProtocol(sstest.TestCase):
    def start_seed_server(self, *extra):
        return self.server("rcmd-server", "--protocol", "seed", "--insecure-no-auth", "-v",
                           *AS_USER, *extra, "tcp://127.0.0.1:0")

    def test_seed_python_client(self):
        srv, address = self.start_seed_server()
        port = sstest.split_inet(address)[1]
        cli = self.seed_py("ssh_client.py", port)
        cli.write(b"echo hello seed\n")
        cli.wait_out(b"hello seed\n\n==========recv done")
        self.assertIn(b"['CMD_RESULT_SIZE', '11']", cli.out_data)
        cli.write(b"true\n")
        cli.wait_out(b"cmd execution has no output...")
        cli.write(b"q\n")
        self.assertEqual(cli.wait(), 0)
        srv.wait_stderr(r'rcmd: audit peer=tcp://127\.0\.0\.1:\d+ cmd=sh:"echo hello seed" '
                        r'status=exit:0 time=\d+\.\d{3}s in=0 out=11 err=0')
        srv.wait_stderr(r'cmd=sh:"true" status=exit:0')

    def test_seed_sockserve_client(self):
        srv, address = self.start_seed_server()
        r = self.run_cli("rcmd", "--protocol", "seed", address, "printf", "'a\\nb'")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"a\nb")
        r = self.run_cli("rcmd", "--protocol", "seed", address, "echo", "err", ">&2")
        self.assertEqual(r.stdout, b"cmd execution has no output...")

    def test_seed_exchange_bytes(self):
        """The exact bytes: whitespace stripped, size line, ack, result."""
        srv, address = self.start_seed_server()
        with sstest.connect(address) as s:
            s.sendall(b"  echo 12345  \n")
            self.assertEqual(s.recv(100), b"CMD_RESULT_SIZE|6")
            s.sendall(b"CMD_RESULT")
            got = b""
            while len(got) < 6:
                chunk = s.recv(100)
                self.assertTrue(chunk)
                got += chunk
            self.assertEqual(got, b"12345\n")
            # stripped as Python's str.strip(): ASCII separators, NBSP, U+3000
            line = "\x1c\xa0echo 678\u3000\x1f"
            self.assertEqual(line.strip(), "echo 678")
            s.sendall(line.encode())
            self.assertEqual(s.recv(100), b"CMD_RESULT_SIZE|4")
            s.sendall(b"CMD_RESULT")
            got = b""
            while len(got) < 4:
                chunk = s.recv(100)
                self.assertTrue(chunk)
                got += chunk
            self.assertEqual(got, b"678\n")
            # an all-blank line runs `sh -c ''`: no output
            s.sendall(b"   ")
            self.assertEqual(s.recv(100), b"CMD_RESULT_SIZE|30")
            s.sendall(b"x")  # the seed does not check the ack
            got = b""
            while len(got) < 30:
                chunk = s.recv(100)
                self.assertTrue(chunk)
                got += chunk
            self.assertEqual(got, b"cmd execution has no output...")

    def test_clean_environment_and_fds(self):
        srv, address = self.start_seed_server()
        env = dict(os.environ, SOCKSERVE_LEAK="yes")
        r = subprocess.run([sstest.SOCKSERVE, "rcmd", "--protocol", "seed", address,
                            "env; ls /proc/self/fd"], capture_output=True, env=env,
                           timeout=20 * sstest.SLOW)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.decode()
        self.assertNotIn("SOCKSERVE_LEAK", out)
        self.assertIn("PATH=/usr/local/bin:/usr/bin:/bin\n", out)
        self.assertIn("LANG=C.UTF-8\n", out)
        fds = sorted(int(x) for x in re.findall(r"^(\d+)$", out, re.M))
        # 0-2 and the directory ls itself opened
        self.assertLessEqual(len(fds), 4, out)
        self.assertEqual(fds[:3], [0, 1, 2])

    def test_timeout_kills_the_group(self):
        marker = "sleep 1017.%d" % os.getpid()
        srv, address = self.start_seed_server("--timeout", "0.5")
        t0 = time.monotonic()
        r = self.run_cli("rcmd", "--protocol", "seed", address,
                         "(%s) & %s; echo never" % (marker, marker))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"cmd execution has no output...")
        self.assertLess(time.monotonic() - t0, 15 * sstest.SLOW)
        self.assertTrue(sstest.wait_until(
            lambda: subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode
            == 1), "a process of the command is left")
        srv.wait_stderr(r'status=signal:TERM timeout')

    def test_disconnect_kills_the_command(self):
        marker = "sleep 1043.%d" % os.getpid()
        srv, address = self.start_seed_server()
        with sstest.connect(address) as s:
            s.sendall(marker.encode())
            self.assertTrue(sstest.wait_until(lambda: pgrep(marker)), "command never started")
        self.assertTrue(sstest.wait_until(lambda: not pgrep(marker)), "command survived")
        srv.wait_stderr(r'cmd=sh:"%s" status=signal:KILL' % re.escape(marker))

    def test_seed_background_child_does_not_hold_the_reply(self):
        """Finding 7: the seed server waits for the command's exit, not for its
        stdout to close: a background child does not keep the reply (or a
        thread) for its whole life, and it dies with the command."""
        srv, address = self.start_seed_server()
        t0 = time.monotonic()
        r = self.run_cli("rcmd", "--protocol", "seed", address, "sleep 300 & echo $!",
                         timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        pid = int(r.stdout)
        try:
            self.assertLess(time.monotonic() - t0, 4 * sstest.SLOW)
            self.assertTrue(sstest.wait_until(lambda: not alive(pid), timeout=3),
                            "the background child survived")
        finally:
            reap_leftover(pid)

    def test_allow_is_refused(self):
        r = self.run_cli("rcmd-server", "--protocol", "seed", "--insecure-no-auth",
                         "--allow", "ls", "tcp://127.0.0.1:0")
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"--allow", r.stderr)

    def test_max_output_closes(self):
        srv, address = self.start_seed_server("--max-output", "1000")
        r = self.run_cli("rcmd", "--protocol", "seed", address, "head -c 5000 /dev/zero")
        self.assertEqual(r.returncode, 255)
        r = self.run_cli("rcmd", "--protocol", "seed", address, "head -c 1000 /dev/zero")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"\0" * 1000)
        srv.wait_stderr(r'output-limit')


def pgrep(marker):
    return subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 0


class Native(sstest.TestCase):
    def start_native(self, *extra):
        return self.server("rcmd-server", "--insecure-no-auth", "-v", *AS_USER, *extra,
                           "tcp://127.0.0.1:0")

    def rcmd(self, address, *cmd, input=b"", key=None):
        auth = ["--key", key] if key else ["--insecure-no-auth"]
        return self.run_cli("rcmd", *auth, address, "--", *cmd, input=input)

    def test_coroutine_model_runs_commands_side_by_side_on_one_loop(self):
        # one loop thread: the second command is answered while the first
        # still runs only if waiting on the first (ss_poll) yields
        srv, address = self.start_native("--model", "coroutine", "--workers", "1")
        slow = subprocess.Popen([sstest.SOCKSERVE, "rcmd", "--insecure-no-auth", address, "--",
                                 "sh", "-c", "sleep 3; echo slow"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.3)
            r = self.rcmd(address, "sh", "-c", "echo fast")
            self.assertEqual((r.returncode, r.stdout), (0, b"fast\n"))
            self.assertIsNone(slow.poll(), "the first command ended before the second was served")
            out, _ = slow.communicate(timeout=20)
            self.assertEqual((slow.returncode, out), (0, b"slow\n"))
        finally:
            if slow.poll() is None:
                slow.kill()
                slow.wait()

    def test_exit_codes_and_streams(self):
        srv, address = self.start_native()
        r = self.rcmd(address, "sh", "-c", "echo out; echo err >&2; exit 3")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (3, b"out\n", b"err\n"))
        self.assertEqual(self.rcmd(address, "true").returncode, 0)
        self.assertEqual(self.rcmd(address, "false").returncode, 1)
        r = self.rcmd(address, "no-such-program-xyz")
        self.assertEqual(r.returncode, 127)
        self.assertIn(b"cannot run 'no-such-program-xyz'", r.stderr)
        self.assertEqual(self.rcmd(address, "sh", "-c", "kill -9 $$").returncode, 137)
        # what the command left running in the background dies with it
        r = self.rcmd(address, "sh", "-c", "(sleep 0.4; echo late-from-bg) & echo hi")
        self.assertEqual((r.returncode, r.stdout), (0, b"hi\n"))
        # started with stdin closed: the connection must not become fd 0
        r = subprocess.run(["/bin/sh", "-c", 'exec "$0" rcmd --insecure-no-auth "$1" -- '
                            'sh -c "sleep 0.2; echo done" <&-', sstest.SOCKSERVE, address],
                           capture_output=True, timeout=20 * sstest.SLOW)
        self.assertEqual((r.returncode, r.stdout), (0, b"done\n"), r.stderr)
        r = self.rcmd(address, "tr", "a-z", "A-Z", input=b"hello\n")
        self.assertEqual((r.returncode, r.stdout), (0, b"HELLO\n"))
        srv.wait_stderr(r'rcmd: audit peer=\S+ cmd="tr" "a-z" "A-Z" status=exit:0 '
                        r'time=\S+ in=6 out=6 err=0')
        srv.wait_stderr(r'status=signal:KILL')

    def test_timeout_leaves_nothing(self):
        marker = "sleep 1023.%d" % os.getpid()
        srv, address = self.start_native("--timeout", "0.5")
        r = self.rcmd(address, "sh", "-c", "(%s) & %s" % (marker, marker))
        self.assertEqual(r.returncode, 128 + 15, r.stderr)
        self.assertIn(b"timeout", r.stderr)
        self.assertTrue(sstest.wait_until(lambda: not pgrep(marker)))

    def test_timeout_kills_setsid_descendants(self):
        """Finding 3: after --timeout, a descendant that called setsid (out of
        the command's process group) dies too."""
        srv, address = self.start_native("--timeout", "1")
        r = self.rcmd(address, "sh", "-c", "setsid sleep 300 & echo $!; sleep 300")
        self.assertEqual(r.returncode, 128 + 15, r.stderr)
        pid = int(r.stdout)
        try:
            self.assertTrue(sstest.wait_until(lambda: not alive(pid), timeout=3),
                            "the setsid descendant survived the timeout")
        finally:
            reap_leftover(pid)

    def test_disconnect_kills_setsid_descendants(self):
        """Finding 3: a client that goes away takes every descendant of its
        command with it, setsid or double fork included."""
        srv, address = self.start_native()
        frame = lambda t, p=b"": struct.pack(">BI", t, len(p)) + p
        with sstest.connect(address) as s:
            s.sendall(frame(1, b"RCMD\x01\x00test"))
            hdr = s.recv(5, socket.MSG_WAITALL)
            s.recv(struct.unpack(">I", hdr[1:])[0], socket.MSG_WAITALL)
            s.sendall(frame(2, b"\x01(setsid sh -c 'sleep 300 & echo $!' &); sleep 300\x00"))
            hdr = s.recv(5, socket.MSG_WAITALL)
            self.assertEqual(hdr[0], 5)
            pid = int(s.recv(struct.unpack(">I", hdr[1:])[0], socket.MSG_WAITALL))
        try:
            self.assertTrue(sstest.wait_until(lambda: not alive(pid), timeout=3),
                            "the double-forked setsid descendant survived the disconnect")
        finally:
            reap_leftover(pid)

    def test_timeout_holds_against_a_client_that_stops_reading(self):
        """--timeout ends a command even while the server is blocked writing to
        a client that takes no output (not after the 60 s write deadline)."""
        marker = "1049.%d" % os.getpid()
        srv, address = self.start_native("--timeout", "1")
        with sstest.connect(address) as s:
            frame = lambda t, p=b"": struct.pack(">BI", t, len(p)) + p
            s.sendall(frame(1, b"RCMD\x01\x00test"))
            hdr = s.recv(5, socket.MSG_WAITALL)
            s.recv(struct.unpack(">I", hdr[1:])[0], socket.MSG_WAITALL)
            # endless output, and we never read it
            s.sendall(frame(2, b"\x01yes %s\x00" % marker.encode()))
            self.assertTrue(sstest.wait_until(lambda: pgrep("yes " + marker)))
            t0 = time.monotonic()
            self.assertTrue(sstest.wait_until(lambda: not pgrep("yes " + marker),
                                              timeout=20),
                            "the command outlived --timeout")
            self.assertLess(time.monotonic() - t0, 20 * sstest.SLOW)
        srv.wait_stderr(r'cmd=sh:"yes %s" status=signal:KILL' % re.escape(marker))

    def test_disconnect_kills_the_command(self):
        marker = "sleep 1029.%d" % os.getpid()
        srv, address = self.start_native()
        cli = self.sockserve("rcmd", "--insecure-no-auth", address, "sh", "-c",
                             "(%s) & %s" % (marker, marker))
        self.assertTrue(sstest.wait_until(lambda: pgrep(marker)), "command never started")
        cli.kill()
        self.assertTrue(sstest.wait_until(lambda: not pgrep(marker)), "command survived")
        self.assertEqual(self.rcmd(address, "true").returncode, 0)

    def test_disconnect_with_unread_stdin_kills_the_command(self):
        """A command that never reads its stdin while the client floods it:
        the server stops reading the connection (bounded memory), yet still
        sees the client go and kills the command."""
        marker = "sleep 1037.%d" % os.getpid()
        srv, address = self.start_native()
        flood = subprocess.Popen(
            ["/bin/sh", "-c", "yes | %s rcmd --insecure-no-auth %s -- sh -c '%s'"
             % (sstest.SOCKSERVE, address, marker)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            self.assertTrue(sstest.wait_until(lambda: pgrep(marker)), "command never started")
            time.sleep(1.0 * sstest.SLOW)  # the stdin backlog fills up
            self.assertTrue(pgrep(marker))
        finally:
            # TERM: the client gives up and resets the connection (a SIGKILLed
            # client's FIN would wait behind the stdin the server is not taking)
            os.killpg(flood.pid, signal.SIGTERM)
            try:
                flood.wait(timeout=10 * sstest.SLOW)
            finally:
                try:
                    os.killpg(flood.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if not sstest.wait_until(lambda: not pgrep(marker), timeout=10):
            srv._pump(0.2)
            self.fail("command survived its client: %r; server: %r; %s" % (subprocess.run(
                ["pgrep", "-af", marker], capture_output=True).stdout, srv.err_lines,
                subprocess.run(["ss", "-tnoi", "sport", "=", ":" + address.rsplit(":", 1)[1]],
                               capture_output=True).stdout.decode()))
        srv.wait_stderr(r'status=signal:KILL')
        self.assertEqual(self.rcmd(address, "true").returncode, 0)

    def test_allow_and_max_output(self):
        srv, address = self.start_native("--allow", "echo", "--max-output", "100")
        r = self.rcmd(address, "echo", "ok")
        self.assertEqual((r.returncode, r.stdout), (0, b"ok\n"))
        self.assertEqual(self.rcmd(address, "/bin/echo", "x").returncode, 126)
        self.assertEqual(self.rcmd(address, "cat").returncode, 126)
        srv.wait_stderr(r'cmd="cat" status=denied')
        srv2, address2 = self.start_native("--max-output", "1000")
        # a command that never ends by itself: only the limit can stop it
        # (a finite one may exit 0 before a slow, sanitized server kills it)
        r = self.rcmd(address2, "yes")
        self.assertEqual(len(r.stdout), 1000)
        self.assertIn(b"output limit", r.stderr)
        self.assertGreaterEqual(r.returncode, 128)

    def test_ctrl_c_is_forwarded(self):
        marker = "sleep 1031.%d" % os.getpid()
        srv, address = self.start_native()
        cli = self.sockserve("rcmd", "--insecure-no-auth", address, "sh", "-c",
                             "trap 'echo got-int; exit 7' INT; %s & echo ready; wait" % marker)
        # output reaching the client means it is in its loop, its Ctrl-C handler set
        cli.wait_out(b"ready\n")
        cli.signal(signal.SIGINT)
        self.assertEqual(cli.wait(), 7)
        self.assertIn(b"got-int", cli.out_data)
        self.assertTrue(sstest.wait_until(lambda: not pgrep(marker)))

    def test_protocol_error_closes_only_that_connection(self):
        srv, address = self.start_native()
        with sstest.connect(address) as s:
            s.sendall(struct.pack(">BI", 1, 10) + b"RCMD\x01\x00sock")
            hdr = s.recv(5)
            self.assertEqual(hdr[0], 1)
            s.recv(struct.unpack(">I", hdr[1:])[0])
            s.sendall(struct.pack(">BI", 3, 0xFFFFFFFF))  # STDIN over its bound
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            self.assertEqual(data[0], 9)  # ERROR
            self.assertEqual(struct.unpack(">H", data[5:7])[0], 1)  # PROTOCOL
        srv.wait_stderr(r"protocol error")
        self.assertEqual(self.rcmd(address, "true").returncode, 0)

    def test_stdin_eof_in_its_own_segment(self):
        """STDIN, then STDIN_EOF arriving alone a little later: the command must
        see its end of input at once (it sat in the server before)."""
        srv, address = self.start_native()
        frame = lambda t, p=b"": struct.pack(">BI", t, len(p)) + p
        with sstest.connect(address) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.settimeout(10 * sstest.SLOW)
            s.sendall(frame(1, b"RCMD\x01\x00test"))
            hdr = s.recv(5, socket.MSG_WAITALL)
            self.assertEqual(hdr[0], 1)
            s.recv(struct.unpack(">I", hdr[1:])[0], socket.MSG_WAITALL)
            for round in range(3):  # and again on the same connection
                s.sendall(frame(2, b"\x00cat\x00") + frame(3, b"abc%d" % round))
                time.sleep(0.2)
                s.sendall(frame(4))
                out, exit_frame = b"", None
                while exit_frame is None:
                    hdr = s.recv(5, socket.MSG_WAITALL)
                    self.assertEqual(len(hdr), 5, "server closed the connection")
                    body = s.recv(struct.unpack(">I", hdr[1:])[0], socket.MSG_WAITALL)
                    if hdr[0] == 5:
                        out += body
                    elif hdr[0] == 8:
                        exit_frame = body
                self.assertEqual(out, b"abc%d" % round)
                self.assertEqual(exit_frame, b"\x00\x00")

    def test_idle_timeout_closes_idle_connection(self):
        srv, address = self.start_native("--idle-timeout", "0.3")
        with sstest.connect(address) as s:
            s.sendall(struct.pack(">BI", 1, 6) + b"RCMD\x01\x00")
            hdr = s.recv(5)
            self.assertEqual(hdr[0], 1)
            s.settimeout(10 * sstest.SLOW)
            rest = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                rest += chunk
            self.assertEqual(len(rest), struct.unpack(">I", hdr[1:])[0])
        # a command longer than the idle timeout is not cut
        r = self.rcmd(address, "sh", "-c", "sleep 0.6; echo done")
        self.assertEqual((r.returncode, r.stdout), (0, b"done\n"))

    def test_host_names(self):
        srv, address = self.server("rcmd-server", "--insecure-no-auth", *AS_USER, "localhost:0")
        port = sstest.split_inet(address)[1]
        r = self.rcmd("localhost:%d" % port, "echo", "by name")
        self.assertEqual((r.returncode, r.stdout), (0, b"by name\n"), r.stderr)
        r = self.rcmd("nonexistent.invalid:%d" % port, "true")
        self.assertEqual(r.returncode, 255, r.stderr)  # a connect failure, as ssh

    def test_unix_address_insecure(self):
        address = "unix:" + sstest.abstract_name("rcmdsrv")
        srv, bound = self.server("rcmd-server", "--insecure-no-auth", *AS_USER, address)
        r = self.rcmd(bound, "echo", "over unix")
        self.assertEqual((r.returncode, r.stdout), (0, b"over unix\n"), r.stderr)

    def test_big_output_checksum(self):
        srv, address = self.start_native()
        r = subprocess.run([sstest.SOCKSERVE, "rcmd", "--insecure-no-auth", address,
                            "head", "-c", "104857600", "/dev/zero"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60 * sstest.SLOW)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(hashlib.sha256(r.stdout).hexdigest(),
                         hashlib.sha256(b"\0" * 104857600).hexdigest())

    def test_fifty_clients(self):
        srv, address = self.start_native()
        procs = [subprocess.Popen([sstest.SOCKSERVE, "rcmd", "--insecure-no-auth", address,
                                   "echo", "n%d" % i], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE) for i in range(50)]
        for i, p in enumerate(procs):
            out, err = p.communicate(timeout=60 * sstest.SLOW)
            self.assertEqual((p.returncode, out), (0, b"n%d\n" % i), err)


class Tls(sstest.TestCase):
    def key(self, name="k"):
        path = os.path.join(sstest.temp_dir(), name)
        r = self.run_cli("keygen", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        return path

    def test_psk_roundtrip_and_wrong_key(self):
        k1, k2 = self.key(), self.key()
        srv, address = self.server("rcmd-server", "--key", k1, "tcp://127.0.0.1:0")
        r = self.run_cli("rcmd", "--key", k1, address, "echo", "secret")
        self.assertEqual((r.returncode, r.stdout), (0, b"secret\n"), r.stderr)
        r = self.run_cli("rcmd", "--key", k2, address, "echo", "x")
        self.assertEqual(r.returncode, 255)
        self.assertEqual(r.stdout, b"")
        srv.wait_stderr(r"authentication failed")
        r = self.run_cli("rcmd", "--key", k1, address, "echo", "again")
        self.assertEqual((r.returncode, r.stdout), (0, b"again\n"), r.stderr)

    def test_audit_line_by_default(self):
        """A command service logs who ran what without -v, as sshd does."""
        k = self.key()
        srv, address = self.server("rcmd-server", "--key", k, "tcp://127.0.0.1:0")
        r = self.run_cli("rcmd", "--key", k, address, "sh", "-c", "exit 3")
        self.assertEqual(r.returncode, 3, r.stderr)
        srv.wait_stderr(r'rcmd: audit peer=tcp://127\.0\.0\.1:\d+ cmd="sh" "-c" "exit 3" '
                        r'status=exit:3 ')
        srv, address = self.server("rcmd-server", "-q", "--key", k, "tcp://127.0.0.1:0")
        r = self.run_cli("rcmd", "--key", k, address, "true")
        self.assertEqual(r.returncode, 0, r.stderr)
        srv.signal(signal.SIGTERM)
        self.assertEqual(srv.wait(), 0)
        self.assertFalse([l for l in srv.err_lines if "audit" in l], srv.err_lines)

    def test_unauthenticated_flood_is_capped(self):
        """--max-unauth: a flood of stalled handshakes keeps at most N of them
        (the oldest are cut); an authenticated session goes on, and a new
        client with the key gets in while the flood is still there."""
        import select
        k = self.key()
        srv, address = self.server("rcmd-server", "--key", k, "--max-unauth", "3",
                                   "tcp://127.0.0.1:0")
        sess = self.sockserve("rcmd", "--key", k, address, stdin=subprocess.PIPE)
        sess.write(b"echo one\n")
        sess.wait_out(b"one\n")
        host, port = sstest.split_inet(address)
        flood = []
        try:
            for _ in range(12):
                f = socket.create_connection((host, port), timeout=5)
                # one byte of a TLS record: a silent connection never gets a
                # worker (it waits in the acceptor), this one is a
                # handshake that never finishes
                f.sendall(b"\x16")
                flood.append(f)
            def cut():  # closed by the server: readable (end of file or reset)
                r, _, _ = select.select(flood, [], [], 0)
                return set(r)
            self.assertTrue(sstest.wait_until(lambda: len(cut()) >= 9, timeout=10),
                            "only %d of 12 cut" % len(cut()))
            time.sleep(0.3 * sstest.SLOW)
            self.assertEqual(cut(), set(flood[:9]))  # the oldest nine, not the newest three
            sess.write(b"echo two\n")
            sess.wait_out(b"two\n")
            r = self.run_cli("rcmd", "--key", k, address, "echo", "three")
            self.assertEqual((r.returncode, r.stdout), (0, b"three\n"), r.stderr)
            self.assertIn(flood[9], cut())  # it made room by cutting the oldest left
        finally:
            for f in flood:
                f.close()
        srv.wait_stderr(r"not admitted yet, cut to make room")
        srv.wait_stderr(r"closed before authenticating")
        self.assertFalse([l for l in srv.err_lines if "authentication failed" in l],
                         srv.err_lines)
        sess.close_stdin()
        self.assertEqual(sess.wait(), 0)

    def test_certificate_mode(self):
        d = sstest.temp_dir()
        def run_openssl(*args):
            r = subprocess.run(["openssl"] + list(args), capture_output=True, cwd=d,
                               timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
        def ca(name):
            run_openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", name + ".key", "-out", name + ".pem",
                        "-days", "2", "-subj", "/CN=" + name)
        def leaf(name, signer):
            run_openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", name + ".key", "-out", name + ".csr",
                        "-subj", "/CN=" + name)
            run_openssl("x509", "-req", "-in", name + ".csr", "-CA", signer + ".pem",
                        "-CAkey", signer + ".key", "-CAcreateserial", "-days", "2",
                        "-out", name + ".pem")
            os.chmod(os.path.join(d, name + ".key"), 0o600)
        ca("ca")
        ca("otherca")
        leaf("server", "ca")
        leaf("client", "ca")
        leaf("stranger", "otherca")
        p = lambda n: os.path.join(d, n)
        srv, address = self.server("rcmd-server", "--cert", p("server.pem"),
                                   "--cert-key", p("server.key"), "--ca", p("ca.pem"),
                                   "tcp://127.0.0.1:0")
        r = self.run_cli("rcmd", "--cert", p("client.pem"), "--cert-key", p("client.key"),
                         "--ca", p("ca.pem"), address, "echo", "mutual")
        self.assertEqual((r.returncode, r.stdout), (0, b"mutual\n"), r.stderr)
        # a client whose certificate another CA signed is refused
        r = self.run_cli("rcmd", "--cert", p("stranger.pem"), "--cert-key", p("stranger.key"),
                         "--ca", p("ca.pem"), address, "echo", "x")
        self.assertEqual((r.returncode, r.stdout), (255, b""), r.stderr)
        srv.wait_stderr(r"authentication failed")
        # a client that trusts another CA refuses the server
        r = self.run_cli("rcmd", "--cert", p("client.pem"), "--cert-key", p("client.key"),
                         "--ca", p("otherca.pem"), address, "echo", "x")
        self.assertEqual((r.returncode, r.stdout), (255, b""), r.stderr)
        # a PSK client cannot talk to a certificate server
        r = self.run_cli("rcmd", "--key", self.key(), address, "echo", "x")
        self.assertEqual(r.returncode, 255, r.stderr)
        # the server still serves
        r = self.run_cli("rcmd", "--cert", p("client.pem"), "--cert-key", p("client.key"),
                         "--ca", p("ca.pem"), address, "echo", "again")
        self.assertEqual((r.returncode, r.stdout), (0, b"again\n"), r.stderr)
        # a private key others can read is refused, naming the file
        os.chmod(p("server.key"), 0o644)
        r = self.run_cli("rcmd-server", "--cert", p("server.pem"), "--cert-key",
                         p("server.key"), "--ca", p("ca.pem"), "tcp://127.0.0.1:0")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"chmod 600", r.stderr)
        self.assertIn(p("server.key").encode(), r.stderr)


def as_nobody():
    """preexec_fn: become nobody (uid/gid 65534, no groups)."""
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)


class Privileges(sstest.TestCase):
    """Finding 2 (CLI.md "Privileges"): --insecure-no-auth must not hand every
    local user the server's uid."""

    def need_root(self):
        if os.geteuid() != 0:
            print("skipped: needs root (to be root, and to run a client as nobody)")
            self.skipTest("needs root")

    def test_insecure_as_root_needs_user(self):
        self.need_root()
        for args in (["--insecure-no-auth"], ["--protocol", "seed", "--insecure-no-auth"]):
            for address in ("tcp://127.0.0.1:0", "unix:" + sstest.abstract_name("root")):
                r = self.run_cli("rcmd-server", *args, address)
                self.assertEqual(r.returncode, 2, (args, r.stderr))
                lines = r.stderr.decode().strip().splitlines()
                self.assertEqual(len(lines), 1, r.stderr)
                self.assertIn("--user", lines[0])
        srv, address = self.server("rcmd-server", "--insecure-no-auth", "--user", "root",
                                   "tcp://127.0.0.1:0")
        # authenticated, root is fine
        key = os.path.join(sstest.temp_dir(), "k")
        self.assertEqual(self.run_cli("keygen", key).returncode, 0)
        self.server("rcmd-server", "--key", key, "tcp://127.0.0.1:0")

    def test_insecure_unix_path_socket_is_0600_under_umask_000(self):
        path = os.path.join(sstest.temp_dir(), "rcmd.sock")
        old = os.umask(0)
        try:
            srv, bound = self.server("rcmd-server", "--insecure-no-auth", *AS_USER,
                                     "unix:" + path)
        finally:
            os.umask(old)
        self.assertEqual(os.stat(path).st_mode & 0o7777, 0o600)
        r = self.run_cli("rcmd", "--insecure-no-auth", bound, "--", "sh", "-c", "umask")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"0000\n")  # commands keep the server's umask

    def binary_for_nobody(self):
        """A copy of sockserve that another uid can run: the build tree may
        sit under a directory only we can enter (a mktemp -d clone)."""
        d = sstest.temp_dir()
        os.chmod(d, 0o755)
        copy = os.path.join(d, "sockserve")
        shutil.copy(sstest.SOCKSERVE, copy)
        os.chmod(copy, 0o755)
        return copy

    def test_insecure_unix_serves_only_its_own_uid(self):
        self.need_root()
        for address in ("unix:" + sstest.abstract_name("peercred"),
                        "unix:" + os.path.join(sstest.temp_dir(), "s")):
            srv, bound = self.server("rcmd-server", "--insecure-no-auth", "--user", "root",
                                     address)
            r = subprocess.run([self.binary_for_nobody(), "rcmd", "--insecure-no-auth",
                                bound, "--", "id", "-u"], capture_output=True,
                               preexec_fn=as_nobody,
                               timeout=20 * sstest.SLOW)
            self.assertEqual((r.returncode, r.stdout), (255, b""), (address, r.stderr))
            if "@" in address:  # a path socket (0600) does not even let nobody connect
                srv.wait_stderr(r"unix peer uid 65534 \(pid \d+\) refused")
            r = self.run_cli("rcmd", "--insecure-no-auth", bound, "--", "id", "-u")
            self.assertEqual((r.returncode, r.stdout), (0, b"0\n"), r.stderr)

    def test_insecure_loopback_tcp_warns_once(self):
        srv, address = self.server("rcmd-server", "--insecure-no-auth", *AS_USER,
                                   "tcp://127.0.0.1:0")
        srv.wait_stderr(r"^sockserve: rcmd-server: warning: .*every local user can run "
                        r"commands as \S+")
        r = self.run_cli("rcmd", "--insecure-no-auth", address, "--", "true")
        self.assertEqual(r.returncode, 0, r.stderr)
        srv.signal(signal.SIGTERM)
        self.assertEqual(srv.wait(), 0)
        self.assertEqual(len([l for l in srv.err_lines if "every local user" in l]), 1,
                         srv.err_lines)
        # not on a unix socket: only our uid gets in there
        srv, address = self.server("rcmd-server", "--insecure-no-auth", *AS_USER,
                                   "unix:" + sstest.abstract_name("nowarn"))
        srv.signal(signal.SIGTERM)
        self.assertEqual(srv.wait(), 0)
        self.assertFalse([l for l in srv.err_lines if "every local user" in l], srv.err_lines)


class Flags(sstest.TestCase):
    def test_refusals(self):
        cases = [
            (["tcp://127.0.0.1:0"], "no key"),
            (["--protocol", "seed", "tcp://127.0.0.1:0"], "cleartext"),
            (["--insecure-no-auth", "tcp://0.0.0.0:0"], "loopback"),
            (["--insecure-no-auth", ":0"], "loopback"),  # a server's :PORT is every interface
            (["--protocol", "bogus", "--insecure-no-auth", "tcp://127.0.0.1:0"], "bogus"),
            (["--timeout", "x", "--insecure-no-auth"], "timeout"),
            (["--cert", "a.pem", "--insecure-no-auth"], "do not go together"),
            (["--cert", "a.pem", "--key", "k"], "do not go together"),
            (["--cert", "a.pem", "tcp://127.0.0.1:0"], "needs --cert, --cert-key and --ca"),
            (["--max-unauth", "0", "--insecure-no-auth"], "max-unauth"),
        ]
        for args, word in cases:
            r = self.run_cli("rcmd-server", *args)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            lines = r.stderr.decode().strip().splitlines()
            self.assertEqual(len(lines), 1, r.stderr)
            self.assertIn(word, lines[0])

    def test_key_mode_refused(self):
        d = sstest.temp_dir()
        key = os.path.join(d, "k")
        r = self.run_cli("keygen", key)
        self.assertEqual(r.returncode, 0, r.stderr)
        os.chmod(key, 0o644)
        r = self.run_cli("rcmd-server", "--key", key, "tcp://127.0.0.1:0")
        self.assertEqual(r.returncode, 2)
        lines = r.stderr.decode().strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn(key, lines[0])


if __name__ == "__main__":
    sstest.main()

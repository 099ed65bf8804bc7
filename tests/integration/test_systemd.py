# SPDX-License-Identifier: MIT
"""sockserve under systemd, end to end.

Socket activation through the real `systemd-socket-activate` (package
systemd): a stream echo server on `systemd:`, a datagram `reply` server
(--datagram), a named socket (--fdname) and a wrong name. `fd:N` with a
socket bound by this test and passed down; LISTEN_PID of another process
refused. A fake NOTIFY_SOCKET bound by the test reads READY=1 once the
server serves and STOPPING=1 when SIGTERM makes it drain. The unit files of
packaging/systemd pass `systemd-analyze verify` and install under the prefix
with the prefix's sockserve in ExecStart.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import sstest

ACTIVATE = shutil.which("systemd-socket-activate") or "/usr/bin/systemd-socket-activate"
ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
UNITS_DIR = os.path.join(sstest.SOURCE_DIR, "packaging", "systemd")
# CLI.md "Privileges": without authentication, root must name the user.
AS_USER = ["--user", "root"] if os.geteuid() == 0 else []


def sanitizer_env():
    """systemd-socket-activate gives its child a small environment: pass the
    sanitizers' options on, or a sanitized build would run without them."""
    out = []
    for name in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS", "LSAN_OPTIONS"):
        if name in os.environ:
            out += ["-E", "%s=%s" % (name, os.environ[name])]
    return out


class Activated(sstest.TestCase):
    """Servers started by systemd-socket-activate on the socket it made."""

    def activate(self, listen, *args, datagram=False, fdname=None, env=()):
        opts = ["-l", listen] + (["--datagram"] if datagram else [])
        opts += ["--fdname=%s" % fdname] if fdname else []
        for e in env:
            opts += ["-E", e]
        p = self.start([ACTIVATE] + opts + sanitizer_env() + [sstest.SOCKSERVE] + list(args))
        # it listens, then waits for the first client before it execs us
        p.wait_stderr(r"Listening on .* as 3\.")
        return p

    def activate_tcp(self, *args, datagram=False, **kw):
        """On 127.0.0.1:PORT; a port taken meanwhile by someone else is
        tried again with another (the activator needs a fixed one)."""
        kind = socket.SOCK_DGRAM if datagram else socket.SOCK_STREAM
        for _ in range(5):
            port = sstest.free_port(kind)
            try:
                return self.activate("127.0.0.1:%d" % port, *args, datagram=datagram,
                                     **kw), port
            except AssertionError as e:
                if "Address already in use" not in str(e):
                    raise
        self.fail("no free port for systemd-socket-activate")

    def unix_path(self, name):
        d = sstest.temp_dir()
        self.addCleanup(shutil.rmtree, d, True)
        return os.path.join(d, name)

    def stop_cleanly(self, p):
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(), 0, p.err_lines)

    def test_stream_echo_on_systemd(self):
        for model in ("threading", "event", "prefork"):
            with self.subTest(model=model):
                p, port = self.activate_tcp("echo", "--model", model, "systemd:")
                c = socket.create_connection(("127.0.0.1", port), timeout=10 * sstest.SLOW)
                c.sendall(b"first, before the server runs\n")
                # the socket's own canonical address
                self.assertEqual(p.wait_listening(), "tcp://127.0.0.1:%d" % port)
                self.assertEqual(c.recv(100), b"first, before the server runs\n")
                c.close()
                with sstest.connect("tcp://127.0.0.1:%d" % port) as c2:
                    c2.sendall(b"second")
                    self.assertEqual(c2.recv(100), b"second")
                self.stop_cleanly(p)

    def test_datagram_reply_on_systemd(self):
        p, port = self.activate_tcp("reply", "--rule", "nihao=hello,baby,nihao",
                                    "--default", "?", "systemd:", datagram=True)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(10 * sstest.SLOW)
            u.sendto(b"nihao", ("127.0.0.1", port))
            self.assertEqual(p.wait_listening(), "udp://127.0.0.1:%d" % port)
            self.assertEqual(u.recv(100), b"hello,baby,nihao")
            u.sendto(b"what", ("127.0.0.1", port))
            self.assertEqual(u.recv(100), b"?")
        self.stop_cleanly(p)

    def test_named_socket(self):
        path = self.unix_path("web.sock")
        p = self.activate(path, "echo", "--upper", "systemd:web", fdname="web")
        c = socket.socket(socket.AF_UNIX)
        c.settimeout(10 * sstest.SLOW)
        c.connect(path)
        c.sendall(b"named")
        self.assertEqual(p.wait_listening(), "unix:" + path)
        self.assertEqual(c.recv(100), b"NAMED")
        c.close()
        self.stop_cleanly(p)
        # the socket file is the activator's, not the server's to remove
        self.assertTrue(os.path.exists(path))

    @unittest.skipUnless(os.geteuid() == 0, "--user needs root")
    def test_user_leaves_the_activators_socket_file_alone(self):
        path = self.unix_path("echo.sock")
        p = self.activate(path, "echo", "--user", "nobody", "systemd:")
        c = socket.socket(socket.AF_UNIX)
        c.settimeout(10 * sstest.SLOW)
        c.connect(path)
        c.sendall(b"x")
        self.assertEqual(p.wait_listening(), "unix:" + path)
        self.assertEqual(c.recv(10), b"x")
        c.close()
        # --user gives away a socket file the server made, not this one
        self.assertEqual(os.stat(path).st_uid, 0)
        self.stop_cleanly(p)

    def test_wrong_name_is_a_clear_runtime_error(self):
        path = self.unix_path("web.sock")
        p = self.activate(path, "echo", "systemd:api", fdname="web")
        c = socket.socket(socket.AF_UNIX)
        c.connect(path)
        c.sendall(b"x")
        self.assertEqual(p.wait(), 1)  # CLI.md: what fails at run time exits 1
        c.close()
        self.assertIn("sockserve: 'systemd:api': no socket named 'api' among the 1 passed "
                      "(LISTEN_FDNAMES=web)", p.err_lines)
        self.assertFalse([l for l in p.err_lines if "listening on" in l])

    def test_datagram_socket_refused_by_a_stream_server(self):
        d = sstest.temp_dir()
        self.addCleanup(shutil.rmtree, d, True)
        key = os.path.join(d, "k")
        self.assertEqual(self.run_cli("keygen", key).returncode, 0)
        p, port = self.activate_tcp("rcmd-server", "--key", key, "systemd:", datagram=True)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.sendto(b"x", ("127.0.0.1", port))
            self.assertEqual(p.wait(), 1)
        self.assertIn("sockserve: 'systemd:': descriptor 3 is a datagram socket "
                      "(udp://127.0.0.1:%d), but this server serves stream sockets only" % port,
                      p.err_lines)

    def test_rcmd_server_insecure_on_an_activated_loopback_socket(self):
        p, port = self.activate_tcp("rcmd-server", "--insecure-no-auth", *AS_USER, "systemd:")
        address = "tcp://127.0.0.1:%d" % port
        r = subprocess.run([sstest.SOCKSERVE, "rcmd", "--insecure-no-auth", address, "--",
                            "echo", "activated"], capture_output=True,
                           timeout=20 * sstest.SLOW)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"activated\n")
        self.assertEqual(p.wait_listening(), address)
        self.stop_cleanly(p)


def passed_at_3(argv, fd, listen_pid, env_extra=None):
    """argv run with `fd` at descriptor 3 and LISTEN_FDS=1, as a manager
    would start it; LISTEN_PID is `listen_pid`, or the process's own ("self").
    sh puts the descriptor in place and execs, so the pid stays the same."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
    env.update(env_extra or {})
    env["LISTEN_FDS"] = "1"
    pid = "$$" if listen_pid == "self" else str(listen_pid)
    move = "" if fd == 3 else " 3<&%d %d<&-" % (fd, fd)
    script = 'LISTEN_PID=%s; export LISTEN_PID; exec "$0" "$@"%s' % (pid, move)
    return ["/bin/sh", "-c", script] + argv, env


class Inherited(sstest.TestCase):
    """fd:N and hand-made activation environments."""

    def start_with(self, argv, fds, env=None):
        return self.start(argv, env=env, pass_fds=fds)

    def bound(self, kind=socket.SOCK_STREAM, listening=False):
        s = socket.socket(socket.AF_INET, kind)
        self.addCleanup(s.close)
        s.bind(("127.0.0.1", 0))
        if listening:
            s.listen(8)
        return s

    def test_fd_bound_socket(self):
        for listening in (False, True):
            with self.subTest(listening=listening):
                s = self.bound(listening=listening)
                fd = s.fileno()
                p = self.start_with([sstest.SOCKSERVE, "echo", "fd:%d" % fd], [fd])
                want = "tcp://127.0.0.1:%d" % s.getsockname()[1]
                self.assertEqual(p.wait_listening(), want)
                with sstest.connect(want) as c:
                    c.sendall(b"inherited")
                    self.assertEqual(c.recv(100), b"inherited")
                p.signal(signal.SIGTERM)
                self.assertEqual(p.wait(), 0, p.err_lines)

    def test_fd_datagram_socket(self):
        s = self.bound(socket.SOCK_DGRAM)
        fd = s.fileno()
        p = self.start_with([sstest.SOCKSERVE, "echo", "--prefix", "> ", "fd:%d" % fd], [fd])
        want = "udp://127.0.0.1:%d" % s.getsockname()[1]
        self.assertEqual(p.wait_listening(), want)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(10 * sstest.SLOW)
            u.sendto(b"dgram", s.getsockname())
            self.assertEqual(u.recv(100), b"> dgram")
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(), 0, p.err_lines)

    def test_fd_errors(self):
        r = self.run_cli("echo", "fd:9")  # nothing open there in the child
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, b"sockserve: 'fd:9': descriptor 9 is not open\n")
        r = self.run_cli("echo", "fd:0")  # stdin: a pipe
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, b"sockserve: 'fd:0': descriptor 0 is not a socket\n")
        r = self.run_cli("echo", "fd:x")
        self.assertEqual(r.returncode, 2)  # what the user typed
        self.assertIn(b"bad address 'fd:x'", r.stderr)
        r = self.run_cli("connect", "systemd:")
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"only a server can take it", r.stderr)

    def test_systemd_without_listen_fds(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
        r = subprocess.run([sstest.SOCKSERVE, "echo", "systemd:"], capture_output=True,
                           env=env, timeout=20 * sstest.SLOW)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"sockserve: 'systemd:': no socket was passed: LISTEN_FDS is not set",
                      r.stderr)

    def test_listen_pid_of_another_process_is_refused(self):
        s = self.bound(listening=True)
        fd = s.fileno()
        # the same start with our own pid serves: the refusal is the pid's
        argv, env = passed_at_3([sstest.SOCKSERVE, "echo", "systemd:"], fd, "self")
        p = self.start_with(argv, [fd], env)
        self.assertEqual(p.wait_listening(), "tcp://127.0.0.1:%d" % s.getsockname()[1])
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(), 0, p.err_lines)

        argv, env = passed_at_3([sstest.SOCKSERVE, "echo", "systemd:"], fd, 1)
        p = self.start_with(argv, [fd], env)
        self.assertEqual(p.wait(), 1)
        self.assertEqual(len(p.err_lines), 1, p.err_lines)
        self.assertRegex(p.err_lines[0], r"^sockserve: 'systemd:': LISTEN_PID=1 is not this "
                                         r"process \(pid \d+\): the sockets were passed to "
                                         r"another one$")


class Notify(sstest.TestCase):
    """NOTIFY_SOCKET: a unix datagram socket of the test's, as systemd's."""

    def notify_socket(self, abstract=False):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        if abstract:
            name = sstest.abstract_name("notify")
            s.bind("\0" + name[1:])
        else:
            d = sstest.temp_dir()
            self.addCleanup(shutil.rmtree, d, True)
            name = os.path.join(d, "notify")
            s.bind(name)
        s.settimeout(10 * sstest.SLOW)
        return s, name

    def note(self, s):
        return s.recv(4096).decode()

    def test_ready_then_stopping(self):
        for abstract in (False, True):
            with self.subTest(abstract=abstract):
                s, name = self.notify_socket(abstract)
                env = dict(os.environ, NOTIFY_SOCKET=name)
                p, address = self.server("echo", "--model", "threading", "tcp://127.0.0.1:0",
                                         env=env)
                ready = self.note(s)
                self.assertEqual(ready.split("\n")[0], "READY=1")
                self.assertIn("STATUS=serving on %s" % address, ready)
                with sstest.connect(address) as c:  # served after READY=1
                    c.sendall(b"ready")
                    self.assertEqual(c.recv(100), b"ready")
                p.signal(signal.SIGTERM)
                stopping = self.note(s)
                self.assertEqual(stopping.split("\n")[0], "STOPPING=1")
                self.assertEqual(p.wait(), 0, p.err_lines)
                s.settimeout(0.2)
                self.assertRaises(socket.timeout, s.recv, 4096)  # once each

    def test_stopping_while_a_request_drains(self):
        s, name = self.notify_socket()
        env = dict(os.environ, NOTIFY_SOCKET=name)
        p, address = self.server("echo", "--model", "threading", "--drain-timeout", "10",
                                 "tcp://127.0.0.1:0", env=env)
        self.assertTrue(self.note(s).startswith("READY=1\n"))
        c = sstest.connect(address)
        c.sendall(b"busy")
        self.assertEqual(c.recv(100), b"busy")
        p.signal(signal.SIGTERM)
        # STOPPING=1 comes as the drain starts, while the connection is open
        self.assertTrue(self.note(s).startswith("STOPPING=1\n"))
        self.assertIsNone(p.p.poll())
        c.close()
        self.assertEqual(p.wait(), 0, p.err_lines)

    def test_notify_with_socket_activation(self):
        # as sockserve-echo.service runs: Type=notify on a passed socket
        s, name = self.notify_socket()
        port = sstest.free_port()
        p = self.start([ACTIVATE, "-l", "127.0.0.1:%d" % port, "-E", "NOTIFY_SOCKET=" + name]
                       + sanitizer_env() + [sstest.SOCKSERVE, "echo", "systemd:"])
        p.wait_stderr(r"Listening on .* as 3\.")
        c = socket.create_connection(("127.0.0.1", port), timeout=10 * sstest.SLOW)
        c.sendall(b"wake")
        self.assertEqual(c.recv(100), b"wake")
        self.assertIn("STATUS=serving on tcp://127.0.0.1:%d" % port, self.note(s))
        c.close()
        p.signal(signal.SIGTERM)
        self.assertTrue(self.note(s).startswith("STOPPING=1\n"))
        self.assertEqual(p.wait(), 0, p.err_lines)

    def test_a_manager_that_is_gone_does_not_stop_the_server(self):
        env = dict(os.environ, NOTIFY_SOCKET="/nonexistent/sockserve-notify")
        p, address = self.server("echo", "tcp://127.0.0.1:0", env=env)
        p.wait_stderr(r"warning: cannot notify NOTIFY_SOCKET /nonexistent/sockserve-notify")
        with sstest.connect(address) as c:
            c.sendall(b"on")
            self.assertEqual(c.recv(100), b"on")
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(), 0, p.err_lines)


def units():
    return sorted(f for f in os.listdir(UNITS_DIR) if f.endswith((".service", ".socket")))


class UnitFiles(sstest.TestCase):
    """packaging/systemd: what systemd itself says of the units."""

    def verify(self, directory, names):
        return subprocess.run([ANALYZE, "verify", "--man=no"] +
                              [os.path.join(directory, n) for n in names],
                              capture_output=True, text=True, timeout=60 * sstest.SLOW)

    def copy_units(self, rewrite=None):
        """The units with /usr/bin/sockserve as the one under test (verify
        checks that ExecStart= is executable)."""
        d = tempfile.mkdtemp(prefix="sockserve-units-")
        self.addCleanup(shutil.rmtree, d, True)
        for name in units():
            with open(os.path.join(UNITS_DIR, name)) as f:
                text = f.read().replace("/usr/bin/sockserve", sstest.SOCKSERVE)
            if rewrite:
                text = rewrite(name, text)
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        return d

    def test_the_units_are_shipped(self):
        self.assertEqual(units(), ["sockserve-echo.service", "sockserve-echo.socket",
                                   "sockserve-rcmd.service"])
        with open(os.path.join(UNITS_DIR, "sockserve-echo.service")) as f:
            echo = f.read()
        self.assertIn("\nType=notify\n", echo)
        self.assertIn("\nExecStart=/usr/bin/sockserve echo systemd:\n", echo)
        with open(os.path.join(UNITS_DIR, "sockserve-rcmd.service")) as f:
            rcmd = f.read()
        for line in ("DynamicUser=yes", "ProtectSystem=strict", "ProtectHome=yes",
                     "PrivateTmp=yes", "NoNewPrivileges=yes", "CapabilityBoundingSet=",
                     "SystemCallFilter=@system-service", "Type=notify"):
            self.assertIn("\n%s\n" % line, rcmd)
        self.assertRegex(rcmd, r"\nRestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n")

    def test_systemd_analyze_verify(self):
        # Can it run here at all? A trivial good unit says (it needs no
        # systemd as PID 1, but some containers lack what it does need).
        probe = tempfile.mkdtemp(prefix="sockserve-probe-")
        self.addCleanup(shutil.rmtree, probe, True)
        with open(os.path.join(probe, "probe.service"), "w") as f:
            f.write("[Service]\nType=oneshot\nExecStart=/bin/true\n")
        r = self.verify(probe, ["probe.service"])
        if r.returncode != 0 or r.stdout.strip() or r.stderr.strip():
            self.skipTest("systemd-analyze verify cannot run here: %s"
                          % (r.stderr.strip() or r.stdout.strip() or "exit %d" % r.returncode))

        d = self.copy_units()
        r = self.verify(d, units())
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))

        # and it would say so, were a unit wrong
        bad = self.copy_units(lambda name, text: text.replace("ProtectHome=yes",
                                                              "ProtectHome=yess"))
        r = self.verify(bad, units())
        self.assertIn("yess", r.stdout + r.stderr)

    def test_installed_under_the_prefix(self):
        cmake = os.environ.get("SS_CMAKE") or shutil.which("cmake")
        prefix = tempfile.mkdtemp(prefix="sockserve-prefix-")
        self.addCleanup(shutil.rmtree, prefix, True)
        r = subprocess.run([cmake, "--install", sstest.BUILD_DIR, "--prefix", prefix,
                            "--component", "cli"], capture_output=True, text=True,
                           timeout=120 * sstest.SLOW)
        self.assertEqual(r.returncode, 0, r.stderr)
        unit_dir = os.path.join(prefix, "lib", "systemd", "system")
        self.assertEqual(sorted(os.listdir(unit_dir)), units())
        with open(os.path.join(unit_dir, "sockserve-echo.service")) as f:
            text = f.read()
        self.assertIn("\nExecStart=%s/bin/sockserve echo systemd:\n" % prefix, text)
        self.assertNotIn("/usr/bin/sockserve", text)
        with open(os.path.join(unit_dir, "sockserve-rcmd.service")) as f:
            self.assertNotIn("/usr/bin/sockserve", f.read())


if __name__ == "__main__":
    sstest.main()

# SPDX-License-Identifier: MIT
"""One command-line syntax for every subcommand (cli/opts.c, a table-driven
layer on getopt_long): bundled short flags (-qv), --flag=value as well as
--flag value, -- ending the options, one wording and exit 2 for an unknown
option, a missing value and a bad value, exit 2 for a key or certificate
file given on the command line that cannot be used; and the servers' log
lines: an ISO 8601 time first (unless stderr is the journal), then the
peer, the bytes in and out and the duration of each connection.
"""
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import sstest
from sstest import SLOW

COMMANDS = ["echo", "reply", "connect", "rcmd", "rcmd-server", "keygen", "bench", "exec"]
SERVERS = ["echo", "reply", "rcmd-server", "exec"]
AS_USER = ["--user", "root"] if os.geteuid() == 0 else []
# ISO 8601, UTC, milliseconds: 2026-12-07T09:30:01.123Z
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "

# A server command line for each server subcommand: (args before ADDRESS, after it).
SERVER_ARGS = {
    "echo": ([], []),
    "reply": (["--default", "ok"], []),
    "rcmd-server": (["--insecure-no-auth"] + AS_USER, []),
    "exec": ([], ["--", "cat"]),
}

# For each subcommand: a flag that takes a value, and a bad value for one.
VALUE_FLAG = {
    "echo": "--prefix", "reply": "--rule", "connect": "--timeout", "rcmd": "--key",
    "rcmd-server": "--key", "bench": "--conns", "exec": "--max-conns",
}
BAD_VALUE = {
    "echo": ("--workers", "0"), "reply": ("--reply-rate", "-1"),
    "connect": ("--timeout", "soon"), "rcmd": ("--protocol", "ssh"),
    "rcmd-server": ("--max-output", "lots"), "bench": ("--size", "0"),
    "exec": ("--model", "nope"),
}
# What each needs besides the flag under test to be a whole command line.
OPERANDS = {
    "echo": [], "reply": ["tcp://127.0.0.1:1"], "connect": ["tcp://127.0.0.1:1"],
    "rcmd": ["tcp://127.0.0.1:1", "true"], "rcmd-server": [], "keygen": [],
    "bench": ["tcp://127.0.0.1:1"], "exec": ["tcp://127.0.0.1:1", "--", "cat"],
}


def is_log(line):
    """Not the listening line, nor rcmd-server's one warning at start."""
    return "listening on" not in line and "--insecure-no-auth on TCP" not in line


def exchange(address, data, timeout=5.0):
    with sstest.connect(address, timeout) as s:
        s.sendall(data)
        return s.recv(4096)


class Syntax(sstest.TestCase):
    """The same syntax and the same mistakes, in every subcommand."""

    def usage_line(self, cmd, *args):
        """Runs `sockserve CMD ARGS`: exit 2, one line on stderr, nothing on stdout."""
        r = self.run_cli(cmd, *args)
        self.assertEqual(r.returncode, 2, (cmd, args, r.stderr))
        lines = r.stderr.decode().splitlines()
        self.assertEqual(len(lines), 1, (cmd, args, lines))
        self.assertEqual(r.stdout, b"", (cmd, args))
        return lines[0]

    def test_unknown_option_wording(self):
        for cmd in COMMANDS:
            with self.subTest(cmd=cmd):
                hint = " (see 'sockserve %s --help')" % cmd
                self.assertEqual(self.usage_line(cmd, "--no-such-flag", *OPERANDS[cmd]),
                                 "sockserve: %s: unknown option '--no-such-flag'%s" % (cmd, hint))
                self.assertEqual(self.usage_line(cmd, "--no-such-flag=1", *OPERANDS[cmd]),
                                 "sockserve: %s: unknown option '--no-such-flag'%s" % (cmd, hint))
                self.assertEqual(self.usage_line(cmd, "-Z", *OPERANDS[cmd]),
                                 "sockserve: %s: unknown option '-Z'%s" % (cmd, hint))
                # a name is typed in full: no abbreviations (--hel is not --help)
                self.assertEqual(self.usage_line(cmd, "--hel", *OPERANDS[cmd]),
                                 "sockserve: %s: unknown option '--hel'%s" % (cmd, hint))

    def test_unknown_option_before_the_command(self):
        r = self.run_cli("--no-such-flag=1")
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr, b"sockserve: unknown option '--no-such-flag' "
                                   b"(see 'sockserve --help')\n")

    def test_missing_value_wording(self):
        for cmd, flag in VALUE_FLAG.items():
            with self.subTest(cmd=cmd):
                # the flag last, after the operands: nothing left for its value
                args = [a for a in OPERANDS[cmd] if a not in ("--", "cat", "true")]
                self.assertEqual(self.usage_line(cmd, *args, flag),
                                 "sockserve: %s: option '%s' needs a value "
                                 "(see 'sockserve %s --help')" % (cmd, flag, cmd))

    def test_value_on_a_flag_without_one(self):
        for cmd in COMMANDS:
            with self.subTest(cmd=cmd):
                self.assertEqual(self.usage_line(cmd, "--help=yes"),
                                 "sockserve: %s: option '--help' takes no value "
                                 "(see 'sockserve %s --help')" % (cmd, cmd))
        self.assertIn("option '--once' takes no value", self.usage_line("echo", "--once=1"))
        self.assertIn("option '--quiet' takes no value", self.usage_line("exec", "--quiet=1"))

    def test_bad_value_exits_2(self):
        for cmd, (flag, value) in BAD_VALUE.items():
            with self.subTest(cmd=cmd):
                for args in ([flag, value], ["%s=%s" % (flag, value)]):
                    line = self.usage_line(cmd, *args, *OPERANDS[cmd])
                    self.assertIn("bad value '%s' for %s: " % (value, flag), line)
        # keygen takes one FILE and no value at all
        self.assertIn("one FILE only", self.usage_line("keygen", "a", "b"))

    def test_empty_server_name_is_refused(self):
        """--server-name '' (a script's unset variable) would verify no
        name at all: a usage error, never a connection."""
        for cmd in ("connect", "bench"):
            with self.subTest(cmd=cmd):
                line = self.usage_line(cmd, "--server-name", "", *OPERANDS[cmd])
                self.assertIn("bad value '' for --server-name: ", line)

    def test_short_flags_bundle(self):
        # -h in a bundle is still help; an unknown letter in one is named alone
        for cmd in COMMANDS:
            with self.subTest(cmd=cmd):
                for flags in (["-h"], ["--help"], ["-hZ"]):
                    r = self.run_cli(cmd, *flags)
                    self.assertEqual((r.returncode, r.stderr), (0, b""), (cmd, flags))
                    self.assertTrue(r.stdout.startswith(b"usage: sockserve " + cmd.encode()))
                self.assertIn("unknown option '-Z'", self.usage_line(cmd, "-Z", "-h"))
        for cmd in SERVERS:
            with self.subTest(cmd=cmd):
                self.assertIn("unknown option '-x'", self.usage_line(cmd, "-qvx"))


class KeyFiles(sstest.TestCase):
    """A key or certificate file named on the command line that cannot be used
    is the user's mistake: exit 2 and one line naming it, before any
    connection."""

    def setUp(self):
        super().setUp()
        self.dir = sstest.temp_dir()
        self.missing = os.path.join(self.dir, "no-such-file")

    def check(self, cmd, *args):
        r = self.run_cli(cmd, *args)
        self.assertEqual(r.returncode, 2, (cmd, args, r.stderr))
        self.assertIn(self.missing.encode(), r.stderr)
        self.assertEqual(len(r.stderr.decode().splitlines()), 1, r.stderr)

    def test_key_file(self):
        self.check("rcmd", "--key", self.missing, "tcp://127.0.0.1:1", "true")
        self.check("rcmd", "--key=" + self.missing, "tcp://127.0.0.1:1", "true")
        self.check("rcmd-server", "--key", self.missing, "tcp://127.0.0.1:0")
        self.check("rcmd-server", "--key=" + self.missing, "tcp://127.0.0.1:0")

    def test_rcmd_key_not_private(self):
        key = os.path.join(self.dir, "key")
        self.assertEqual(self.run_cli("keygen", key).returncode, 0)
        os.chmod(key, 0o640)
        for cmd, args in (("rcmd", ["tcp://127.0.0.1:1", "true"]),
                          ("rcmd-server", ["tcp://127.0.0.1:0"])):
            r = self.run_cli(cmd, "--key", key, *args)
            self.assertEqual(r.returncode, 2, (cmd, r.stderr))
            self.assertIn(b"accessible by others", r.stderr)

    def test_certificate_files(self):
        # rcmd used to find out only as it connected (exit 255)
        self.check("rcmd", "--cert", self.missing, "--cert-key", self.missing, "--ca",
                   self.missing, "tcp://127.0.0.1:1", "true")
        self.check("rcmd-server", "--cert", self.missing, "--cert-key", self.missing,
                   "--ca", self.missing, "tcp://127.0.0.1:0")
        for cmd in ("echo", "reply", "exec"):
            args = OPERANDS[cmd] if cmd != "echo" else ["tcp://127.0.0.1:0"]
            self.check(cmd, "--cert", self.missing, "--cert-key", self.missing, *args)
        self.check("connect", "--ca=" + self.missing, "tcp://127.0.0.1:1")
        self.check("bench", "--ca", self.missing, "tcp://127.0.0.1:1")


class ServerSyntax(sstest.TestCase):
    """The syntax at work: what the flags say is what the servers do."""

    def stop(self, p):
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(), 0, p.err_lines)

    def test_flag_value_forms(self):
        for form in (["--prefix", "> "], ["--prefix=> "]):
            p, addr = self.server("echo", *form, "tcp://127.0.0.1:0")
            self.assertEqual(exchange(addr, b"hi"), b"> hi")
            self.stop(p)
        for form in (["--rule", "a=b"], ["--rule=a=b"]):
            p, addr = self.server("reply", "udp://127.0.0.1:0", *form)  # options after too
            with sstest.connect(addr) as s:
                s.send(b"xax")
                self.assertEqual(s.recv(100), b"b")
            self.stop(p)
        for form in (["--max-conns", "1"], ["--max-conns=1"]):
            p, addr = self.server("exec", *form, "tcp://127.0.0.1:0", "--", "tr", "a-z", "A-Z")
            with sstest.connect(addr) as s:
                s.sendall(b"up")
                s.shutdown(socket.SHUT_WR)
                self.assertEqual(s.recv(100), b"UP")
            self.stop(p)
        p, addr = self.server("rcmd-server", "--insecure-no-auth", *AS_USER, "--timeout=20",
                              "tcp://127.0.0.1:0")
        for form in (["--connect-timeout", "5"], ["--connect-timeout=5"]):
            r = self.run_cli("rcmd", "--insecure-no-auth", *form, addr, "--", "echo", "hi")
            self.assertEqual((r.returncode, r.stdout), (0, b"hi\n"), r.stderr)
        self.stop(p)

    def test_dashdash(self):
        # echo, reply, rcmd-server: an operand after --; exec: the program's own flags
        p, addr = self.server("echo", "--upper", "--", "tcp://127.0.0.1:0")
        self.assertEqual(exchange(addr, b"hi"), b"HI")
        self.stop(p)
        p, addr = self.server("reply", "--default=ok", "--", "udp://127.0.0.1:0")
        with sstest.connect(addr) as s:
            s.send(b"x")
            self.assertEqual(s.recv(100), b"ok")
        self.stop(p)
        p, addr = self.server("exec", "tcp://127.0.0.1:0", "--", "echo", "--upper", "-v")
        with sstest.connect(addr) as s:
            s.sendall(b"x")  # a program starts at the client's first byte
            self.assertEqual(s.recv(100), b"--upper -v\n")
        self.stop(p)
        p, addr = self.server("rcmd-server", "--insecure-no-auth", *AS_USER, "--",
                              "tcp://127.0.0.1:0")
        # rcmd: what follows -- (or the first word after ADDRESS) is the command's
        r = self.run_cli("rcmd", "--insecure-no-auth", addr, "--", "echo", "--key", "-v")
        self.assertEqual((r.returncode, r.stdout), (0, b"--key -v\n"), r.stderr)
        r = self.run_cli("rcmd", "--insecure-no-auth", addr, "printf", "%s\\n", "--help")
        self.assertEqual((r.returncode, r.stdout), (0, b"--help\n"), r.stderr)
        r = self.run_cli("rcmd", addr, "--insecure-no-auth", "--connect-timeout=5", "echo", "x")
        self.assertEqual((r.returncode, r.stdout), (0, b"x\n"), r.stderr)
        self.stop(p)

    def test_clients(self):
        p, addr = self.server("echo", "--model=threading", "tcp://127.0.0.1:0")
        for form in (["--timeout", "1"], ["--timeout=1"]):
            r = self.run_cli("connect", *form, "--", addr, input=b"abc\n")
            self.assertEqual((r.returncode, r.stdout), (0, b"abc\n"), r.stderr)
        r = subprocess.run([sstest.SOCKSERVE, "bench", "--conns=2", "--duration", "0.3",
                            "--json", "--", addr], capture_output=True, timeout=30 * SLOW)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b'"conns":2', r.stdout.replace(b" ", b""))
        self.stop(p)
        # keygen: a FILE that looks like a flag, after --
        d = sstest.temp_dir()
        r = subprocess.run([sstest.SOCKSERVE, "keygen", "--", "-key"], cwd=d,
                           capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.exists(os.path.join(d, "-key")))

    def test_quiet_verbose_bundled(self):
        # -qv: quiet, then verbose (the last wins): a line per connection;
        # -vq: quiet. Every server subcommand takes them bundled.
        for cmd in SERVERS:
            before, after = SERVER_ARGS[cmd]
            for bundle, logged in (("-qv", True), ("-vq", False)):
                with self.subTest(cmd=cmd, bundle=bundle):
                    p, addr = self.server(cmd, bundle, *before, "tcp://127.0.0.1:0", *after)
                    self.touch(cmd, addr)
                    self.stop(p)
                    closed = [l for l in p.err_lines if re.search(r"tcp://127\.0\.0\.1:\d+ "
                                                                  r"(closed|.*exited)", l)]
                    self.assertEqual(bool(closed), logged, (cmd, bundle, p.err_lines))

    def touch(self, cmd, addr):
        """One connection that the server sees through and closes."""
        if cmd == "rcmd-server":
            r = self.run_cli("rcmd", "--insecure-no-auth", addr, "--", "true")
            self.assertEqual(r.returncode, 0, r.stderr)
            return
        with sstest.connect(addr) as s:
            s.sendall(b"x")
            if cmd == "exec":
                s.shutdown(socket.SHUT_WR)
            self.assertTrue(s.recv(100))


class LogLines(sstest.TestCase):
    """-v: each connection's line starts with an ISO 8601 UTC time and says the
    peer, the bytes in and out and the duration; with JOURNAL_STREAM naming
    our stderr (systemd's journal, which stamps lines itself) no time."""

    def run_server(self, cmd, journal, extra=()):
        """Serve one connection with -v, stderr to a file; its lines."""
        before, after = SERVER_ARGS[cmd]
        before = before + list(extra)
        err = tempfile.NamedTemporaryFile(prefix="sockserve-test-", suffix=".err")
        st = os.fstat(err.fileno())
        env = dict(os.environ)
        env.pop("JOURNAL_STREAM", None)
        if journal == "ours":
            env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
        elif journal == "other":  # inherited, but stderr went elsewhere
            env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino + 1)
        p = subprocess.Popen([sstest.SOCKSERVE, cmd, "-v", *before, "tcp://127.0.0.1:0", *after],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                             env=env, start_new_session=True)
        try:
            def listening():
                with open(err.name) as f:
                    m = sstest.LISTEN_RE.search(f.read())
                return m.group(1) if m else None
            self.assertTrue(sstest.wait_until(lambda: listening() is not None), cmd)
            addr = listening()
            ServerSyntax.touch(self, cmd, addr)
            with sstest.connect(addr) as s:
                port = s.getsockname()[1]
                s.sendall(b"hello")
                if cmd == "exec":
                    s.shutdown(socket.SHUT_WR)
                if cmd != "rcmd-server":
                    self.assertTrue(s.recv(100))
            # the line comes as the connection ends
            want = r"127\.0\.0\.1:%d closed" % port
            def logged():
                with open(err.name) as f:
                    return re.search(want, f.read())
            sstest.wait_until(logged, 5)
        finally:
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(timeout=10 * SLOW), 0)
        with open(err.name) as f:
            lines = f.read().splitlines()
        err.close()
        return lines, port

    def test_time_peer_bytes_duration(self):
        for cmd in SERVERS:
            with self.subTest(cmd=cmd):
                lines, port = self.run_server(cmd, None)
                logs = [l for l in lines if is_log(l)]
                self.assertTrue(logs, lines)
                for l in logs:
                    self.assertRegex(l, "^" + STAMP + "sockserve: %s: " % cmd, lines)
                self.assertTrue(lines[0].startswith("sockserve: listening on "), lines)
                closed = [l for l in logs if "127.0.0.1:%d closed" % port in l]
                self.assertEqual(len(closed), 1, lines)
                # echo, reply: 5 in, 5 and 2 out; rcmd-server, exec: the
                # bytes its stream carried (exec hands the socket to cat)
                self.assertRegex(closed[0], r"closed after \d+\.\d{3}s, \d+ bytes in, \d+ out")
                if cmd in ("echo", "reply"):
                    self.assertIn(", 5 bytes in, %d out" % (5 if cmd == "echo" else 2),
                                  closed[0])
        # the event model's line says the same (its connections are not streams)
        for cmd in ("echo", "reply"):
            with self.subTest(cmd=cmd, model="event"):
                lines, port = self.run_server(cmd, None, ["--model", "event"])
                closed = [l for l in lines if "127.0.0.1:%d closed" % port in l]
                self.assertEqual(len(closed), 1, lines)
                self.assertRegex(closed[0], "^" + STAMP + r"sockserve: %s: .* closed after "
                                 r"\d+\.\d{3}s, 5 bytes in, %d out$" % (cmd, 5 if cmd == "echo" else 2))

    def test_no_time_when_stderr_is_the_journal(self):
        for cmd in SERVERS:
            with self.subTest(cmd=cmd):
                lines, _ = self.run_server(cmd, "ours")
                logs = [l for l in lines if is_log(l)]
                self.assertTrue(logs, lines)
                for l in logs:
                    self.assertTrue(l.startswith("sockserve: %s: " % cmd), lines)
                lines, _ = self.run_server(cmd, "other")
                for l in filter(is_log, lines):
                    self.assertRegex(l, "^" + STAMP, lines)


if __name__ == "__main__":
    sstest.main()

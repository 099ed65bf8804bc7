# SPDX-License-Identifier: MIT
"""`sockserve reply`: the keyword responder on every address kind and model,
rules from flags and files, --default, --stop-word, and its usage errors.

ctest-labels: tsan
"""
import os
import signal
import socket
import unittest

import sstest
from sstest import SLOW

SEED_RULES = ["--rule", "nihao=hello,baby,nihao", "--rule", "sb=sb,to you",
              "--default", "input exit to exit", "--stop-word", "exit"]
MODELS = ["serial", "threading", "forking", "pool", "prefork", "event", "coroutine"]


def dgram_client(address):
    fam, typ, sa = sstest.sock_for(address)
    s = socket.socket(fam, typ)
    s.settimeout(5 * SLOW)
    if fam == socket.AF_UNIX:
        s.bind("\0" + sstest.abstract_name("c")[1:])
    return s, sa


def is_dgram(address):
    return address.startswith(("udp://", "unixgram:"))


class Client:
    """One conversation: a connection (streams) or a socket (datagrams)."""

    def __init__(self, address):
        self.dgram = is_dgram(address)
        if self.dgram:
            self.s, self.sa = dgram_client(address)
        else:
            self.s = sstest.connect(address)

    def ask(self, msg):
        if self.dgram:
            self.s.sendto(msg, self.sa)
        else:
            self.s.sendall(msg)
        return self.s.recv(65536)

    def send(self, msg):
        if self.dgram:
            self.s.sendto(msg, self.sa)
        else:
            self.s.sendall(msg)

    def close(self):
        self.s.close()


class ReplyKinds(sstest.TestCase):

    def seed_conversation(self, address, *extra):
        p, bound = self.server("reply", "-q", *extra, address, *SEED_RULES)
        c = Client(bound)
        try:
            self.assertEqual(c.ask(b"nihao"), b"hello,baby,nihao")
            self.assertEqual(c.ask(b"you sb"), b"sb,to you")
            self.assertEqual(c.ask(b"sb nihao"), b"hello,baby,nihao")  # first rule wins
            self.assertEqual(c.ask(b"what"), b"input exit to exit")
            c.send(b"exit")
            self.assertEqual(p.wait(), 0, p.err_lines)
        finally:
            c.close()
        return p

    def test_udp(self):
        self.seed_conversation("udp://127.0.0.1:0")

    def test_udp6(self):
        self.seed_conversation("udp://[::1]:0")

    def test_tcp(self):
        self.seed_conversation("tcp://127.0.0.1:0")

    def test_unix(self):
        d = sstest.temp_dir()
        path = os.path.join(d, "r.sock")
        self.seed_conversation("unix:" + path)
        self.assertFalse(os.path.exists(path))
        os.rmdir(d)

    def test_unixgram(self):
        self.seed_conversation("unixgram:" + sstest.abstract_name("rg"))

    def test_seqpacket(self):
        self.seed_conversation("seqpacket:" + sstest.abstract_name("rs"))


class ReplyModels(sstest.TestCase):

    def check(self, model, address):
        p, bound = self.server("reply", "-q", "--model", model, "--workers", "4", address,
                               *SEED_RULES)
        # a serial server holds one connection at a time: talk to it alone
        n = 1 if model == "serial" and not is_dgram(address) else 3
        clients = [Client(bound) for _ in range(n)]
        try:
            for c in clients:
                self.assertEqual(c.ask(b"nihao"), b"hello,baby,nihao")
            for c in clients:
                self.assertEqual(c.ask(b"?"), b"input exit to exit")
            for c in clients[1:]:
                c.close()  # nothing left to drain but the stopping client
            # the stop word works from a worker thread or a child process too
            clients[0].send(b"exit")
            self.assertEqual(p.wait(timeout=15), 0, p.err_lines)
        finally:
            for c in clients:
                c.close()


for _model in MODELS:
    for _kind, _addr in (("tcp", "tcp://127.0.0.1:0"), ("udp", "udp://127.0.0.1:0")):
        setattr(ReplyModels, "test_%s_%s" % (_model, _kind),
                lambda self, m=_model, a=_addr: self.check(m, a))


class ReplyRules(sstest.TestCase):

    def write_rules(self, text):
        d = sstest.temp_dir()
        path = os.path.join(d, "rules.txt")
        with open(path, "w") as f:
            f.write(text)
        self.addCleanup(lambda: (os.unlink(path), os.rmdir(d)))
        return path

    def test_rules_file(self):
        path = self.write_rules("# seed rules\n\nnihao=hello,baby,nihao\n  # more\nsb=sb,to you\n"
                                "a=b=c\n")
        p, bound = self.server("reply", "--rules", path, "udp://127.0.0.1:0")
        c = Client(bound)
        self.assertEqual(c.ask(b"nihao"), b"hello,baby,nihao")
        self.assertEqual(c.ask(b"sb"), b"sb,to you")
        self.assertEqual(c.ask(b"xa"), b"b=c")
        c.close()

    def test_rule_order_across_flags_and_file(self):
        path = self.write_rules("key=from file\n")
        p, bound = self.server("reply", "--rule", "k=first", "--rules", path,
                               "--rule", "key=last", "tcp://127.0.0.1:0")
        c = Client(bound)
        self.assertEqual(c.ask(b"key"), b"first")
        c.close()

    def test_no_default_means_no_reply(self):
        p, bound = self.server("reply", "--rule", "ping=pong", "udp://127.0.0.1:0")
        c = Client(bound)
        c.s.settimeout(0.5)
        c.send(b"nothing matches")
        with self.assertRaises(socket.timeout):
            c.s.recv(100)
        c.s.settimeout(5 * SLOW)
        self.assertEqual(c.ask(b"ping"), b"pong")
        c.close()

    def test_no_default_on_a_stream_keeps_the_connection(self):
        p, bound = self.server("reply", "--rule", "ping=pong", "tcp://127.0.0.1:0")
        c = Client(bound)
        c.send(b"nothing matches")
        import time
        time.sleep(0.2)  # a separate chunk, not glued to the next message
        self.assertEqual(c.ask(b"ping"), b"pong")
        c.close()

    def test_reply_mirrors_line_ending(self):
        p, bound = self.server("reply", "--rule", "hi=hello", "--default", "?",
                               "tcp://127.0.0.1:0")
        c = Client(bound)
        self.assertEqual(c.ask(b"hi\n"), b"hello\n")
        self.assertEqual(c.ask(b"hi\r\n"), b"hello\r\n")
        self.assertEqual(c.ask(b"zz"), b"?")
        c.close()

    def test_stop_word_with_newline_on_a_stream(self):
        p, bound = self.server("reply", "--stop-word", "quit", "--default", "d",
                               "tcp://127.0.0.1:0")
        c = Client(bound)
        self.assertEqual(c.ask(b"quit now\n"), b"d\n")  # not equal: answered
        c.send(b"quit\n")
        self.assertEqual(c.s.recv(100), b"")  # no answer; the connection ends
        self.assertEqual(p.wait(), 0, p.err_lines)
        c.close()

    def test_stop_word_off_unless_given(self):
        p, bound = self.server("reply", "--default", "d", "udp://127.0.0.1:0")
        c = Client(bound)
        self.assertEqual(c.ask(b"exit"), b"d")
        self.assertIsNone(p.p.poll())
        c.close()

    def test_bad_rules_line_is_usage_error(self):
        path = self.write_rules("a=b\n# fine\nthis line has no equals\n")
        r = self.run_cli("reply", "--rules", path, "udp://127.0.0.1:0")
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr.decode().splitlines(),
                         ["sockserve: reply: %s:3: expected MATCH=REPLY" % path])

    def test_relative_rules_path_named_as_given(self):
        path = self.write_rules("ok=1\n\n=empty match\n")
        r = subprocess_run_in(os.path.dirname(path), "reply", "--rules", "rules.txt",
                              "udp://127.0.0.1:0")
        self.assertEqual(r.returncode, 2)
        self.assertTrue(r.stderr.decode().startswith("sockserve: reply: rules.txt:3: "),
                        r.stderr)

    def test_missing_rules_file(self):
        r = self.run_cli("reply", "--rules", "/nonexistent/rules.txt", "udp://127.0.0.1:0")
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr.decode().splitlines(),
                         ["sockserve: reply: cannot open /nonexistent/rules.txt: "
                          "No such file or directory"])

    def test_usage_errors(self):
        for args, want in ((["--rule", "noequals", "udp://127.0.0.1:0"], "noequals"),
                           (["--rule", "=x", "udp://127.0.0.1:0"], "empty MATCH"),
                           (["--stop-word", "", "udp://127.0.0.1:0"], "--stop-word"),
                           (["--rule", "a=b"], "ADDRESS"),
                           (["--workers", "0", "udp://127.0.0.1:0"], "--workers"),
                           (["--model", "nope", "udp://127.0.0.1:0"], "nope"),
                           (["--rule"], "--rule")):
            r = self.run_cli("reply", *args)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            lines = r.stderr.decode().splitlines()
            self.assertEqual(len(lines), 1, lines)
            self.assertIn(want, lines[0])

    def test_help(self):
        r = self.run_cli("reply", "--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"--stop-word", r.stdout)


def subprocess_run_in(cwd, *args):
    import subprocess
    return subprocess.run([sstest.SOCKSERVE] + list(args), cwd=cwd, capture_output=True,
                          timeout=20 * SLOW)


if __name__ == "__main__":
    sstest.main()

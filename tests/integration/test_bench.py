# SPDX-License-Identifier: MIT
"""sockserve bench: a short smoke run, the JSON shape, byte checking, failures, bad flags.

Not a benchmark: no timing is asserted. The echo peers are small Python
servers started by the test (and `sockserve echo` when it works), so the
test also catches a load generator that mis-checks the bytes it gets back.
"""
import json
import os
import socket
import sys
import unittest

import sstest

# A threaded echo server with two ways to misbehave, as a separate process:
#   echo        echoes everything
#   flip N      flips one bit of the byte at stream offset N of each connection
#   close N     closes each connection after echoing N bytes
PEER = r"""
import socket, socketserver, sys
mode, arg = sys.argv[1], int(sys.argv[2])
family = socket.AF_UNIX if sys.argv[3].startswith('@') else socket.AF_INET

class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        done = 0
        while True:
            data = self.request.recv(65536)
            if not data:
                return
            if mode == 'flip' and done <= arg < done + len(data):
                b = bytearray(data)
                b[arg - done] ^= 0x01
                data = bytes(b)
            if mode == 'close' and done + len(data) >= arg:
                self.request.sendall(data[:arg - done])
                return
            self.request.sendall(data)
            done += len(data)

class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    address_family = family

if family == socket.AF_UNIX:
    srv = Server('\0' + sys.argv[3][1:], Handler)
    where = 'unix:' + sys.argv[3]
else:
    srv = Server(('127.0.0.1', 0), Handler)
    where = 'tcp://127.0.0.1:%d' % srv.server_address[1]
sys.stderr.write('peer: listening on %s\n' % where)
sys.stderr.flush()
srv.serve_forever()
"""

# A listener that accepts nothing: connections complete in the backlog, and no
# echo ever comes back.
SILENT = r"""
import socket, sys, time
s = socket.socket()
s.bind(('127.0.0.1', 0))
s.listen(64)
sys.stderr.write('silent: listening on tcp://127.0.0.1:%d\n' % s.getsockname()[1])
sys.stderr.flush()
time.sleep(60)
"""


class BenchTest(sstest.TestCase):

    def peer(self, mode="echo", arg=0, where="tcp"):
        p = self.start([sys.executable, "-c", PEER, mode, str(arg), where])
        return p, p.wait_stderr(r"listening on (\S+)").group(1)

    def bench(self, *args, timeout=30.0):
        return self.run_cli("bench", *args, timeout=timeout)

    def assert_one_line_error(self, res, code, needle):
        err = res.stderr.decode()
        self.assertEqual(res.returncode, code, err)
        lines = [l for l in err.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, err)
        self.assertIn(needle, lines[0])
        self.assertTrue(lines[0].startswith("sockserve: bench: "), lines[0])

    def test_smoke_two_seconds_text_output(self):
        _, addr = self.peer()
        res = self.bench(addr, "--conns", "4", "--depth", "2", "--size", "64",
                         "--duration", "2")
        out = res.stdout.decode()
        self.assertEqual(res.returncode, 0, res.stderr.decode())
        self.assertIn("sockserve bench %s: 4 connections x depth 2 x 64 bytes" % addr, out)
        for word in ("duration", "messages", "msg/s", "MB/s", "p50", "p99", "p99.9",
                     "connections 4, errors 0"):
            self.assertIn(word, out)
        messages = int(out.split("messages", 1)[1].split()[0])
        self.assertGreater(messages, 0)

    def test_json_is_one_object(self):
        _, addr = self.peer()
        p, _ = self.peer()  # a second process only to have a pid to watch
        res = self.bench(addr, "--conns", "3", "--depth", "4", "--size", "1K",
                         "--duration", "0.5", "--json", "--server-pid", str(p.pid))
        self.assertEqual(res.returncode, 0, res.stderr.decode())
        text = res.stdout.decode()
        self.assertEqual(len(text.strip().splitlines()), 1, text)
        doc = json.loads(text)
        self.assertEqual((doc["conns"], doc["depth"], doc["size"]), (3, 4, 1024))
        self.assertEqual(doc["address"], addr)
        self.assertEqual(doc["errors"], 0)
        self.assertGreater(doc["messages"], 0)
        self.assertEqual(doc["bytes"], doc["messages"] * 1024)
        self.assertGreater(doc["msgs_per_s"], 0)
        lat = doc["latency_us"]
        self.assertGreater(lat["samples"], 0)
        self.assertLessEqual(lat["min"], lat["p50"])
        self.assertLessEqual(lat["p50"], lat["p99"])
        self.assertLessEqual(lat["p99"], lat["p999"])
        self.assertLessEqual(lat["p999"], lat["max"])
        self.assertIsNotNone(doc["server_cpu_s"])
        self.assertGreaterEqual(doc["client_cpu_s"], 0)
        self.assertGreaterEqual(doc["warmup_s"], 0)

    def test_unix_abstract_address(self):
        name = sstest.abstract_name("bench")
        _, addr = self.peer(where=name)
        res = self.bench(addr, "--conns", "2", "--duration", "0.3", "--json")
        self.assertEqual(res.returncode, 0, res.stderr.decode())
        self.assertGreater(json.loads(res.stdout)["messages"], 0)

    def test_big_messages_cross_read_boundaries(self):
        # 100 KB messages arrive in many reads; every byte is still checked.
        _, addr = self.peer()
        res = self.bench(addr, "--conns", "2", "--depth", "3", "--size", "100000",
                         "--duration", "0.5", "--json")
        self.assertEqual(res.returncode, 0, res.stderr.decode())
        self.assertGreater(json.loads(res.stdout)["messages"], 0)

    def test_corrupted_byte_fails(self):
        _, addr = self.peer("flip", 1000)
        res = self.bench(addr, "--conns", "2", "--depth", "2", "--duration", "3")
        self.assert_one_line_error(res, 1, "echoed byte 1000 differs")

    def test_server_that_closes_fails(self):
        _, addr = self.peer("close", 640)
        res = self.bench(addr, "--conns", "2", "--duration", "3")
        self.assert_one_line_error(res, 1, "closed")

    def test_refused_connection_fails(self):
        port = sstest.free_port()
        res = self.bench("tcp://127.0.0.1:%d" % port, "--duration", "1")
        self.assert_one_line_error(res, 1, "cannot connect to tcp://127.0.0.1:%d" % port)

    def test_warmup_is_bounded(self):
        p = self.start([sys.executable, "-c", SILENT])
        addr = p.wait_stderr(r"listening on (\S+)").group(1)
        res = self.bench(addr, "--conns", "3", "--warmup", "0.5", "--duration", "1")
        self.assert_one_line_error(res, 1, "warm-up: only 0 of 3 connections")

    def test_idle_holds_connections_and_announces(self):
        _, addr = self.peer()
        res = self.bench(addr, "--conns", "5", "--idle", "--duration", "0.3", "--json")
        self.assertEqual(res.returncode, 0, res.stderr.decode())
        self.assertIn("5 connections open and idle", res.stderr.decode())
        self.assertEqual(json.loads(res.stdout)["messages"], 0)

    def test_bad_flags_exit_2(self):
        cases = [
            ["127.0.0.1:1", "--conns", "0"],
            ["127.0.0.1:1", "--conns", "many"],
            ["127.0.0.1:1", "--depth", "-1"],
            ["127.0.0.1:1", "--size", "0"],
            ["127.0.0.1:1", "--size", "64Q"],
            ["127.0.0.1:1", "--duration", "0"],
            ["127.0.0.1:1", "--duration"],
            ["127.0.0.1:1", "--bogus"],
            ["127.0.0.1:1", "extra"],
            ["tcp://127.0.0.1:70000"],
            ["udp://127.0.0.1:9"],
            [],
        ]
        for args in cases:
            with self.subTest(args=args):
                res = self.bench(*args)
                self.assertEqual(res.returncode, 2, (args, res.stderr))
                self.assertEqual(len(res.stderr.decode().strip().splitlines()), 1,
                                 res.stderr)
                self.assertEqual(res.stdout, b"")

    def test_help(self):
        res = self.bench("--help")
        self.assertEqual(res.returncode, 0)
        for flag in (b"--conns", b"--depth", b"--size", b"--duration", b"--json"):
            self.assertIn(flag, res.stdout)

    def test_against_sockserve_echo(self):
        # the smoke run of the issue: 2 s of load against sockserve echo
        for model in ("event", "threading"):
            with self.subTest(model=model):
                p = self.sockserve("echo", "-q", "--model", model, "tcp://127.0.0.1:0")
                addr = p.wait_listening()
                res = self.bench(addr, "--conns", "8", "--depth", "4", "--duration", "2",
                                 "--json")
                self.assertEqual(res.returncode, 0, res.stderr.decode())
                self.assertGreater(json.loads(res.stdout)["messages"], 0)
                p.kill()

if __name__ == "__main__":
    sstest.main()

# SPDX-License-Identifier: MIT
"""`sockserve exec ADDRESS -- PROG ARGS...` with real programs: the UCSPI
environment (tcp on 127.0.0.1 and ::1, unix), stdin/stdout over the
connection (plain and relayed), many connections at once, --max-conns,
no zombies, no leaked descriptors (in the program and in the server), the
drain that stops stragglers, a program that never reads, one that leaves
background children, programs that cannot run, the exit status at -v, and
every model.

ctest-labels: exec
"""
import os
import resource
import select
import signal
import socket
import stat
import struct
import tempfile
import threading
import time
import unittest

import sstest
from sstest import SLOW

MODELS = ["serial", "threading", "forking", "pool", "prefork", "event", "coroutine"]


def read_all(s, limit=64 << 20):
    data = b""
    while len(data) < limit:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def talk(address, data=b"x", shut=True, timeout=10.0):
    """Connect, send `data`, shut the writing side, read to end of file."""
    with sstest.connect(address, timeout) as s:
        if data:
            s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        return read_all(s)


def env_of(output):
    out = {}
    for line in output.decode().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def descendants(pid):
    """Every process below `pid` (children, theirs ...), from /proc."""
    out, todo = [], [pid]
    while todo:
        for c in sstest.children_of(todo.pop()):
            out.append(c)
            todo.append(c)
    return out


def alive(pid):
    st = proc_state(pid)
    return st is not None and st not in ("Z", "X")


def have_ipv6():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as t:
            t.bind(("::1", 0))
        return True
    except OSError:
        return False


class ExecCase(sstest.TestCase):
    def exec_server(self, *args, env=None):
        """`sockserve exec ARGS...`; ARGS hold the address and `-- PROG ...`."""
        return self.server("exec", *args, env=env)

    def stop(self, p):
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(30), 0, p.err_lines)


class Environment(ExecCase):
    def check_tcp(self, listen, *extra):
        env = dict(os.environ, TCPREMOTEHOST="stale.example", PROTO="BOGUS",
                   NOTIFY_SOCKET="/run/nothing", SS_EXEC_MARK="kept")
        p, address = self.exec_server(*extra, listen, "--", "sh", "-c", "env", env=env)
        host, port = sstest.split_inet(address)
        with sstest.connect(address) as s:
            me = s.getsockname()
            s.sendall(b"x")
            s.shutdown(socket.SHUT_WR)
            got = env_of(read_all(s))
        self.assertEqual(got["PROTO"], "TCP")
        self.assertEqual(got["TCPLOCALIP"], host)
        self.assertEqual(got["TCPLOCALPORT"], str(port))
        self.assertEqual(got["TCPREMOTEIP"], me[0])
        self.assertEqual(got["TCPREMOTEPORT"], str(me[1]))
        # what the server inherited about another connection is not passed on
        self.assertNotIn("TCPREMOTEHOST", got)
        self.assertNotIn("TCPREMOTEINFO", got)
        self.assertNotIn("NOTIFY_SOCKET", got)
        self.assertNotIn("UNIXREMOTEUID", got)
        self.assertEqual(got["SS_EXEC_MARK"], "kept")
        self.stop(p)

    def test_tcp_ipv4(self):
        self.check_tcp("tcp://127.0.0.1:0")

    def test_tcp_ipv6(self):
        if not have_ipv6():
            self.skipTest("no ::1 on this machine")
        self.check_tcp("tcp://[::1]:0")

    def test_tcp_relayed(self):
        self.check_tcp("tcp://127.0.0.1:0", "--relay")

    def test_ipv4_client_of_a_dual_stack_listener_is_ipv4(self):
        if not have_ipv6():
            self.skipTest("no IPv6 on this machine")
        p, address = self.exec_server("tcp://[::]:0", "--", "sh", "-c", "env")
        port = sstest.split_inet(address)[1]
        with socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW) as s:
            s.sendall(b"x")
            s.shutdown(socket.SHUT_WR)
            got = env_of(read_all(s))
        self.assertEqual(got["TCPREMOTEIP"], "127.0.0.1")
        self.assertEqual(got["TCPLOCALIP"], "127.0.0.1")

    def check_unix(self, address, local_path):
        p, bound = self.exec_server(address, "--", "sh", "-c", "env")
        got = env_of(talk(bound))
        self.assertEqual(got["PROTO"], "UNIX")
        self.assertEqual(got["UNIXLOCALPATH"], local_path)
        self.assertEqual(got["UNIXREMOTEUID"], str(os.getuid()))
        self.assertEqual(got["UNIXREMOTEGID"], str(os.getgid()))
        self.assertEqual(got["UNIXREMOTEPID"], str(os.getpid()))  # we connected
        self.assertNotIn("TCPREMOTEIP", got)
        self.stop(p)

    def test_unix_path(self):
        path = os.path.join(sstest.temp_dir(), "exec.sock")
        self.check_unix("unix:" + path, path)

    def test_unix_abstract(self):
        name = sstest.abstract_name("exec")
        self.check_unix("unix:" + name, name)

    def test_behind_a_proxy_the_proxy_s_credentials_are_not_the_client_s(self):
        """--proxy-protocol on a unix listener: SO_PEERCRED names the proxy
        (here: us), so no UNIXREMOTE* credentials reach the program, for a
        v2 header carrying a unix client and for a LOCAL (health check)
        one. A TCP client carried by the header is TCP."""
        name = sstest.abstract_name("execpx")
        p, bound = self.exec_server("--proxy-protocol", "unix:" + name, "--",
                                    "sh", "-c", "env")
        sig = b"\r\n\r\n\x00\r\nQUIT\n"
        unix_client = sig + b"\x21\x31" + struct.pack("!H", 216) + b"\0" * 216
        local = sig + b"\x20\x00" + struct.pack("!H", 0)
        for header in (unix_client, local):
            got = env_of(talk(bound, header + b"x"))
            self.assertEqual(got["PROTO"], "UNIX")
            for var in ("UNIXREMOTEUID", "UNIXREMOTEGID", "UNIXREMOTEPID"):
                self.assertNotIn(var, got)
        got = env_of(talk(bound, b"PROXY TCP4 192.0.2.7 192.0.2.1 4242 80\r\nx"))
        self.assertEqual(got["PROTO"], "TCP")
        self.assertEqual(got["TCPREMOTEIP"], "192.0.2.7")
        self.assertNotIn("UNIXREMOTEUID", got)
        self.stop(p)

    def test_behind_a_proxy_the_local_address_is_the_header_s_destination(self):
        """TCPLOCALIP/PORT name what the client connected to: a PROXY
        header's destination, not this socket's end of the proxy's link;
        a LOCAL header carries none, so the socket's own stands. Under
        every model (prefork hands it to its worker with the descriptor)."""
        sig = b"\r\n\r\n\x00\r\nQUIT\n"
        local = sig + b"\x20\x00" + struct.pack("!H", 0)
        for model in MODELS:
            with self.subTest(model=model):
                p, address = self.exec_server("--model", model, "--proxy-protocol",
                                              "tcp://127.0.0.1:0", "--", "sh", "-c", "env")
                port = address.rsplit(":", 1)[1]
                got = env_of(talk(address, b"PROXY TCP4 192.0.2.7 192.0.2.1 4242 80\r\nx"))
                self.assertEqual((got["TCPREMOTEIP"], got["TCPREMOTEPORT"]), ("192.0.2.7", "4242"))
                self.assertEqual((got["TCPLOCALIP"], got["TCPLOCALPORT"]), ("192.0.2.1", "80"))
                got = env_of(talk(address, b"PROXY TCP6 2001:db8::7 2001:db8::1 4242 443\r\nx"))
                self.assertEqual((got["TCPLOCALIP"], got["TCPLOCALPORT"]), ("2001:db8::1", "443"))
                got = env_of(talk(address, local + b"x"))
                self.assertEqual((got["TCPLOCALIP"], got["TCPLOCALPORT"]), ("127.0.0.1", port))
                self.stop(p)


class StandardStreams(ExecCase):
    def test_cat_and_tr_plain_and_relayed(self):
        payload = os.urandom(1 << 20)
        for mode in ([], ["--relay"]):
            with self.subTest(mode=mode):
                p, address = self.exec_server(*mode, "tcp://127.0.0.1:0", "--", "cat")
                self.assertEqual(talk(address, payload, timeout=30), payload)
                self.stop(p)
                p, address = self.exec_server(*mode, "tcp://127.0.0.1:0", "--", "tr", "a-z",
                                              "A-Z")
                self.assertEqual(talk(address, b"hello, World\n"), b"HELLO, WORLD\n")
                self.stop(p)

    def test_stderr_is_the_servers(self):
        p, address = self.exec_server("tcp://127.0.0.1:0", "--", "sh", "-c",
                                      "echo to-the-log >&2; echo to-the-client")
        self.assertEqual(talk(address), b"to-the-client\n")
        p.wait_stderr(r"^to-the-log$")

    def test_the_program_waits_for_the_first_byte_unless_asked(self):
        p, address = self.exec_server("tcp://127.0.0.1:0", "--", "sh", "-c", "echo hello")
        with sstest.connect(address) as s:
            r, _, _ = select.select([s], [], [], 0.5 * SLOW)
            self.assertEqual(r, [])                    # silent: no program for it
            self.assertEqual(descendants(p.pid), [])
            s.sendall(b"x")
            self.assertEqual(read_all(s), b"hello\n")
        self.stop(p)
        # a banner protocol: the program talks first
        p, address = self.exec_server("--server-speaks-first", "tcp://127.0.0.1:0", "--",
                                      "sh", "-c", "echo hello")
        with sstest.connect(address) as s:
            self.assertEqual(read_all(s), b"hello\n")
        self.stop(p)

    def test_the_program_gets_default_signals_and_an_empty_mask(self):
        # the server ignores SIGPIPE and blocks SIGINT/SIGTERM/SIGHUP itself
        p, address = self.exec_server("tcp://127.0.0.1:0", "--", "grep", "-E",
                                      "^Sig(Blk|Ign)", "/proc/self/status")
        got = talk(address).decode()
        self.assertIn("SigBlk:\t0000000000000000", got)
        self.assertIn("SigIgn:\t0000000000000000", got)
        self.stop(p)
        p, address = self.exec_server("-v", "tcp://127.0.0.1:0", "--", "sh", "-c",
                                      "kill -PIPE $$; echo survived")
        self.assertEqual(talk(address), b"")
        p.wait_stderr(r"sh \(pid \d+\) killed by signal 13")


class Concurrency(ExecCase):
    def test_fifty_connections_at_once(self):
        p, address = self.exec_server("-q", "--max-conns", "50", "tcp://127.0.0.1:0", "--",
                                      "tr", "a-z", "A-Z")
        results = {}

        def client(i):
            try:
                results[i] = talk(address, b"client %d\n" % i, timeout=30)
            except OSError as e:
                results[i] = e

        threads = [threading.Thread(target=client, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60 * SLOW)
        for i in range(50):
            self.assertEqual(results.get(i), b"CLIENT %d\n" % i)
        self.stop(p)

    def test_many_connections_at_once_are_bounded_and_all_served(self):
        """600 clients at once, each sending its byte at once: at most 40
        programs run, every client is served (none cut as "silent" while it
        waits its turn), and the server holds no descriptor afterwards."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < 1200:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
        # a short handshake timeout: waiting for a program is not silence
        p, address = self.exec_server("-q", "--handshake-timeout", "3", "tcp://127.0.0.1:0",
                                      "--", "echo", "hi")
        fds_idle = sstest.fd_count(p.pid)
        socks = [sstest.connect(address, timeout=60) for _ in range(600)]
        try:
            for s in socks:
                s.sendall(b"x")
            data = {s: b"" for s in socks}
            pending = set(socks)
            most = 0
            deadline = time.monotonic() + 120 * SLOW
            turns = 0
            while pending and time.monotonic() < deadline:
                r, _, _ = select.select(list(pending), [], [], 0.5)
                for s in r:
                    chunk = s.recv(64)  # a reset here fails the test
                    if chunk:
                        data[s] += chunk
                    else:
                        pending.discard(s)
                        s.close()
                turns += 1
                if turns % 25 == 0:
                    # forking: one child (the supervisor of one program) per
                    # connection served; at most --max-conns, 40 by default
                    most = max(most, len(sstest.children_of(p.pid)))
            self.assertEqual(sorted(set(data.values())), [b"hi\n"])
            self.assertLessEqual(most, 40)
        finally:
            for s in socks:
                s.close()
        self.assertTrue(sstest.wait_until(lambda: sstest.fd_count(p.pid) <= fds_idle, 10))
        self.stop(p)

    def check_max_conns(self, model):
        p, address = self.exec_server("--model", model, "--workers", "4", "--max-conns", "2",
                                      "tcp://127.0.0.1:0", "--", "sh", "-c",
                                      "echo started; exec sleep 1")
        socks = [sstest.connect(address, timeout=20) for _ in range(3)]
        try:
            for s in socks:
                s.sendall(b"x")
            starts = [s.recv(64) for s in socks[:2]]
            self.assertEqual(starts, [b"started\n", b"started\n"])
            # the third waits: not refused, and no third program runs
            r, _, _ = select.select([socks[2]], [], [], 0.3 * SLOW)
            self.assertEqual(r, [])
            sleeps = [d for d in descendants(p.pid) if proc_state(d) not in (None, "Z")
                      and open("/proc/%d/comm" % d).read().strip() == "sleep"]
            self.assertLessEqual(len(sleeps), 2)
            # when one of the first two ends, it gets its program
            self.assertEqual(socks[2].recv(64), b"started\n")
            for s in socks:
                self.assertEqual(read_all(s), b"")
        finally:
            for s in socks:
                s.close()
        self.stop(p)

    def test_max_conns_makes_the_third_wait(self):
        for model in ("forking", "threading", "pool", "prefork", "event"):
            with self.subTest(model=model):
                self.check_max_conns(model)

    def test_no_zombies_and_no_leaked_descriptors_under_every_model(self):
        for model in MODELS:
            with self.subTest(model=model):
                p, address = self.exec_server("-q", "--model", model, "tcp://127.0.0.1:0",
                                              "--", "sh", "-c", "echo hi")
                self.assertEqual(talk(address), b"hi\n")
                self.assertTrue(sstest.wait_until(lambda: descendants(p.pid) == [] or
                                                  model == "prefork"))
                fds_before = sstest.fd_count(p.pid)
                for _ in range(20):
                    self.assertEqual(talk(address), b"hi\n")

                def settled():
                    procs = descendants(p.pid)
                    zombies = [d for d in procs if proc_state(d) == "Z"]
                    # prefork keeps its workers; nothing else may be left
                    # (<=: the first connection may still have been closing
                    # when the count was taken; a leak adds 20)
                    return not zombies and (model == "prefork" or procs == []) and \
                        sstest.fd_count(p.pid) <= fds_before
                self.assertTrue(sstest.wait_until(settled, 10),
                                "%s: left %r, fds %d -> %d" % (
                                    model, [(d, proc_state(d)) for d in descendants(p.pid)],
                                    fds_before, sstest.fd_count(p.pid)))
                self.stop(p)

    def test_the_program_has_only_fds_0_1_2(self):
        lister = "import os; print(sorted(os.listdir('/proc/self/fd'), key=int))"
        for extra in ([], ["--relay"], ["--model", "threading"], ["--model", "prefork"]):
            with self.subTest(extra=extra):
                p, address = self.exec_server(*extra, "tcp://127.0.0.1:0", "--",
                                              sstest.PYTHON, "-c", lister)
                held = [sstest.connect(address) for _ in range(3)]  # other connections
                try:
                    # 0, 1, 2 and the directory Python is listing
                    self.assertEqual(talk(address), b"['0', '1', '2', '3']\n")
                finally:
                    for s in held:
                        s.close()
                self.stop(p)


class Stragglers(ExecCase):
    def test_drain_lets_programs_finish_in_time(self):
        p, address = self.exec_server("-v", "--drain-timeout", "5", "tcp://127.0.0.1:0", "--",
                                      "sh", "-c", "echo up; sleep 0.5; echo finished")
        with sstest.connect(address, timeout=20) as s:
            s.sendall(b"x")
            self.assertEqual(s.recv(64), b"up\n")
            p.signal(signal.SIGTERM)
            self.assertEqual(read_all(s), b"finished\n")
        self.assertEqual(p.wait(20), 0)
        p.wait_stderr(r"exited with status 0")
        self.assertFalse(any("stopped by" in line for line in p.err_lines), p.err_lines)

    def check_drain_kills(self, model, script, signame, *extra):
        p, address = self.exec_server(*extra, "--model", model, "--drain-timeout", "1",
                                      "tcp://127.0.0.1:0", "--", "sh", "-c", script)
        with sstest.connect(address, timeout=20) as s:
            s.sendall(b"x")
            line = b""
            while not line.endswith(b"\n"):
                chunk = s.recv(64)
                self.assertTrue(chunk)
                line += chunk
            pids = [int(x) for x in line.split()]
            p.signal(signal.SIGTERM)
            self.assertEqual(p.wait(30), 0, p.err_lines)
        for pid in pids:
            self.assertTrue(sstest.wait_until(lambda: not alive(pid)), (model, pid))
        self.assertTrue(any("still running at the drain deadline (1s): stopped by " + signame
                            in line for line in p.err_lines), p.err_lines)

    def test_drain_stops_stragglers_with_term_then_kill(self):
        for model in MODELS:
            with self.subTest(model=model):
                # leaves on TERM (its group's background child too)
                self.check_drain_kills(model, "sleep 60 & echo $$ $!; wait", "SIGTERM")
                # ignores TERM: KILL 2 s later
                self.check_drain_kills(model, "trap '' TERM; sleep 60 & echo $$ $!; wait",
                                       "SIGKILL")
        for model in ("forking", "threading"):
            with self.subTest(model=model, relay=True):
                self.check_drain_kills(model, "sleep 60 & echo $$ $!; wait", "SIGTERM",
                                       "--relay")

    def test_background_children_do_not_hold_the_connection(self):
        p, address = self.exec_server("tcp://127.0.0.1:0", "--", "sh", "-c",
                                      "sleep 60 & echo $!")
        t0 = time.monotonic()
        got = talk(address, timeout=20)
        self.assertLess(time.monotonic() - t0, 30)  # not the 60 s of the sleep
        bg = int(got)
        self.assertTrue(sstest.wait_until(lambda: not alive(bg)))
        self.stop(p)

    def test_a_process_that_leaves_the_group_loses_the_connection(self):
        for mode in ([], ["--relay"]):
            with self.subTest(mode=mode):
                p, address = self.exec_server(*mode, "tcp://127.0.0.1:0", "--", "sh", "-c",
                                              "setsid sh -c 'sleep 2; echo late' & echo early")
                # the end of file comes when the program exits, not 2 s later
                self.assertEqual(talk(address, timeout=20), b"early\n")
                self.stop(p)

    def test_a_program_that_never_reads_bounds_a_flooding_client(self):
        for mode in ([], ["--relay"]):
            with self.subTest(mode=mode):
                p, address = self.exec_server(*mode, "--model", "threading",
                                              "tcp://127.0.0.1:0", "--", "sleep", "30")
                flood = sstest.connect(address)
                flood.setblocking(False)
                sent, quiet = 0, 0
                junk = b"\0" * 65536
                while sent < (256 << 20) and quiet < 20:
                    try:
                        sent += flood.send(junk)
                        quiet = 0
                    except BlockingIOError:
                        quiet += 1
                        time.sleep(0.01)
                self.assertLess(sent, 64 << 20)  # kernel buffers (+ 64 KiB), no more
                # the server goes on serving others meanwhile
                with open("/proc/%d/status" % p.pid) as f:
                    rss = [l for l in f if l.startswith("VmRSS")][0]
                self.assertLess(int(rss.split()[1]), 200 * 1024, rss)
                flood.close()
                self.stop(p)


class Errors(ExecCase):
    def test_program_not_found_or_not_runnable_is_a_usage_error(self):
        r = self.run_cli("exec", "tcp://127.0.0.1:0", "--", "no-such-program-anywhere")
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"sockserve: exec: cannot run 'no-such-program-anywhere': "
                      b"not found in PATH", r.stderr)
        self.assertNotIn(b"listening on", r.stderr)
        d = sstest.temp_dir()
        plain = os.path.join(d, "script")
        with open(plain, "w") as f:
            f.write("#!/bin/sh\necho hi\n")
        os.chmod(plain, 0o644)
        r = self.run_cli("exec", "tcp://127.0.0.1:0", "--", plain)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"cannot run '%s': Permission denied" % plain.encode(), r.stderr)
        r = self.run_cli("exec", "tcp://127.0.0.1:0", "--", d)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"Is a directory", r.stderr)

    def test_usage_errors(self):
        cases = [
            (["exec", "tcp://127.0.0.1:0"], b"no program given"),
            (["exec", "tcp://127.0.0.1:0", "--"], b"no program given"),
            (["exec", "--", "cat"], b"no ADDRESS given"),
            (["exec", "tcp://127.0.0.1:0", "cat"], b"unexpected argument 'cat'"),
            (["exec", "udp://127.0.0.1:0", "--", "cat"], b"datagram address"),
            (["exec", "unixgram:@x", "--", "cat"], b"datagram address"),
            (["exec", "--bogus", "tcp://127.0.0.1:0", "--", "cat"], b"unknown option"),
            (["exec", "--max-conns", "0", "tcp://127.0.0.1:0", "--", "cat"], b"--max-conns"),
        ]
        for argv, msg in cases:
            with self.subTest(argv=argv):
                r = self.run_cli(*argv)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(msg, r.stderr)
                self.assertEqual(r.stderr.count(b"\n"), 1, r.stderr)

    def test_options_after_the_address_and_arguments_after_the_dashes(self):
        p, address = self.exec_server("tcp://127.0.0.1:0", "-q", "--", "sh", "-c",
                                      "echo \"$0 $1\"", "-v", "--max-conns")
        self.assertEqual(talk(address), b"-v --max-conns\n")
        self.stop(p)

    def test_a_program_gone_at_run_time_is_logged_and_the_server_goes_on(self):
        d = sstest.temp_dir()
        prog = os.path.join(d, "prog")
        with open(prog, "w") as f:
            f.write("#!/bin/sh\necho ok\n")
        os.chmod(prog, 0o755)
        p, address = self.exec_server("-q", "tcp://127.0.0.1:0", "--", prog)
        self.assertEqual(talk(address), b"ok\n")
        os.unlink(prog)
        self.assertEqual(talk(address), b"")
        p.wait_stderr(r"sockserve: exec: error: tcp://127\.0\.0\.1:\d+: cannot run '%s': "
                      r"No such file or directory" % prog)
        with open(prog, "w") as f:
            f.write("#!/bin/sh\necho back\n")
        os.chmod(prog, 0o755)
        self.assertEqual(talk(address), b"back\n")
        self.stop(p)

    def test_exit_status_is_logged_at_verbose(self):
        p, address = self.exec_server("-v", "tcp://127.0.0.1:0", "--", "sh", "-c", "exit 3")
        talk(address)
        p.wait_stderr(r"sockserve: exec: tcp://127\.0\.0\.1:\d+: sh \(pid \d+\) exited with "
                      r"status 3$")
        self.stop(p)
        p, address = self.exec_server("-v", "tcp://127.0.0.1:0", "--", "sh", "-c",
                                      "kill -9 $$")
        talk(address)
        p.wait_stderr(r"sh \(pid \d+\) killed by signal 9")
        self.stop(p)
        # not without -v
        p, address = self.exec_server("tcp://127.0.0.1:0", "--", "sh", "-c", "exit 3")
        talk(address)
        self.stop(p)
        self.assertFalse(any("exited with" in line for line in p.err_lines), p.err_lines)


class Models(ExecCase):
    def test_every_model_serves_tcp_and_unix(self):
        for model in MODELS:
            for relay in ([], ["--relay"]):
                with self.subTest(model=model, relay=relay):
                    p, address = self.exec_server("--model", model, *relay, "tcp://127.0.0.1:0",
                                                  "--", "sh", "-c", "echo $PROTO; cat")
                    self.assertEqual(talk(address, b"data\n"), b"TCP\ndata\n")
                    self.stop(p)
                    name = sstest.abstract_name(model)
                    p, address = self.exec_server("--model", model, *relay, "unix:" + name,
                                                  "--", "sh", "-c", "echo $PROTO; cat")
                    self.assertEqual(talk(address, b"data\n"), b"UNIX\ndata\n")
                    self.stop(p)

    def test_idle_timeout_cuts_a_silent_connection(self):
        p, address = self.exec_server("-v", "--idle-timeout", "0.5", "tcp://127.0.0.1:0",
                                      "--", "sh", "-c", "echo $$; exec sleep 60")
        with sstest.connect(address, timeout=20) as s:
            s.sendall(b"x")
            got = read_all(s)
        pid = int(got)
        self.assertTrue(sstest.wait_until(lambda: not alive(pid)))
        p.wait_stderr(r"idle for 0.5s, closing")
        self.stop(p)


if __name__ == "__main__":
    sstest.main()

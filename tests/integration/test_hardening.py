# SPDX-License-Identifier: MIT
"""The hardening flags from the command line, against real sockets: silent
floods and bursts under every model, --max-per-ip, --allow-from/--deny-from,
--access-file with SIGHUP, --reply-rate per source, reply --stop-from,
IPv6 and IPv4-mapped peers, --user.

ctest-labels: tsan
"""
import os
import pwd
import resource
import signal
import socket
import time
import unittest

import sstest
from sstest import SLOW

MODELS = ["serial", "threading", "forking", "pool", "prefork", "event", "coroutine"]


def echo_once(address, payload=b"ping\n", timeout=5.0, source=None):
    host, port = sstest.split_inet(address)
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.settimeout(timeout * SLOW)
        if source is not None:
            s.bind((source, 0))
        s.connect((host, port))
        s.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


def refused(address, source=None):
    """Connect and speak: True when the server closes without answering."""
    try:
        return echo_once(address, timeout=3.0, source=source) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


class SilentFloods(sstest.TestCase):
    def test_silent_connections_do_not_lock_out_a_real_client(self):
        """Finding 3: 200 silent connections held; a real client is served
        within 1 s under every model, with one worker."""
        for model in MODELS:
            with self.subTest(model=model):
                p, address = self.server("echo", "-q", "--model", model, "--workers", "1",
                                         "tcp://127.0.0.1:0")
                host, port = sstest.split_inet(address)
                silent = [socket.create_connection((host, port), timeout=5)
                          for _ in range(200)]
                try:
                    t0 = time.monotonic()
                    self.assertEqual(echo_once(address), b"ping\n")
                    self.assertLess(time.monotonic() - t0, 1.0 * SLOW)
                finally:
                    for s in silent:
                        s.close()
                p.signal(signal.SIGTERM)
                self.assertEqual(p.wait(), 0)

    def test_500_concurrent_connects_are_all_served(self):
        """Finding 3: 500 clients connect at once; none is refused, every
        one is answered (two workers)."""
        for model in MODELS:
            with self.subTest(model=model):
                p, address = self.server("echo", "-q", "--model", model, "--workers", "2",
                                         "tcp://127.0.0.1:0")
                host, port = sstest.split_inet(address)
                socks = []
                try:
                    for i in range(500):
                        s = socket.create_connection((host, port), timeout=10 * SLOW)
                        socks.append(s)
                    for i, s in enumerate(socks):
                        s.sendall(b"%d\n" % i)
                    for i, s in enumerate(socks):
                        want = b"%d\n" % i
                        got = b""
                        while len(got) < len(want):
                            chunk = s.recv(64)
                            self.assertTrue(chunk, "client %d closed under %s" % (i, model))
                            got += chunk
                        self.assertEqual(got, want)
                        s.close()
                finally:
                    for s in socks:
                        s.close()
                p.signal(signal.SIGTERM)
                self.assertEqual(p.wait(), 0)


class Limits(sstest.TestCase):
    def test_max_per_ip_from_the_command_line(self):
        p, address = self.server("echo", "--model", "threading", "--max-per-ip", "2",
                                 "tcp://127.0.0.1:0")
        host, port = sstest.split_inet(address)
        held = [socket.create_connection((host, port), timeout=5) for _ in range(2)]
        try:
            self.assertTrue(refused(address))              # a third from 127.0.0.1
            self.assertEqual(echo_once(address, source="127.0.0.2"), b"ping\n")
        finally:
            for s in held:
                s.close()
        p.wait_stderr(r"refused in the last [0-9.]+s: 1 over --max-per-ip|over")
        self.assertTrue(sstest.wait_until(lambda: not refused(address)))  # slots come back

    def test_allow_and_deny_from_the_command_line(self):
        p, address = self.server("echo", "-q", "--model", "event",
                                 "--allow-from", "127.0.0.0/8", "--deny-from", "127.0.0.3",
                                 "tcp://127.0.0.1:0")
        self.assertEqual(echo_once(address), b"ping\n")
        self.assertEqual(echo_once(address, source="127.0.0.2"), b"ping\n")
        self.assertTrue(refused(address, source="127.0.0.3"))   # deny wins

    def test_bad_cidr_is_a_usage_error(self):
        r = self.run_cli("echo", "--allow-from", "127.0.0.1/33", "tcp://127.0.0.1:0")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"127.0.0.1/33", r.stderr)

    def test_ipv6_and_mapped_ipv4_peers_match_the_rules(self):
        if not socket.has_ipv6:
            self.skipTest("no IPv6 here")
        try:
            with socket.socket(socket.AF_INET6) as t:
                t.bind(("::1", 0))
        except OSError as e:
            self.skipTest("no ::1 here: %s" % e)
        p, address = self.server("echo", "-q", "--model", "threading",
                                 "--deny-from", "::1", "tcp://[::1]:0")
        self.assertTrue(refused(address))
        # a dual-stack listener: an IPv4 client arrives as ::ffff:127.0.0.1
        # and matches the IPv4 rule
        port = sstest.free_port()
        p2, address2 = self.server("echo", "-q", "--model", "threading",
                                   "--deny-from", "127.0.0.1", "tcp://[::]:%d" % port)
        self.assertTrue(refused("tcp://127.0.0.1:%d" % port))
        self.assertEqual(echo_once("tcp://127.0.0.1:%d" % port, source="127.0.0.2"),
                         b"ping\n")

    def test_sighup_reloads_the_access_file(self):
        d = sstest.temp_dir()
        path = os.path.join(d, "access")
        with open(path, "w") as f:
            f.write("# loopback, but not .2\ndeny 127.0.0.2\n")
        p, address = self.server("echo", "--model", "threading", "--access-file", path,
                                 "tcp://127.0.0.1:0")
        self.assertTrue(refused(address, source="127.0.0.2"))
        self.assertEqual(echo_once(address, source="127.0.0.3"), b"ping\n")
        with open(path, "w") as f:
            f.write("deny 127.0.0.3\n")
        p.signal(signal.SIGHUP)
        self.assertTrue(sstest.wait_until(lambda: refused(address, source="127.0.0.3")))
        self.assertEqual(echo_once(address, source="127.0.0.2"), b"ping\n")
        # a bad file: an error line, and the rules in force stay
        with open(path, "w") as f:
            f.write("deny 127.0.0.2\nallow nonsense\n")
        p.signal(signal.SIGHUP)
        p.wait_stderr(r"access:2")
        self.assertTrue(refused(address, source="127.0.0.3"))
        self.assertEqual(echo_once(address, source="127.0.0.2"), b"ping\n")


class Datagrams(sstest.TestCase):
    def test_reply_rate_limits_each_source_alone(self):
        """Finding 4: a flood from one source is cut to --reply-rate; a
        second source is answered all the same."""
        p, address = self.server("reply", "-q", "--default", "x", "--reply-rate", "10",
                                 "udp://127.0.0.1:0")
        host, port = sstest.split_inet(address)
        flood = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        flood.bind(("127.0.0.2", 0))
        flood.settimeout(0.5 * SLOW)
        for _ in range(200):
            flood.sendto(b"a", (host, port))
        got = 0
        try:
            while True:
                flood.recv(100)
                got += 1
        except socket.timeout:
            pass
        flood.close()
        self.assertGreaterEqual(got, 5)
        self.assertLessEqual(got, 30)
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        other.bind(("127.0.0.3", 0))
        other.settimeout(3 * SLOW)
        other.sendto(b"b", (host, port))
        self.assertEqual(other.recv(100), b"x")
        other.close()

    def test_stop_word_only_from_stop_from(self):
        """Finding 4: with --stop-from 127.0.0.2, the stop word from
        127.0.0.1 is an ordinary message; from 127.0.0.2 it stops."""
        p, address = self.server("reply", "-q", "--default", "d", "--stop-word", "bye",
                                 "--stop-from", "127.0.0.2/32", "udp://127.0.0.1:0")
        host, port = sstest.split_inet(address)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(3 * SLOW)
        s.sendto(b"bye", (host, port))
        self.assertEqual(s.recv(100), b"d")
        s.close()
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.2", 0))
        s.sendto(b"bye", (host, port))
        s.close()
        self.assertEqual(p.wait(), 0)

    def test_bad_stop_from_is_a_usage_error(self):
        r = self.run_cli("reply", "--stop-word", "x", "--stop-from", "300.0.0.0/8",
                         "udp://127.0.0.1:0")
        self.assertEqual(r.returncode, 2, r.stderr)


class RulesFile(sstest.TestCase):
    """Finding 5: a rules file whose read fails midway, or that never ends a
    line, is an error at start, never a server running on part of its rules."""

    def start_on_dev_zero(self, preexec_fn=None):
        return self.sockserve("reply", "--rules", "/dev/zero", "--default", "d",
                              "udp://127.0.0.1:0", preexec_fn=preexec_fn)

    def test_rules_from_dev_zero_under_a_memory_limit(self):
        if sstest.SANITIZED:
            self.skipTest("the sanitizers reserve terabytes of address space: no RLIMIT_AS")

        def limit_memory():
            resource.setrlimit(resource.RLIMIT_AS, (256 << 20, 256 << 20))

        p = self.start_on_dev_zero(limit_memory)
        self.assertEqual(p.wait(timeout=20), 2, p.err_lines)
        self.assertFalse([l for l in p.err_lines if "listening on" in l], p.err_lines)
        self.assertTrue([l for l in p.err_lines if "/dev/zero" in l], p.err_lines)

    def test_rules_line_without_end_is_bounded(self):
        """getline() read the whole "line" before checking its length: on
        /dev/zero it took memory until none was left."""
        p = self.start_on_dev_zero()
        grew = []

        def done_or_huge():
            if p.p.poll() is not None:
                return True
            try:
                with open("/proc/%d/status" % p.pid) as f:
                    rss = [int(l.split()[1]) for l in f if l.startswith("VmRSS:")]
            except OSError:
                return True
            if rss and rss[0] > 256 * 1024:
                grew.append(rss[0])
                return True
            return False

        sstest.wait_until(done_or_huge, 20)
        self.assertEqual(grew, [], "RSS grew past 256 MiB reading /dev/zero")
        self.assertEqual(p.wait(timeout=5), 2, p.err_lines)
        self.assertIn("/dev/zero:1: line longer than", "\n".join(p.err_lines))


class Privileges(sstest.TestCase):
    def test_user_drops_privileges_after_bind(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to change user (running as uid %d)" % os.geteuid())
        try:
            nobody = pwd.getpwnam("nobody")
        except KeyError:
            self.skipTest("no user nobody")
        p, address = self.server("echo", "-q", "--user", "nobody", "tcp://127.0.0.1:0")
        with open("/proc/%d/status" % p.pid) as f:
            status = f.read()
        uids = [l for l in status.splitlines() if l.startswith("Uid:")][0].split()[1:]
        self.assertEqual(set(uids), {str(nobody.pw_uid)})
        self.assertEqual(echo_once(address), b"ping\n")

    def test_unknown_user_is_a_usage_error(self):
        r = self.run_cli("echo", "--user", "no-such-user-here", "tcp://127.0.0.1:0")
        self.assertEqual(r.returncode, 2, r.stderr)

    def test_no_auth_behind_a_proxy_is_refused(self):
        """Without authentication, rcmd-server trusts the peer's uid (unix)
        or loopback (tcp); behind a PROXY header that peer is the proxy, so
        every client of the proxy would pass: a usage error, before binding."""
        name = sstest.abstract_name("noauthpx")
        for mode in (["--insecure-no-auth"], ["--protocol", "seed"]):
            for address in ("unix:" + name, "tcp://127.0.0.1:0"):
                r = self.run_cli("rcmd-server", *mode, "--user", pwd.getpwuid(os.geteuid()).pw_name,
                                 "--proxy-protocol", address)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(b"--proxy-protocol needs authentication", r.stderr)
                self.assertNotIn(b"listening on", r.stderr)

    def test_max_output_takes_digits_only(self):
        """strtoull takes ' -5' (and wraps it to 2**64-5, no limit at all)."""
        for value in (" -5", "+5", " 5", "-1"):
            r = self.run_cli("rcmd-server", "--max-output", value, "--insecure-no-auth",
                             "--user", "nobody", "unix:" + sstest.abstract_name("maxout"))
            self.assertEqual(r.returncode, 2, (value, r.stderr))
            self.assertIn(b"--max-output", r.stderr)


if __name__ == "__main__":
    sstest.main()

# SPDX-License-Identifier: MIT
"""--proxy-protocol from the command line, against real sockets: hand-made
v1 and v2 headers from Python under every model (the logged client address
and --allow-from / --max-per-ip use the carried one; data in the same
segment as the header is echoed intact), malformed, truncated and stalled
headers (closed, nothing echoed, the server serves on), a server without
the flag (a header is data), and the real HAProxy in front with send-proxy
and send-proxy-v2 with TLVs (CRC32C, unique id).

ctest-labels: tsan
"""
import os
import shutil
import signal
import socket
import struct
import subprocess
import time
import unittest

import sstest
from sstest import SLOW

MODELS = ["serial", "threading", "forking", "pool", "prefork", "event", "coroutine"]
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def v1(src, dst="198.51.100.7", sport=54321, dport=443):
    proto = "TCP6" if ":" in src else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n" % (proto, src, dst, sport, dport)).encode()


def tlv(t, value):
    return struct.pack("!BH", t, len(value)) + value


def v2(src=None, dst=None, sport=54321, dport=443, tlvs=b"", crc=False, cmd=0x21):
    """A v2 header; src None = LOCAL over AF_UNSPEC."""
    if src is None:
        fam, addrs = 0x00, b""
    elif ":" in src:
        fam = 0x21
        addrs = (socket.inet_pton(socket.AF_INET6, src) +
                 socket.inet_pton(socket.AF_INET6, dst or "::1") + struct.pack("!HH", sport, dport))
    else:
        fam = 0x11
        addrs = (socket.inet_aton(src) + socket.inet_aton(dst or "198.51.100.7") +
                 struct.pack("!HH", sport, dport))
    body = addrs + tlvs
    if crc:
        body += tlv(0x03, b"\0\0\0\0")
    head = V2_SIG + bytes([cmd, fam]) + struct.pack("!H", len(body))
    whole = head + body
    if crc:
        whole = whole[:-4] + struct.pack("!I", crc32c(whole))
    return whole


def connect(address, source=None, timeout=5.0):
    host, port = sstest.split_inet(address)
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.settimeout(timeout * SLOW)
    if source is not None:
        s.bind((source, 0))
    s.connect((host, port))
    return s


def read_all(s, want):
    got = b""
    try:
        while len(got) < want:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    return got


def exchange(address, header, data=b"ping\n", together=True, source=None):
    """Send header and data (in one segment, or apart); what came back."""
    with connect(address, source) as s:
        if together:
            s.sendall(header + data)
        else:
            s.sendall(header)
            time.sleep(0.05)
            s.sendall(data)
        return read_all(s, len(data))


def closed_without_reply(s, timeout=5.0):
    """True when the server closes `s` (EOF or reset) having sent nothing."""
    s.settimeout(timeout * SLOW)
    try:
        return s.recv(100) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


class Headers(sstest.TestCase):
    def start_echo(self, model, *extra):
        return self.server("echo", "-v", "--proxy-protocol", "--model", model, "--workers", "2",
                           *extra, "tcp://127.0.0.1:0")

    def test_v1_and_v2_carry_the_client_address_under_every_model(self):
        big = bytes(range(256)) * 64  # 16 KiB after the header, same segment
        tlvs = tlv(0x02, b"example.com") + tlv(0x05, b"req-42") + tlv(0xE1, b"x" * 300)
        cases = [
            ("v1 tcp4", v1("192.0.2.1", sport=40001), "tcp://192.0.2.1:40001"),
            ("v1 tcp6", v1("2001:db8::5", dst="2001:db8::1", sport=40002),
             "tcp://[2001:db8::5]:40002"),
            ("v2 inet", v2("192.0.2.2", sport=40003), "tcp://192.0.2.2:40003"),
            ("v2 inet6 tlvs crc", v2("2001:db8::6", sport=40004, tlvs=tlvs, crc=True),
             "tcp://[2001:db8::6]:40004"),
        ]
        for model in MODELS:
            with self.subTest(model=model):
                p, address = self.start_echo(model)
                for label, header, logged in cases:
                    self.assertEqual(exchange(address, header), b"ping\n", (model, label))
                    p.wait_stderr(r"%s closed" % logged.replace("[", r"\[").replace("]", r"\]"))
                # data in the very segment of the header, large, intact
                self.assertEqual(exchange(address, v1("192.0.2.9"), big), big)
                # the header and the data apart
                self.assertEqual(exchange(address, v2("192.0.2.10"), b"later\n", together=False),
                                 b"later\n")
                # LOCAL / UNKNOWN: the socket's own peer is the client
                with connect(address, source="127.0.0.7") as s:
                    s.sendall(v2(None) + b"local\n")
                    self.assertEqual(read_all(s, 6), b"local\n")
                with connect(address, source="127.0.0.8") as s:
                    s.sendall(b"PROXY UNKNOWN\r\nunknown\n")
                    self.assertEqual(read_all(s, 8), b"unknown\n")
                p.wait_stderr(r"tcp://127\.0\.0\.7:\d+ closed")
                p.wait_stderr(r"tcp://127\.0\.0\.8:\d+ closed")
                p.signal(signal.SIGTERM)
                self.assertEqual(p.wait(), 0)

    def test_allow_from_sees_the_carried_address(self):
        for model in MODELS:
            with self.subTest(model=model):
                # the proxy (127.0.0.1) is in no rule: only the carried address counts
                p, address = self.start_echo(model, "--allow-from", "192.0.2.0/24",
                                             "--deny-from", "192.0.2.66")
                self.assertEqual(exchange(address, v1("192.0.2.5")), b"ping\n")
                self.assertEqual(exchange(address, v2("192.0.2.6")), b"ping\n")
                for header in (v1("203.0.113.9"), v2("203.0.113.9"), v1("192.0.2.66"),
                               v2(None)):  # LOCAL: the proxy itself, not allowed
                    with connect(address) as s:
                        s.sendall(header + b"ping\n")
                        self.assertTrue(closed_without_reply(s), (model, header))
                p.wait_stderr(r"refused in the last [0-9.]+s: \d+ denied")
                self.assertEqual(exchange(address, v1("192.0.2.7")), b"ping\n")

    def test_max_per_ip_counts_the_carried_address(self):
        for model in ["threading", "prefork", "event"]:
            with self.subTest(model=model):
                p, address = self.start_echo(model, "--max-per-ip", "1")
                held = connect(address)
                held.sendall(v1("192.0.2.20") + b"hold\n")
                self.assertEqual(read_all(held, 5), b"hold\n")
                try:
                    with connect(address) as s:  # the same client again, over the proxy
                        s.sendall(v1("192.0.2.20", sport=1) + b"ping\n")
                        self.assertTrue(closed_without_reply(s))
                    # another client through the same proxy address
                    self.assertEqual(exchange(address, v2("192.0.2.21")), b"ping\n")
                finally:
                    held.close()
                self.assertTrue(sstest.wait_until(
                    lambda: exchange(address, v1("192.0.2.20")) == b"ping\n"))

    def test_bad_headers_are_closed_and_the_server_serves_on(self):
        good = v2("192.0.2.30", crc=True)
        bad_crc = good[:-1] + bytes([good[-1] ^ 1])
        bad = [
            b"GET / HTTP/1.0\r\n\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.7 1 2\n",       # no CR
            b"PROXY TCP4 192.0.2.1  198.51.100.7 1 2\r\n",    # two spaces
            b"PROXY TCP4 300.0.0.1 198.51.100.7 1 2\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.7 70000 2\r\n",
            b"PROXY UNKNOWN " + b"a" * 120 + b"\r\n",          # over 107 bytes
            V2_SIG + b"\x22\x11\x00\x0c" + b"\0" * 12,        # bad command
            V2_SIG + b"\x21\x11\x00\x08" + b"\0" * 8,         # short for AF_INET
            V2_SIG + b"\x21\x11\xff\xff" + b"\0" * 100,       # over the cap
            bad_crc,
            v2("192.0.2.31", tlvs=b"\x02\x00\x09abc"),        # TLV past the end
        ]
        truncated = [v1("192.0.2.32")[:20], v2("192.0.2.33")[:15], v2("192.0.2.34")[:20]]
        for model in MODELS:
            with self.subTest(model=model):
                p, address = self.start_echo(model)
                for header in bad:
                    with connect(address) as s:
                        s.sendall(header + b"ping\n")
                        self.assertTrue(closed_without_reply(s), (model, header))
                for header in truncated:
                    with connect(address) as s:
                        s.sendall(header)
                        s.shutdown(socket.SHUT_WR)
                        self.assertTrue(closed_without_reply(s), (model, header))
                p.wait_stderr(r"refused in the last [0-9.]+s: \d+ without a valid PROXY header")
                self.assertEqual(exchange(address, good), b"ping\n")  # the canary
                p.signal(signal.SIGTERM)
                self.assertEqual(p.wait(), 0)

    def test_a_header_that_never_completes_is_cut_at_the_handshake_timeout(self):
        for model in MODELS:
            with self.subTest(model=model):
                p, address = self.start_echo(model, "--handshake-timeout", "1")
                half = connect(address)
                half.sendall(v1("192.0.2.40")[:12])
                silent = connect(address)
                try:
                    # cut within the timeout (and some slack), with no reply
                    self.assertTrue(closed_without_reply(half, timeout=10.0))
                    self.assertTrue(closed_without_reply(silent, timeout=10.0))
                finally:
                    half.close()
                    silent.close()
                p.wait_stderr(r"silent past handshake_timeout")
                self.assertEqual(exchange(address, v1("192.0.2.41")), b"ping\n")

    def test_without_the_flag_a_header_is_ordinary_data(self):
        p, address = self.server("echo", "-q", "--model", "threading", "tcp://127.0.0.1:0")
        header = v1("192.0.2.50")
        self.assertEqual(exchange(address, b"", header), header)

    def test_unix_stream_server(self):
        d = sstest.temp_dir()
        p, address = self.server("echo", "-v", "--proxy-protocol", "--model", "threading",
                                 "unix:" + os.path.join(d, "s.sock"))
        with sstest.connect(address) as s:
            s.sendall(v1("192.0.2.60", sport=4242) + b"ping\n")
            self.assertEqual(read_all(s, 5), b"ping\n")
        p.wait_stderr(r"tcp://192\.0\.2\.60:4242 closed")

    def test_datagram_and_seqpacket_servers_refuse_the_flag(self):
        r = self.run_cli("reply", "--proxy-protocol", "--default", "x", "udp://127.0.0.1:0")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"PROXY protocol", r.stderr)
        r = self.run_cli("echo", "--proxy-protocol", "seqpacket:" + sstest.abstract_name())
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"PROXY protocol", r.stderr)


HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy")
                                      else None)


class RealHAProxy(sstest.TestCase):
    """HAProxy (scripts/install-deps.sh installs it) in front of sockserve."""

    def start_haproxy(self, backend_port, capture_port):
        self.assertIsNotNone(HAPROXY, "haproxy is not installed (scripts/install-deps.sh)")
        ports = [sstest.free_port() for _ in range(3)]
        cfg = """
global
    maxconn 200
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend v1
    bind 127.0.0.1:{p1}
    default_backend v1
backend v1
    server s1 127.0.0.1:{be} send-proxy
frontend v2
    bind 127.0.0.1:{p2}
    unique-id-format %{{+X}}o%ci:%cp_%fi:%fp_%Ts_%rt:%pid
    default_backend v2
backend v2
    server s2 127.0.0.1:{be} send-proxy-v2 proxy-v2-options crc32c,unique-id,authority
frontend capture
    bind 127.0.0.1:{p3}
    unique-id-format %{{+X}}o%ci:%cp_%fi:%fp_%Ts_%rt:%pid
    default_backend capture
backend capture
    server s3 127.0.0.1:{cap} send-proxy-v2 proxy-v2-options crc32c,unique-id,authority
""".format(p1=ports[0], p2=ports[1], p3=ports[2], be=backend_port, cap=capture_port)
        d = sstest.temp_dir()
        path = os.path.join(d, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(cfg)
        check = subprocess.run([HAPROXY, "-c", "-f", path], capture_output=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        h = self.start([HAPROXY, "-db", "-f", path])  # foreground; killed by pid at the end

        def up():
            try:
                socket.create_connection(("127.0.0.1", ports[2]), timeout=1).close()
                return True
            except OSError:
                return False
        self.assertTrue(sstest.wait_until(up, timeout=10), h.err_lines)
        return h, ports

    def test_send_proxy_and_send_proxy_v2_with_tlvs(self):
        capture = socket.socket()
        capture.bind(("127.0.0.1", 0))
        capture.listen(8)
        capture.settimeout(10 * SLOW)
        for model in ["threading", "event", "prefork"]:
            with self.subTest(model=model):
                p, address = self.server("echo", "-v", "--proxy-protocol", "--model", model,
                                         "tcp://127.0.0.1:0")
                _, be_port = sstest.split_inet(address)
                h, ports = self.start_haproxy(be_port, capture.getsockname()[1])
                # what HAProxy sends with those options carries the TLVs
                with connect("tcp://127.0.0.1:%d" % ports[2]) as c:
                    c.sendall(b"x")
                    conn, _ = capture.accept()
                    with conn:
                        conn.settimeout(5 * SLOW)
                        raw = b""
                        while len(raw) < 16 or len(raw) < 16 + struct.unpack("!H", raw[14:16])[0]:
                            chunk = conn.recv(4096)
                            self.assertTrue(chunk)
                            raw += chunk
                hlen = 16 + struct.unpack("!H", raw[14:16])[0]
                self.assertEqual(raw[:12], V2_SIG)
                types, at = [], 16 + 12
                while at < hlen:
                    types.append(raw[at])
                    at += 3 + struct.unpack("!H", raw[at + 1:at + 3])[0]
                self.assertIn(0x03, types)  # CRC32C
                self.assertIn(0x05, types)  # unique id
                # ... and sockserve takes that very header
                self.assertEqual(exchange(address, raw[:hlen]), b"ping\n")

                for front in ports[:2]:
                    with connect("tcp://127.0.0.1:%d" % front, source="127.0.0.9") as s:
                        mine = s.getsockname()[1]
                        payload = b"through haproxy %d\n" % front
                        s.sendall(payload)
                        self.assertEqual(read_all(s, len(payload)), payload)
                    # the client, not HAProxy's own connection, is logged
                    p.wait_stderr(r"tcp://127\.0\.0\.9:%d closed" % mine)
                h.kill()
                p.signal(signal.SIGTERM)
                self.assertEqual(p.wait(), 0)
        capture.close()


if __name__ == "__main__":
    sstest.main()

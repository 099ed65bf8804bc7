# SPDX-License-Identifier: MIT
"""TLS on the stream servers and the connect client, against real peers:
Python's ssl module and openssl s_client. Every blocking model, tcp and
unix; wrong CA, wrong name, expired certificate, TLS 1.0/1.1 refused, client
certificates required and checked, a plaintext client, a handshake that
stalls, SIGHUP reload (good and bad files, and a storm of them while the
forking model forks), session resumption across the
processes of forking and prefork.

ctest-labels: tsan
"""
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

import sstest
from sstest import SLOW

MODELS = ["serial", "threading", "forking", "pool", "prefork", "event", "coroutine"]


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", name + ".key", "-out", name + ".pem", "-days", "2",
            "-subj", "/CN=" + name, cwd=d)


def make_cert(d, name, ca, cn, days="2", san="DNS:localhost,IP:127.0.0.1"):
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn, cwd=d)
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("subjectAltName=%s\n" % san)
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
            "-CAcreateserial", "-out", name + ".pem", "-days", days,
            "-extfile", name + ".ext", cwd=d)
    os.chmod(os.path.join(d, name + ".key"), 0o600)


class TlsCase(sstest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = sstest.temp_dir()
        d = cls.dir
        make_ca(d, "ca")
        make_ca(d, "otherca")
        make_ca(d, "clientca")
        make_cert(d, "server", "ca", "localhost")
        make_cert(d, "server2", "ca", "renewed")
        make_cert(d, "expired", "ca", "localhost", days="-1")
        make_cert(d, "client", "clientca", "alice", san="DNS:alice")
        make_cert(d, "stranger", "otherca", "mallory", san="DNS:mallory")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def tls_server(self, *extra, cert="server", model="threading", address=None):
        args = ["echo", "--cert", self.path(cert + ".pem"), "--cert-key",
                self.path(cert + ".key"), "--model", model, "-v"]
        args += list(extra)
        args.append(address or "tcp://127.0.0.1:0")
        return self.server(*args)

    def client_ctx(self, ca="ca", cert=None):
        ctx = ssl.create_default_context(cafile=self.path(ca + ".pem"))
        if cert:
            ctx.load_cert_chain(self.path(cert + ".pem"), self.path(cert + ".key"))
        return ctx

    def tls_echo(self, address, ctx, payload=b"hello over tls\n", server_hostname="localhost",
                 session=None):
        """One TLS round trip; returns (reply, ssl socket info)."""
        if address.startswith("unix:"):
            raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            path = address[5:]
            raw.settimeout(5 * SLOW)
            raw.connect("\0" + path[1:] if path.startswith("@") else path)
        else:
            host, port = sstest.split_inet(address)
            raw = socket.create_connection((host, port), timeout=5 * SLOW)
        with ctx.wrap_socket(raw, server_hostname=server_hostname, session=session) as t:
            t.sendall(payload)
            got = b""
            while len(got) < len(payload):
                chunk = t.recv(65536)
                if not chunk:
                    break
                got += chunk
            return got, {"version": t.version(), "reused": t.session_reused,
                         "session": t.session, "peer": t.getpeercert()}


class TestTlsModels(TlsCase):
    def test_python_ssl_client_every_model_tcp_and_unix(self):
        for model in MODELS:
            for kind in ("tcp", "unix"):
                with self.subTest(model=model, kind=kind):
                    address = ("tcp://127.0.0.1:0" if kind == "tcp"
                               else "unix:" + os.path.join(self.dir, "s-%s.sock" % model))
                    p, addr = self.tls_server(model=model, address=address)
                    for i in range(3):
                        got, info = self.tls_echo(addr, self.client_ctx(),
                                                  payload=b"msg %d\n" % i)
                        self.assertEqual(got, b"msg %d\n" % i)
                        self.assertIn(info["version"], ("TLSv1.3", "TLSv1.2"))
                    p.signal(signal.SIGTERM)
                    self.assertEqual(p.wait(), 0)

    def test_openssl_s_client_peer(self):
        p, addr = self.tls_server(model="forking")
        host, port = sstest.split_inet(addr)
        c = self.start(["openssl", "s_client", "-connect", "%s:%d" % (host, port),
                        "-CAfile", self.path("ca.pem"), "-verify_return_error",
                        "-servername", "localhost", "-brief"], stdin=subprocess.PIPE)
        c.write(b"from s_client\n")
        c.wait_out(b"from s_client\n")
        c.wait_stderr(r"Verification: OK")
        c.close_stdin()
        c.wait()

    def test_resumption_across_processes(self):
        models = ("threading", "forking", "prefork", "event")
        for model in models:
            with self.subTest(model=model):
                p, addr = self.tls_server(model=model, *(["--workers", "3"]
                                                         if model == "prefork" else []))
                ctx = self.client_ctx()
                _, first = self.tls_echo(addr, ctx)
                self.assertFalse(first["reused"])
                reused = 0
                session = first["session"]
                for _ in range(4):
                    _, info = self.tls_echo(addr, ctx, session=session)
                    reused += info["reused"]
                    session = info["session"] or session
                self.assertEqual(reused, 4, "every later connection resumed (tickets)")
                p.kill()


class TestTlsExample(TlsCase):
    def test_examples_tls_echo_serve_and_send(self):
        exe = os.path.join(sstest.BUILD_DIR, "examples", "tls_echo")
        p = self.start([exe, "serve", "tcp://127.0.0.1:0", self.path("server.pem"),
                        self.path("server.key")])
        out = p.wait_out(b"...\n")
        addr = out.split(b"server is running on ")[1].split(b"...")[0].decode()
        r = subprocess.run([exe, "send", addr, self.path("ca.pem"), "hello example"],
                           capture_output=True, timeout=20 * SLOW)
        self.assertEqual((r.returncode, r.stdout), (0, b"hello example\n"), r.stderr)
        p.wait_out(b" over TLSv1.3")
        got, _ = self.tls_echo(addr, self.client_ctx(), payload=b"from python\n")
        self.assertEqual(got, b"from python\n")
        r = subprocess.run([exe, "send", addr, self.path("otherca.pem"), "x"],
                           capture_output=True, timeout=20 * SLOW)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"certificate verify failed", r.stderr)


class TestTlsSni(TlsCase):
    def test_sni_chooses_the_certificate(self):
        # ss_tls_ctx_add_cert through the example: the default, one name,
        # and a wildcard pair; Python's ssl sends each server_hostname.
        d = self.dir
        make_cert(d, "sni-a", "ca", "a.test", san="DNS:a.test")
        make_cert(d, "sni-b", "ca", "b.test", san="DNS:b.test,DNS:*.b.test")
        exe = os.path.join(sstest.BUILD_DIR, "examples", "tls_echo")
        p = self.start([exe, "serve", "tcp://127.0.0.1:0", self.path("server.pem"),
                        self.path("server.key"), self.path("sni-a.pem"), self.path("sni-a.key"),
                        self.path("sni-b.pem"), self.path("sni-b.key")])
        out = p.wait_out(b"...\n")
        addr = out.split(b"server is running on ")[1].split(b"...")[0].decode()
        ctx = self.client_ctx()
        ctx.check_hostname = False  # the default certificate does not cover every name
        for name, want in (("a.test", "a.test"), ("b.test", "b.test"),
                           ("www.b.test", "b.test"), ("localhost", "localhost"),
                           ("nobody.test", "localhost")):
            with self.subTest(name=name):
                got, info = self.tls_echo(addr, ctx, server_hostname=name)
                self.assertEqual(got, b"hello over tls\n")
                self.assertEqual(dict(x[0] for x in info["peer"]["subject"])["commonName"], want)
        # verified by name: the certificate it got covers the name it asked for
        strict = self.client_ctx()
        _, info = self.tls_echo(addr, strict, server_hostname="www.b.test")
        self.assertEqual(dict(x[0] for x in info["peer"]["subject"])["commonName"], "b.test")
        p.kill()


class TestTlsExec(TlsCase):
    def test_exec_relays_tls_to_the_program(self):
        # cat answers at once; tr buffers until its end of file, which the
        # client's close_notify + half-close must carry through the relay
        p, addr = self.server("exec", "--cert", self.path("server.pem"), "--cert-key",
                              self.path("server.key"), "tcp://127.0.0.1:0", "--", "cat")
        got, info = self.tls_echo(addr, self.client_ctx(), payload=b"through a program\n")
        self.assertEqual(got, b"through a program\n")
        p2, addr2 = self.server("exec", "--cert", self.path("server.pem"), "--cert-key",
                                self.path("server.key"), "tcp://127.0.0.1:0", "--",
                                "tr", "a-z", "A-Z")
        r = self.run_cli("connect", "--ca", self.path("ca.pem"), addr2, input=b"again\n")
        self.assertEqual((r.returncode, r.stdout), (0, b"AGAIN\n"), r.stderr)


class TestTlsBench(TlsCase):
    def test_bench_tls_full_and_resumed_handshakes(self):
        import json
        for model in ("threading", "event"):
            with self.subTest(model=model):
                p, addr = self.tls_server(model=model)
                for extra, resumed in (([], 0), (["--resume"], 20)):
                    r = self.run_cli("bench", "--ca", self.path("ca.pem"), "--conns", "20",
                                     "--duration", "0.5", "--json", *extra, addr)
                    self.assertEqual(r.returncode, 0, r.stderr)
                    out = json.loads(r.stdout)
                    self.assertTrue(out["tls"])
                    self.assertEqual(out["errors"], 0)
                    self.assertGreater(out["messages"], 0)
                    # --resume: the whole burst offers the one ticket the
                    # first connection got, and every connection resumes
                    # (each offers its own copy: OpenSSL spoils the session
                    # of a finished TLS 1.3 handshake; unit.tls)
                    self.assertEqual(out["resumed"], resumed)
                r = self.run_cli("bench", "--ca", self.path("otherca.pem"), "--conns", "2",
                                 "--duration", "0.5", addr)
                self.assertEqual(r.returncode, 1)
                self.assertIn("certificate verify failed", r.stderr.decode())
                p.kill()


class TestTlsRefusals(TlsCase):
    def canary(self, addr):
        got, _ = self.tls_echo(addr, self.client_ctx(), payload=b"canary\n")
        self.assertEqual(got, b"canary\n")

    def test_connect_reports_why_verification_failed(self):
        p, addr = self.tls_server()
        cases = [
            (["--ca", self.path("otherca.pem")], "unable to get local issuer certificate"),
            (["--ca", self.path("ca.pem"), "--server-name", "example.org"], "hostname mismatch"),
        ]
        for flags, why in cases:
            with self.subTest(why=why):
                r = self.run_cli("connect", *flags, addr, input=b"secret\n")
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn(why, r.stderr.decode())
                self.assertEqual(r.stdout, b"")
        p2, addr2 = self.tls_server(cert="expired")
        r = self.run_cli("connect", "--ca", self.path("ca.pem"), addr2, input=b"x\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("certificate has expired", r.stderr.decode())
        r = self.run_cli("connect", "--ca", self.path("ca.pem"), addr, input=b"good\n")
        self.assertEqual((r.returncode, r.stdout), (0, b"good\n"), r.stderr)

    def test_old_protocols_refused(self):
        p, addr = self.tls_server()
        host, port = sstest.split_inet(addr)
        for flag in ("-tls1", "-tls1_1"):
            with self.subTest(flag=flag):
                r = subprocess.run(["openssl", "s_client", "-connect", "%s:%d" % (host, port),
                                    flag, "-cipher", "DEFAULT@SECLEVEL=0"],
                                   input=b"", capture_output=True, timeout=20 * SLOW)
                out = (r.stdout + r.stderr).decode("utf-8", "replace")
                self.assertNotEqual(r.returncode, 0, out)
                # the server answered: it refused the version (not a client-side refusal)
                self.assertIn("alert protocol version", out)
        p.wait_stderr(r"TLS handshake failed: unsupported protocol")
        self.canary(addr)

    def test_client_certificates_required_and_checked(self):
        models = ("threading", "prefork", "event")
        for model in models:
            with self.subTest(model=model):
                p, addr = self.tls_server("--ca", self.path("clientca.pem"), "-vv", model=model)
                try:
                    got, info = self.tls_echo(addr, self.client_ctx(cert="client"))
                except TimeoutError:
                    p.signal(signal.SIGTERM)
                    p.wait(30)
                    raise AssertionError("timed out; server said %r" % p.err_lines)
                self.assertEqual(got, b"hello over tls\n")
                for cert in (None, "stranger"):
                    with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
                        got, _ = self.tls_echo(addr, self.client_ctx(cert=cert))
                        # TLS 1.3: the refusal may arrive at the first read
                        if got == b"":
                            raise ConnectionError("closed")
                r = self.run_cli("connect", "--ca", self.path("ca.pem"),
                                 "--cert", self.path("client.pem"),
                                 "--cert-key", self.path("client.key"), addr, input=b"mtls\n")
                self.assertEqual((r.returncode, r.stdout), (0, b"mtls\n"), r.stderr)
                p.kill()

    def test_plaintext_client_is_closed_server_unaffected(self):
        for model in MODELS:
            with self.subTest(model=model):
                p, addr = self.tls_server(model=model)
                host, port = sstest.split_inet(addr)
                with socket.create_connection((host, port), timeout=5 * SLOW) as s:
                    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                    try:
                        data = s.recv(4096)
                    except ConnectionResetError:  # an alert, then unread bytes: RST
                        data = b""
                    # no echo of the plaintext: at most a TLS alert record
                    self.assertNotIn(b"GET", data)
                p.wait_stderr(r"TLS handshake failed")
                self.canary(addr)
                p.kill()

    def test_handshake_stall_is_cut(self):
        for model in ("threading", "forking", "prefork", "event"):
            with self.subTest(model=model):
                p, addr = self.tls_server("--handshake-timeout", "1", model=model)
                host, port = sstest.split_inet(addr)
                s = socket.create_connection((host, port), timeout=10 * SLOW)
                s.sendall(b"\x16\x03\x01")  # the start of a ClientHello, then nothing
                t0 = time.monotonic()
                self.assertEqual(s.recv(100), b"")  # the server hangs up
                elapsed = time.monotonic() - t0
                s.close()
                self.assertLess(elapsed, 8 * SLOW)
                p.wait_stderr(r"TLS handshake timed out")
                self.canary(addr)
                p.kill()


class TestTlsReload(TlsCase):
    def test_sighup_reload_good_then_bad(self):
        for model in ("threading", "prefork", "event"):
            with self.subTest(model=model):
                live = os.path.join(self.dir, "live-%s" % model)
                os.makedirs(live, exist_ok=True)
                cert, key = os.path.join(live, "c.pem"), os.path.join(live, "c.key")
                shutil.copy(self.path("server.pem"), cert)
                shutil.copy(self.path("server.key"), key)
                # prefork with one worker: a worker renews at its own next
                # connection, so with several the order of connections would
                # decide which worker has caught up (docs/tls.md)
                extra = ["--workers", "1"] if model == "prefork" else []
                p, addr = self.server("echo", "--cert", cert, "--cert-key", key, *extra,
                                      "--model", model, "-v", "tcp://127.0.0.1:0")
                ctx = self.client_ctx()
                _, info = self.tls_echo(addr, ctx)
                self.assertEqual(dict(x[0] for x in info["peer"]["subject"])["commonName"],
                                 "localhost")
                shutil.copy(self.path("server2.pem"), cert)
                shutil.copy(self.path("server2.key"), key)
                p.signal(signal.SIGHUP)
                p.wait_stderr(r"SIGHUP: certificate re-read")
                # prefork: each worker catches up at its next connection
                for _ in range(4):
                    _, info = self.tls_echo(addr, ctx)
                    self.assertEqual(
                        dict(x[0] for x in info["peer"]["subject"])["commonName"], "renewed")
                with open(cert, "w") as f:
                    f.write("not a certificate\n")
                p.signal(signal.SIGHUP)
                p.wait_stderr(r"SIGHUP: cannot load certificate .*keeping the old certificate")
                for _ in range(3):
                    got, info = self.tls_echo(addr, ctx)
                    self.assertEqual(got, b"hello over tls\n")
                    self.assertEqual(
                        dict(x[0] for x in info["peer"]["subject"])["commonName"], "renewed")
                p.kill()

    def test_prefork_every_worker_serves_the_last_good_reload(self):
        # A good reload no worker sees (no connection), then a bad file and
        # a second SIGHUP: every worker must serve the reloaded certificate,
        # not re-read the bad file and keep the one from start. Connections
        # held open at once land on distinct workers (each serves one at a
        # time), so all three workers answer.
        live = os.path.join(self.dir, "live-prefork3")
        os.makedirs(live, exist_ok=True)
        cert, key = os.path.join(live, "c.pem"), os.path.join(live, "c.key")
        shutil.copy(self.path("server.pem"), cert)
        shutil.copy(self.path("server.key"), key)
        p, addr = self.server("echo", "--cert", cert, "--cert-key", key, "--model", "prefork",
                              "--workers", "3", "-v", "tcp://127.0.0.1:0")
        shutil.copy(self.path("server2.pem"), cert)
        shutil.copy(self.path("server2.key"), key)
        p.signal(signal.SIGHUP)
        p.wait_stderr(r"SIGHUP: certificate re-read")
        with open(cert, "w") as f:
            f.write("not a certificate\n")
        p.signal(signal.SIGHUP)
        p.wait_stderr(r"SIGHUP: cannot load certificate .*keeping the old certificate")
        host, port = sstest.split_inet(addr)
        ctx = self.client_ctx()
        for _ in range(3):
            held = []
            try:
                for _ in range(3):
                    raw = socket.create_connection((host, port), timeout=5 * SLOW)
                    t = ctx.wrap_socket(raw, server_hostname="localhost")
                    held.append(t)
                    t.sendall(b"ping\n")
                    self.assertEqual(t.recv(16), b"ping\n")
                    cn = dict(x[0] for x in t.getpeercert()["subject"])["commonName"]
                    self.assertEqual(cn, "renewed", "connection %d of 3 held open" % len(held))
            finally:
                for t in held:
                    t.close()
        p.kill()

    def test_sighup_storm_while_forking_hangs_no_child(self):
        # The CLI reloads on its signal thread, inside OpenSSL's locks (and
        # gmtime_r's, for its log line). A child forked meanwhile inherited
        # such a lock held by a thread it does not have and hung at its
        # handshake: the flaky timeouts of the prefork reload tests above (a
        # worker forked as the first SIGHUP came). Reloads back to back while
        # the forking model forks a child per connection: every one answers.
        # -q: a reload logs nothing, so no unread stderr pipe can fill.
        # The old code hung 1 to 4 of these 60 in every run (plain and ASan).
        p, addr = self.server("echo", "--cert", self.path("server.pem"), "--cert-key",
                              self.path("server.key"), "--model", "forking", "-q",
                              "tcp://127.0.0.1:0")
        host, port = sstest.split_inet(addr)
        stop = threading.Event()

        def storm():
            for _ in range(3000):  # bounded: ~2 ms apart, until the clients are done
                if stop.wait(0.002):
                    return
                p.signal(signal.SIGHUP)

        sender = threading.Thread(target=storm)
        sender.start()
        ctx = self.client_ctx()
        hung = []
        try:
            for i in range(60):
                raw = socket.create_connection((host, port), timeout=5 * SLOW)
                raw.settimeout(2 * SLOW)  # a whole exchange takes ms; a hung child never ends
                try:
                    with ctx.wrap_socket(raw, server_hostname="localhost") as t:
                        t.sendall(b"x\n")
                        self.assertEqual(t.recv(16), b"x\n")
                except TimeoutError:
                    hung.append(i)
                    raw.close()
        finally:
            stop.set()
            sender.join()
        self.assertEqual(hung, [], "connections whose forked child hung")
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(), 0)

    def test_prefork_workers_forked_at_start_survive_a_reload(self):
        # The workers are forked right after the listening line. A worker
        # forked while the CLI's signal thread was still starting up (its
        # first free, under ASan, holds the allocator's quarantine lock)
        # inherited that lock held and hung at its first big run of frees:
        # the rebuild after a SIGHUP (test_sighup_reload_good_then_bad's
        # prefork case, under ASan and load). Many fresh servers, a reload
        # each, and every worker must answer with the new certificate.
        # Under ASan with a busy CPU beside it, the old code hung a worker in
        # 5 of 7 runs (1 to 5 of the 12 lifetimes); glibc's malloc is
        # fork-safe, so the plain run only checks the reload.
        live = os.path.join(self.dir, "live-prefork-start")
        os.makedirs(live, exist_ok=True)
        cert, key = os.path.join(live, "c.pem"), os.path.join(live, "c.key")
        ctx = self.client_ctx()
        hung = []
        for life in range(12):
            shutil.copy(self.path("server.pem"), cert)
            shutil.copy(self.path("server.key"), key)
            p, addr = self.server("echo", "--cert", cert, "--cert-key", key, "--model",
                                  "prefork", "--workers", "3", "tcp://127.0.0.1:0")
            host, port = sstest.split_inet(addr)
            shutil.copy(self.path("server2.pem"), cert)
            shutil.copy(self.path("server2.key"), key)
            p.signal(signal.SIGHUP)
            p.wait_stderr(r"SIGHUP: certificate re-read")
            held = []
            try:
                for _ in range(3):  # held open at once: one on each worker
                    raw = socket.create_connection((host, port), timeout=5 * SLOW)
                    raw.settimeout(2 * SLOW)  # ms when well; a hung worker never answers
                    try:
                        t = ctx.wrap_socket(raw, server_hostname="localhost")
                    except TimeoutError:
                        raw.close()
                        hung.append(life)
                        break
                    held.append(t)
                    t.sendall(b"ping\n")
                    self.assertEqual(t.recv(16), b"ping\n")
                    cn = dict(x[0] for x in t.getpeercert()["subject"])["commonName"]
                    self.assertEqual(cn, "renewed")
            finally:
                for t in held:
                    t.close()
            p.kill()
        self.assertEqual(hung, [], "server lifetimes with a hung worker")

    def test_bad_files_at_start_are_usage_errors(self):
        cases = [
            (["--cert", self.path("server.pem")], "needs both --cert and --cert-key"),
            (["--cert", self.path("nope.pem"), "--cert-key", self.path("server.key")],
             "cannot read certificate"),
            (["--cert", self.path("server.pem"), "--cert-key", self.path("client.key")],
             "key values mismatch|does not match"),
            (["--cert", self.path("server.pem"), "--cert-key", self.path("server.key"),
              "--ca", self.path("missing-ca.pem")], "cannot read CA file"),
        ]
        for flags, why in cases:
            with self.subTest(why=why):
                r = self.run_cli("echo", *flags, "tcp://127.0.0.1:0")
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertRegex(r.stderr.decode(), why)
        r = self.run_cli("echo", "--cert", self.path("server.pem"), "--cert-key",
                         self.path("server.key"), "udp://127.0.0.1:0")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("TLS needs a stream address", r.stderr.decode())


if __name__ == "__main__":
    sstest.main()

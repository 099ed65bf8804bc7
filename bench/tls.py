#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""TLS echo: sockserve terminating TLS itself against HAProxy terminating TLS
in front of a plain sockserve echo, on the same machine, interleaved rounds.

  bench/tls.py [--rounds 3] [--duration 3] [--sockserve build/sockserve]

Servers run on CPU 0, the load generator (`sockserve bench --tls`) on CPU 1.
For each scenario (S2: 50 x 1 x 64 B, S4: 1000 x 1 x 64 B), with full
handshakes and with resumed ones (`--resume`), it reports the medians of:
handshakes/s (every connection's handshake happens in the warm-up, all at
once), msg/s over the window, and the server side's CPU per message (HAProxy
and its backend together). Writes bench/results-tls.md and prints it.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
HZ = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def wait_port(port, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("nothing listens on %d" % port)


def start(argv, cpu="0"):
    return subprocess.Popen(["taskset", "-c", cpu] + argv, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def stop(procs):
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


class Server:
    def __init__(self, name, sockserve, d):
        self.name, self.sockserve, self.d = name, sockserve, d

    def __enter__(self):
        port = free_port()
        cert, key = os.path.join(self.d, "cert.pem"), os.path.join(self.d, "key.pem")
        if self.name == "sockserve-event":
            self.procs = [start([self.sockserve, "echo", "-q", "--model", "event",
                                 "--workers", "1",
                                 "--cert", cert, "--cert-key", key,
                                 "tcp://127.0.0.1:%d" % port])]
        else:
            backend = free_port()
            cfg = os.path.join(self.d, "haproxy.cfg")
            with open(cfg, "w") as f:
                f.write("global\n  nbthread 1\n  maxconn 5000\n"
                        "defaults\n  mode tcp\n  timeout connect 5s\n"
                        "  timeout client 60s\n  timeout server 60s\n"
                        "frontend tls\n  bind 127.0.0.1:%d ssl crt %s\n"
                        "  default_backend echo\n"
                        "backend echo\n  server e1 127.0.0.1:%d\n"
                        % (port, os.path.join(self.d, "combined.pem"), backend))
            self.procs = [start([self.sockserve, "echo", "-q", "--model", "event",
                                 "--workers", "1", "tcp://127.0.0.1:%d" % backend])]
            wait_port(backend)
            self.procs.append(start(["haproxy", "-db", "-f", cfg]))
        self.port = port
        wait_port(port)
        return self

    def ticks(self):
        return sum(cpu_ticks(p.pid) for p in self.procs)

    def __exit__(self, *exc):
        stop(self.procs)


def one_run(sockserve, d, server, conns, resume, duration):
    with Server(server, sockserve, d) as s:
        argv = ["taskset", "-c", "1", sockserve, "bench", "--ca", os.path.join(d, "cert.pem"),
                "--server-name", "localhost", "--conns", str(conns), "--duration",
                str(duration), "--warmup", "60", "--json",
                "tcp://127.0.0.1:%d" % s.port]
        if resume:
            argv.insert(-1, "--resume")
        t0 = s.ticks()
        r = subprocess.run(argv, capture_output=True, timeout=duration + 120)
        t1 = s.ticks()
        if r.returncode != 0:
            raise RuntimeError("%s: %s" % (server, r.stderr.decode()))
        out = json.loads(r.stdout)
        # CPU over warm-up + window; per message of the window only would
        # hide the handshakes, so report the window's share separately
        out["server_cpu_total_s"] = (t1 - t0) / HZ
        return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--sockserve", default=os.path.join(ROOT, "build", "sockserve"))
    ap.add_argument("--out", default=os.path.join(HERE, "results-tls.md"))
    a = ap.parse_args()
    if shutil.which("haproxy") is None:
        sys.exit("bench/tls.py: haproxy is not installed (apt-get install haproxy)")
    d = tempfile.mkdtemp(prefix="sockserve-bench-tls-")
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", "key.pem", "-out",
                        "cert.pem", "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost"],
                       cwd=d, check=True, capture_output=True)
        with open(os.path.join(d, "combined.pem"), "w") as f:
            f.write(open(os.path.join(d, "cert.pem")).read())
            f.write(open(os.path.join(d, "key.pem")).read())
        servers = ["sockserve-event", "haproxy+sockserve"]
        cells = [("S2", 50), ("S4", 1000)]
        samples = {}
        for rnd in range(a.rounds):
            for scen, conns in cells:
                for resume in (False, True):
                    for server in servers:  # A B A B ...: drift hits both alike
                        out = one_run(a.sockserve, d, server, conns, resume, a.duration)
                        samples.setdefault((scen, resume, server), []).append(out)
                        print("round %d %s %s %-18s %8.0f msg/s %7.0f hs/s" % (
                            rnd + 1, scen, "resumed" if resume else "full", server,
                            out["msgs_per_s"], out["handshakes_per_s"]), flush=True)
        lines = ["# TLS echo: sockserve vs HAProxy in front of a plain echo", "",
                 "`bench/tls.py --rounds %d --duration %g`: medians of %d interleaved rounds;"
                 " servers on CPU 0 (one loop, one HAProxy thread), `sockserve bench --tls`"
                 " on CPU 1, ECDSA P-256 certificate, TLS 1.3. handshakes/s: every"
                 " connection connects and handshakes at once in the warm-up."
                 " CPU/msg: the server side's CPU over the measured window and the warm-up,"
                 " divided by the window's messages (HAProxy + its backend together)."
                 % (a.rounds, a.duration, a.rounds), "",
                 "| scenario | handshakes | server | handshakes/s | msg/s | server CPU s | ratio msg/s | ratio handshakes/s |",
                 "|---|---|---|---|---|---|---|---|"]
        for scen, conns in cells:
            for resume in (False, True):
                base = None
                for server in servers:
                    got = samples[(scen, resume, server)]
                    hs = statistics.median(x["handshakes_per_s"] for x in got)
                    rate = statistics.median(x["msgs_per_s"] for x in got)
                    cpu = statistics.median(x["server_cpu_total_s"] for x in got)
                    if base is None:
                        base = (rate, hs)
                    lines.append("| %s (%d conns) | %s | %s | %.0f | %.0f | %.2f | %.2f | %.2f |" % (
                        scen, conns, "resumed" if resume else "full", server, hs, rate, cpu,
                        base[0] / rate if rate else 0, base[1] / hs if hs else 0))
        lines.append("")
        lines.append("ratio = sockserve-event / this row (> 1: sockserve is ahead).")
        text = "\n".join(lines) + "\n"
        with open(a.out, "w") as f:
            f.write(text)
        print(text)
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The side-by-side echo benchmark; run through bench/run.sh (which builds first).

For every round, every scenario, every server (interleaved: A B C ... A B C ...):
start the server alone on CPU 0, run `sockserve bench --json --server-pid` on
CPU 1, stop the server. Then the idle-memory test and sockperf. Writes
bench/results.md, bench/results.json (every sample) and bench/results.png.
"""
import argparse
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "out")
PY = "/usr/bin/python3"
SERVER_CPU, CLIENT_CPU = "0", "1"
TRIM = "glibc.malloc.trim_threshold=67108864"

SCENARIOS = [  # name, conns, depth, size, what it shows
    ("S1", 1, 1, 64, "1 conn x 1 x 64 B: ping-pong latency (bound by the VM)"),
    ("S2", 50, 1, 64, "50 conns x 1 x 64 B"),
    ("S3", 50, 16, 64, "50 conns x 16 in flight x 64 B: pipelined"),
    ("S4", 1000, 1, 64, "1000 conns x 1 x 64 B: many connections"),
    ("S5", 4, 4, 16384, "4 conns x 4 x 16 KiB: bulk"),
]


def peers(sockserve):
    """(name, argv, extra env) of every server under test, sockserve first."""
    o = lambda name: os.path.join(OUT, name)  # noqa: E731
    p = lambda name: os.path.join(HERE, "peers", name)  # noqa: E731
    return [
        ("sockserve-event", [sockserve, "echo", "-q", "--model", "event", "--backend",
                             "epoll", "tcp://127.0.0.1:0"], {}),
        ("sockserve-uring", [sockserve, "echo", "-q", "--model", "event", "--backend",
                             "io_uring", "tcp://127.0.0.1:0"], {}),
        ("sockserve-uring-readiness", [sockserve, "echo", "-q", "--model", "event",
                                       "--backend", "io_uring", "tcp://127.0.0.1:0"],
         {"SS_URING_MODE": "readiness"}),
        ("sockserve-threading", [sockserve, "echo", "-q", "--model", "threading",
                                 "tcp://127.0.0.1:0"], {}),
        ("sockserve-coroutine", [sockserve, "echo", "-q", "--model", "coroutine",
                                 "--backend", "epoll", "tcp://127.0.0.1:0"], {}),
        ("sockserve-coroutine-uring", [sockserve, "echo", "-q", "--model", "coroutine",
                                       "--backend", "io_uring", "tcp://127.0.0.1:0"], {}),
        ("epoll", [o("epoll_echo")], {}),
        ("io_uring", [o("uring_echo")], {}),
        ("libuv", [o("libuv_echo")], {}),
        ("libuv-tuned", [o("libuv_echo")], {"GLIBC_TUNABLES": TRIM}),
        ("libevent", [o("libevent_echo")], {}),
        ("libevent-tuned", [o("libevent_echo"), "--tuned"], {}),
        ("libevent-raw", [o("libevent_echo"), "--raw"], {}),
        ("thread-per-conn", [o("thread_echo")], {}),
        ("uvloop", [PY, p("uvloop_echo.py")], {}),
        ("py-threading", [PY, p("seed_threading_echo.py")], {}),
    ]


class Server:
    """One server process pinned to CPU 0; its address from its listening line."""

    def __init__(self, argv, env, timeout=10.0):
        full_env = dict(os.environ, **env)
        self.p = subprocess.Popen(["taskset", "-c", SERVER_CPU] + argv, env=full_env,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, start_new_session=True)
        self.address = None
        buf = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.address is None:
            r, _, _ = select.select([self.p.stderr], [], [], 0.2)
            if r:
                chunk = os.read(self.p.stderr.fileno(), 4096)
                if not chunk:
                    break
                buf += chunk
                m = re.search(rb"listening on (\S+)", buf)
                if m:
                    self.address = m.group(1).decode()
            elif self.p.poll() is not None:
                break
        self.startup_error = None if self.address else (
            buf.decode(errors="replace").strip().splitlines() or ["no listening line"])[-1]

    @property
    def pid(self):
        return self.p.pid  # taskset execs the server: same pid

    def stop(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.p.wait()
        self.p.stderr.close()


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)


def bench_argv(args, address, pid, conns, depth, size, duration, extra=()):
    return (["taskset", "-c", CLIENT_CPU, args.sockserve, "bench", address,
             "--conns", str(conns), "--depth", str(depth), "--size", str(size),
             "--duration", str(duration), "--warmup", str(args.warmup), "--json",
             "--server-pid", str(pid)] + list(extra))


def run_cell(args, name, argv, env, scen):
    """One server, one scenario, one round: a dict of numbers or of an error."""
    _, conns, depth, size, _ = scen
    srv = Server(argv, env)
    if srv.address is None:
        srv.stop()
        return {"error": "did not start: " + srv.startup_error}
    try:
        res = subprocess.run(bench_argv(args, srv.address, srv.pid, conns, depth, size,
                                        args.duration),
                             capture_output=True, timeout=args.duration + args.warmup + 30)
    except subprocess.TimeoutExpired:
        srv.stop()
        return {"error": "bench did not finish"}
    srv.stop()
    if res.returncode != 0:
        return {"error": (res.stderr.decode(errors="replace").strip().splitlines()
                          or ["exit %d" % res.returncode])[-1]}
    d = json.loads(res.stdout)
    return {"msgs": d["msgs_per_s"], "mbs": d["mb_per_s"], "p50": d["latency_us"]["p50"],
            "p99": d["latency_us"]["p99"], "p999": d["latency_us"]["p999"],
            "cpu": d["server_cpu_us_per_msg"], "warmup": d["warmup_s"]}


def run_idle(args, name, argv, env, conns):
    """RSS growth per connection and CPU while idle, for `conns` idle connections."""
    if name in ("sockserve-threading", "sockserve-coroutine", "sockserve-coroutine-uring"):
        # these models hold a connection in the acceptor until its first
        # byte, at most --max-pending (1024) of them (CLI.md): the idle
        # clients all connect before any speaks
        argv = argv[:-1] + ["--max-pending", str(conns + 1024)] + argv[-1:]
    srv = Server(argv, env)
    if srv.address is None:
        srv.stop()
        return {"error": "did not start: " + srv.startup_error}
    try:
        time.sleep(0.3)
        base = rss_bytes(srv.pid)
        idle_s = 2.0
        b = subprocess.Popen(bench_argv(args, srv.address, srv.pid, conns, 1, 64,
                                        idle_s + 2.0, ["--idle"]),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + args.warmup + 10
        err = b""
        while b"open and idle" not in err and time.monotonic() < deadline:
            r, _, _ = select.select([b.stderr], [], [], 0.2)
            if r:
                chunk = os.read(b.stderr.fileno(), 4096)
                if not chunk:
                    break
                err += chunk
        if b"open and idle" not in err:
            b.kill()
            b.wait()
            rest = b.stderr.read()
            return {"error": ((err + rest).decode(errors="replace").strip().splitlines()
                              or ["no idle line"])[-1]}
        time.sleep(0.5)
        rss = rss_bytes(srv.pid)
        t0 = cpu_ticks(srv.pid)
        time.sleep(idle_s)
        t1 = cpu_ticks(srv.pid)
        b.communicate(timeout=30)
        hz = os.sysconf("SC_CLK_TCK")
        return {"per_conn": (rss - base) / conns, "base": base, "rss": rss,
                "idle_cpu_pct": 100.0 * (t1 - t0) / hz / idle_s, "conns": conns}
    finally:
        srv.stop()


def parse_sockperf(text):
    got = {}
    for key, rx in (("p50", r"percentile 50\.000 =\s*([\d.]+)"),
                    ("p99", r"percentile 99\.000 =\s*([\d.]+)"),
                    ("avg", r"avg-(?:rtt|lat)\s*=\s*([\d.]+)")):
        m = re.search(rx, text)
        if m:
            got[key] = float(m.group(1))
    return got


def run_sockperf(args, servers):
    """sockperf ping-pong against each server if it works with a plain echo;
    otherwise sockperf against its own server, as a reference only."""
    if not shutil.which("sockperf"):
        return {"note": "sockperf is not installed: skipped."}
    dur = str(max(1, int(args.duration)))
    epoll = Server(next(a for n, a, _ in servers if n == "epoll"), {})
    try:
        host, port = epoll.address.split("://")[1].rsplit(":", 1)
        res = subprocess.run(["taskset", "-c", CLIENT_CPU, "sockperf", "ping-pong", "--tcp",
                              "-i", host, "-p", port, "-t", "1", "-m", "64", "--full-rtt"],
                             capture_output=True, timeout=30)
        text = (res.stdout + res.stderr).decode(errors="replace")
    finally:
        epoll.stop()
    works = "No messages were received" not in text and parse_sockperf(text).get("p50")
    out = {}
    if works:
        out["note"] = ("sockperf ping-pong --tcp --full-rtt -m 64 against each echo server "
                       "(S1: one connection, round trip).")
        for name, argv, env in servers:
            srv = Server(argv, env)
            if srv.address is None:
                srv.stop()
                continue
            host, port = srv.address.split("://")[1].rsplit(":", 1)
            r = subprocess.run(["taskset", "-c", CLIENT_CPU, "sockperf", "ping-pong", "--tcp",
                                "-i", host, "-p", port, "-t", dur, "-m", "64", "--full-rtt"],
                               capture_output=True, timeout=60)
            srv.stop()
            out[name] = parse_sockperf((r.stdout + r.stderr).decode(errors="replace"))
        return out
    # sockperf's client marks its messages and ignores a reply that is not
    # marked by a sockperf server: a plain echo server's answers never count.
    port = "11%03d" % (os.getpid() % 1000)
    srv = subprocess.Popen(["taskset", "-c", SERVER_CPU, "sockperf", "sr", "--tcp", "-i",
                            "127.0.0.1", "-p", port], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        time.sleep(1.0)
        r = subprocess.run(["taskset", "-c", CLIENT_CPU, "sockperf", "ping-pong", "--tcp",
                            "-i", "127.0.0.1", "-p", port, "-t", dur, "-m", "64",
                            "--full-rtt"], capture_output=True, timeout=60)
        ref = parse_sockperf((r.stdout + r.stderr).decode(errors="replace"))
    finally:
        os.killpg(srv.pid, signal.SIGKILL)
        srv.wait()
    out["note"] = ("sockperf ping-pong gets no answer from a plain echo server (its client "
                   "only counts replies marked by a sockperf server: checked against the "
                   "epoll peer in this run), so it cannot measure these servers. As a "
                   "reference only: `sockperf sr --tcp` (its own server, CPU 0) with "
                   "`sockperf ping-pong --tcp -m 64 --full-rtt` (CPU 1).")
    out["sockperf-sr (reference)"] = ref
    return out


def med(values):
    return statistics.median(values) if values else None


def fmt_rate(v):
    if v is None:
        return "–"
    return "%.0f" % v if v < 1e4 else "%.0fk" % (v / 1e3) if v < 1e7 else "%.1fM" % (v / 1e6)


def summarize(samples, name, scen):
    runs = samples.get(name, {}).get(scen, [])
    ok = [r for r in runs if "msgs" in r]
    errs = [r["error"] for r in runs if "error" in r]
    if not ok:
        return None, errs
    s = {k: med([r[k] for r in ok if r.get(k) is not None])
         for k in ("msgs", "mbs", "p50", "p99", "p999", "cpu")}
    s["min"] = min(r["msgs"] for r in ok)
    s["max"] = max(r["msgs"] for r in ok)
    s["n"] = len(ok)
    return s, errs


def write_markdown(args, names, scenarios, samples, idle, sockperf, skipped, path):
    L = []
    w = L.append
    w("# sockserve echo benchmark: results\n")
    w("Generated by `bench/run.sh%s` on %s. **%s**\n" % (
        " --quick" if args.quick else "", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "Quick run: one round, short windows — a check of the script, not numbers to quote."
        if args.quick else "Full run."))
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = re.search(r"model name\s*:\s*(.*)", f.read()).group(1)
    except (OSError, AttributeError):
        pass
    w("- Machine: %d CPUs (%s), Linux %s, %s." % (os.cpu_count(), cpu, platform.release(),
                                                    platform.python_implementation() + " "
                                                    + platform.python_version()))
    w("- Every server pinned to CPU 0 and the load generator (`sockserve bench`) to CPU 1 "
      "with `taskset`.")
    w("- %d round(s), servers interleaved within each scenario (A B C … A B C …); a fresh "
      "server process for every cell; %.1f s measured per cell after a warm-up (the clock "
      "starts when every connection has had one echo back; warm-up bounded to %.0f s)."
      % (args.rounds, args.duration, args.warmup))
    w("- msg/s: median [min–max] over the rounds. CPU µs/msg: server utime+stime "
      "(/proc/PID/stat, all threads) over the measured window ÷ messages — it ranks servers "
      "even when the single-threaded client is the limit. Latency: round trip of each "
      "message, median over rounds of each round's p50 / p99.")
    w("- Differences under ~25 % are ties on this machine (run-to-run spread is large; "
      "see README.md).\n")
    for s in skipped:
        w("- **Skipped:** %s" % s)
    if skipped:
        w("")
    w("## Scenarios\n")
    for scen in scenarios:
        w("- %s: %s" % (scen[0], scen[4]))
    w("")
    scen_names = [s[0] for s in scenarios]

    w("## Messages per second: median [min–max]\n")
    w("| server | " + " | ".join(scen_names) + " |")
    w("|---|" + "---|" * len(scen_names))
    errors = []
    for n in names:
        cells = []
        for sc in scen_names:
            s, errs = summarize(samples, n, sc)
            errors += ["%s %s: %s" % (n, sc, e) for e in errs]
            cells.append("–" if s is None else "%s [%s–%s]%s" % (
                fmt_rate(s["msgs"]), fmt_rate(s["min"]), fmt_rate(s["max"]),
                " (%d/%d ok)" % (s["n"], s["n"] + len(errs)) if errs else ""))
        w("| %s | %s |" % (n, " | ".join(cells)))
    w("\n## Server CPU per message (µs), median\n")
    w("| server | " + " | ".join(scen_names) + " |")
    w("|---|" + "---|" * len(scen_names))
    for n in names:
        cells = []
        for sc in scen_names:
            s, _ = summarize(samples, n, sc)
            cells.append("–" if s is None or s["cpu"] is None else "%.2f" % s["cpu"])
        w("| %s | %s |" % (n, " | ".join(cells)))
    w("\n## Round-trip latency p50 / p99 (µs), median over rounds\n")
    w("| server | " + " | ".join(scen_names) + " |")
    w("|---|" + "---|" * len(scen_names))
    for n in names:
        cells = []
        for sc in scen_names:
            s, _ = summarize(samples, n, sc)
            cells.append("–" if s is None else "%.0f / %.0f" % (s["p50"], s["p99"]))
        w("| %s | %s |" % (n, " | ".join(cells)))

    for ours in ("sockserve-event", "sockserve-threading", "sockserve-coroutine",
                 "sockserve-coroutine-uring"):
        if ours not in names:
            continue
        w("\n## Ratios: %s ÷ each peer (msg/s medians; in brackets the peer's CPU/msg ÷ "
          "ours, > 1 means we spend less CPU)\n" % ours)
        w("| peer | " + " | ".join(scen_names) + " |")
        w("|---|" + "---|" * len(scen_names))
        for n in names:
            # the coroutine model is also measured against the event model and
            # threading (issue 12's goals are those ratios)
            if n.startswith("sockserve") and (not ours.startswith("sockserve-coroutine")
                                              or n == ours):
                continue
            cells = []
            for sc in scen_names:
                a, _ = summarize(samples, ours, sc)
                b, _ = summarize(samples, n, sc)
                if a is None or b is None or not b["msgs"]:
                    cells.append("–")
                    continue
                c = ""
                if a["cpu"] and b["cpu"]:
                    c = " [%.2f×]" % (b["cpu"] / a["cpu"])
                cells.append("%.2f×%s" % (a["msgs"] / b["msgs"], c))
            w("| %s | %s |" % (n, " | ".join(cells)))

    w("\n## %d idle connections: memory and CPU\n" % args.idle_conns)
    w("RSS growth of the server (VmRSS after every connection has echoed once and gone "
      "idle, minus VmRSS before the first connection) ÷ connections, and the server's "
      "CPU over %.0f s of idleness.\n" % 2.0)
    w("| server | bytes/conn | RSS before → idle | CPU while idle |")
    w("|---|---|---|---|")
    for n in names:
        r = idle.get(n)
        if r is None:
            continue
        if "error" in r:
            w("| %s | failed: %s | | |" % (n, r["error"].replace("|", "/")))
        else:
            w("| %s | %.0f | %.1f → %.1f MiB | %.1f %% |" % (
                n, r["per_conn"], r["base"] / 2**20, r["rss"] / 2**20, r["idle_cpu_pct"]))

    w("\n## sockperf (S1 latency, independent client)\n")
    w(sockperf.get("note", "") + "\n")
    rows = [(k, v) for k, v in sockperf.items() if k != "note"]
    if rows:
        w("| server | p50 µs | p99 µs | avg µs |")
        w("|---|---|---|---|")
        for k, v in rows:
            w("| %s | %s | %s | %s |" % (k, v.get("p50", "–"), v.get("p99", "–"),
                                         v.get("avg", "–")))
    if errors:
        w("\n## Failed cells\n")
        for e in errors:
            w("- " + e.replace("|", "/"))
    w("\nChart: `results.png` (msg/s medians, log scale). Raw samples: `results.json`.")
    with open(path, "w") as f:
        f.write("\n".join(L) + "\n")


# Every server its own colour and marker, fixed by name, so a series looks the
# same in every chart whichever servers a run had (colours: Tableau 10 plus two;
# gnuplot point types: 4/5 squares, 6/7 circles, 8/9 triangles, 12/13 diamonds).
SERIES_STYLE = {
    "sockserve-event": ("#d62728", 7), "sockserve-threading": ("#ff9896", 6),
    "sockserve-uring": ("#ff7f0e", 3),
    "sockserve-uring-readiness": ("#ffbb78", 3),
    "sockserve-coroutine": ("#8b0000", 1), "sockserve-coroutine-uring": ("#e6550d", 2),
    "epoll": ("#1f77b4", 5), "io_uring": ("#17becf", 13),
    "libuv": ("#2ca02c", 9), "libuv-tuned": ("#98df8a", 8),
    "libevent": ("#9467bd", 11), "libevent-tuned": ("#c5b0d5", 10),
    "libevent-raw": ("#8c564b", 15), "thread-per-conn": ("#7f7f7f", 4),
    "uvloop": ("#bcbd22", 12), "py-threading": ("#e377c2", 14),
}


def write_chart(names, scenarios, samples, path):
    if not shutil.which("gnuplot"):
        return "gnuplot missing: no chart"
    os.makedirs(OUT, exist_ok=True)
    dat = os.path.join(OUT, "results.dat")
    with open(dat, "w") as f:  # tab-separated: the scenario labels hold spaces
        f.write("\t".join(["x", "scenario"] + names) + "\n")
        for x, sc in enumerate(scenarios):
            label = "%s: %s" % (sc[0], sc[4].split(":")[0])
            vals = []
            for n in names:
                s, _ = summarize(samples, n, sc[0])
                vals.append("%.1f" % s["msgs"] if s else "NaN")
            f.write("\t".join([str(x), label] + vals) + "\n")
    plots = []
    for col, n in enumerate(names, start=3):
        rgb, pt = SERIES_STYLE.get(n, ("#000000", 1))
        plots.append('"%s" using 1:%d:xtic(2) with linespoints lw 2 pt %d ps 1.6 '
                     'lc rgb "%s" title "%s"' % (dat, col, pt, rgb, n))
    gp = os.path.join(OUT, "results.gp")
    with open(gp, "w") as f:
        f.write('set terminal pngcairo size 1400,760 font "sans,10"\n'
                'set output "%s"\n'
                'set title "Echo servers: messages/s (median of the rounds), server on CPU 0, '
                'client on CPU 1"\n'
                'set datafile separator "\\t"\nset datafile missing "NaN"\n'
                'set logscale y\nset grid ytics\nset ylabel "messages/s (log scale)"\n'
                'set xlabel "scenario: connections x messages in flight x message size"\n'
                'set xrange [-0.3:%f]\nset xtics rotate by -12\n'
                'set key outside right top title "server" box\n'
                'plot %s\n' % (path, len(scenarios) - 0.7, ", \\\n     ".join(plots)))
    r = subprocess.run(["gnuplot", gp], capture_output=True)
    return None if r.returncode == 0 else r.stderr.decode(errors="replace")


def chart_from_json(path_json, path_png):
    """Draw the chart again from a results.json, without running anything."""
    with open(path_json) as f:
        data = json.load(f)
    order = list(SERIES_STYLE)
    names = sorted(data["samples"], key=lambda n: order.index(n) if n in order else 99)
    return write_chart(names, [tuple(s) for s in data["scenarios"]], data["samples"], path_png)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sockserve", default=os.path.join(ROOT, "build", "sockserve"))
    ap.add_argument("--quick", action="store_true",
                    help="one round, 1 s windows, 1000 idle connections")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=20.0)
    ap.add_argument("--idle-conns", type=int, default=10000)
    ap.add_argument("--only", help="comma-separated server names to run")
    ap.add_argument("--scenarios", help="comma-separated scenarios (S1,...,S5)")
    ap.add_argument("--chart-only", action="store_true",
                    help="redraw results.png from results.json; run nothing")
    args = ap.parse_args()
    if args.chart_only:
        err = chart_from_json(os.path.join(HERE, "results.json"),
                              os.path.join(HERE, "results.png"))
        sys.exit("chart: " + err if err else None)
    if args.quick:
        args.rounds, args.duration, args.idle_conns = 1, 1.0, 1000

    # 10,000 idle connections need 10,000 descriptors in the server and in the
    # client: raise the soft limit to the hard one; children inherit it.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.idle_conns + 100
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard) if hard != resource.RLIM_INFINITY
                                                    else want, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < want:
        sys.exit("run.sh: RLIMIT_NOFILE hard limit %d is below %d: raise it (ulimit -Hn)"
                 % (hard, want))

    servers = peers(args.sockserve)
    if args.only:
        keep = set(args.only.split(","))
        servers = [s for s in servers if s[0] in keep]
    scenarios = SCENARIOS
    if args.scenarios:
        keep = set(args.scenarios.split(","))
        scenarios = [s for s in SCENARIOS if s[0] in keep]

    skipped = []
    usable = []
    for name, argv, env in servers:
        srv = Server(argv, env, timeout=5)
        ok = srv.address is not None
        err = srv.startup_error
        srv.stop()
        if ok:
            usable.append((name, argv, env))
        else:
            skipped.append("%s (`%s`): does not start here (%s)" % (
                name, " ".join(os.path.basename(a) if i == 0 else a
                               for i, a in enumerate(argv)), err))
            print("skip %s: %s" % (name, err), file=sys.stderr)
    names = [n for n, _, _ in usable]

    samples = {n: {} for n in names}
    total = args.rounds * len(scenarios) * len(usable)
    done = 0
    for rnd in range(args.rounds):
        for scen in scenarios:
            for name, argv, env in usable:
                done += 1
                r = run_cell(args, name, argv, env, scen)
                r["round"] = rnd
                samples[name].setdefault(scen[0], []).append(r)
                print("[%d/%d] round %d %s %-20s %s" % (
                    done, total, rnd + 1, scen[0], name,
                    r.get("error") or "%.0f msg/s  cpu %.2f us/msg  p50 %.0f us"
                    % (r["msgs"], r["cpu"] or 0, r["p50"])), file=sys.stderr)

    idle = {}
    for name, argv, env in usable:
        idle[name] = run_idle(args, name, argv, env, args.idle_conns)
        r = idle[name]
        print("idle %-20s %s" % (name, r.get("error") or "%.0f bytes/conn, cpu %.1f %%"
                                 % (r["per_conn"], r["idle_cpu_pct"])), file=sys.stderr)

    sockperf = run_sockperf(args, usable) if any(n == "epoll" for n in names) else {
        "note": "sockperf not run (needs the epoll peer to check it first)."}

    with open(os.path.join(HERE, "results.json"), "w") as f:
        json.dump({"quick": args.quick, "rounds": args.rounds, "duration": args.duration,
                   "scenarios": SCENARIOS, "samples": samples, "idle": idle,
                   "sockperf": sockperf, "skipped": skipped}, f, indent=1)
    write_markdown(args, names, scenarios, samples, idle, sockperf, skipped,
                   os.path.join(HERE, "results.md"))
    err = write_chart(names, scenarios, samples, os.path.join(HERE, "results.png"))
    if err:
        print("chart: " + err, file=sys.stderr)
    print("wrote bench/results.md, bench/results.json, bench/results.png", file=sys.stderr)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""runner.py — `sockserve rcmd` against OpenSSH on 127.0.0.1, side by side.

Started by bench/rcmd/run.sh (which builds sockserve). In a throwaway
directory it makes a sockserve key, an ssh host key, a user key,
authorized_keys and an sshd_config; starts `sshd -D` and `sockserve
rcmd-server` on 127.0.0.1; then, in rounds, each side in turn (A B A B ...):

  (a) fresh   N commands, one connection (and one client process) each
  (b) session M commands over one connection: rcmd's interactive mode fed
              from a pipe, against an ssh ControlMaster (one `ssh -S` per
              command); plus, for reference, one remote `sh` fed M lines
  (c) bulk    1 GiB of a command's stdout, counted byte by byte

and writes results.md and results.json. Both servers and the temp dir go
away on exit, on failure and on Ctrl-C.
"""

import argparse
import ctypes
import fcntl
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

T0 = time.monotonic()
F_SETPIPE_SZ = 1031
SSHD = "/usr/sbin/sshd"  # sshd re-executes itself: it needs an absolute path
TICK = os.sysconf("SC_CLK_TCK")

# The per-command loop, in the shell a user would write it in: every command
# is a fresh process, its status checked. Both sides pay the same fork+exec.
LOOP = 'n=$1; shift; i=0; while [ "$i" -lt "$n" ]; do "$@" </dev/null >/dev/null || exit $?; ' \
       'i=$((i+1)); done'


def log(msg):
    print(f"[rcmd-bench {time.monotonic() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


def die_with_parent():
    """preexec_fn: the servers get SIGTERM if the runner dies, even by SIGKILL."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_checked(argv, what, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise BenchError(f"{what} failed (exit {p.returncode}): {p.stderr.strip()[-800:]}")
    return p


# ---- CPU accounting --------------------------------------------------------

def proc_stat(pid):
    """(ppid, utime+stime+cutime+cstime in seconds) or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rindex(")") + 2:].split()
    ppid = int(fields[1])
    cpu = sum(int(x) for x in fields[11:15]) / TICK
    return ppid, cpu


def tree_cpu(root):
    """CPU seconds of `root` and every live descendant, plus what they have
    reaped (cutime/cstime). Differences of it over a window count every
    process the tree ran in between, as long as a tree member reaped it —
    true for sshd (connection children, sessions) and rcmd-server (commands)."""
    stats = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st is not None:
                stats[int(name)] = st
    members, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _) in stats.items():
            if ppid == parent and pid not in members:
                members.add(pid)
                frontier.append(pid)
    return sum(stats[p][1] for p in members if p in stats)


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def vm_field(pid, name):
    """A /proc/PID/status field in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return None


# ---- the two servers --------------------------------------------------------

class Rig:
    def __init__(self, sockserve):
        self.sockserve = os.path.abspath(sockserve)
        self.tmp = tempfile.mkdtemp(prefix="rcmd-bench-")
        self.sshd = self.rcmd_server = None
        self.master_pid = None
        self.mux = os.path.join(self.tmp, "mux.sock")

    def path(self, name):
        return os.path.join(self.tmp, name)

    def setup(self):
        log(f"temp dir {self.tmp}")
        run_checked([self.sockserve, "keygen", self.path("rcmd.key")], "sockserve keygen")
        for key in ("ssh_host_ed25519_key", "id_ed25519"):
            run_checked(["ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-C", "rcmd-bench",
                         "-f", self.path(key)], "ssh-keygen")
        shutil.copy(self.path("id_ed25519.pub"), self.path("authorized_keys"))
        os.chmod(self.path("authorized_keys"), 0o600)
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation dir

        self.ssh_port = free_port()
        with open(self.path("sshd_config"), "w") as f:
            f.write(f"""# written by bench/rcmd/runner.py
ListenAddress 127.0.0.1
Port {self.ssh_port}
HostKey {self.path("ssh_host_ed25519_key")}
PidFile {self.path("sshd.pid")}
AuthorizedKeysFile {self.path("authorized_keys")}
PermitRootLogin yes
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
StrictModes no
X11Forwarding no
PrintMotd no
PrintLastLog no
""")
        run_checked([SSHD, "-t", "-f", self.path("sshd_config")], "sshd -t (config check)")
        self.sshd_log = open(self.path("sshd.log"), "wb")
        self.sshd = subprocess.Popen([SSHD, "-D", "-e", "-f", self.path("sshd_config")],
                                     stdin=subprocess.DEVNULL, stdout=self.sshd_log,
                                     stderr=self.sshd_log, preexec_fn=die_with_parent)
        self.rcmd_server, self.rcmd_addr = self.start_rcmd_server("rcmd-server.log")
        self.wait_sshd()
        log(f"sshd (pid {self.sshd.pid}) on 127.0.0.1:{self.ssh_port}, "
            f"rcmd-server (pid {self.rcmd_server.pid}) on {self.rcmd_addr}")

    def start_rcmd_server(self, log_name):
        with open(self.path(log_name), "wb") as logf:
            # port 0: the server tells us the port it bound on its `listening on` line
            p = subprocess.Popen([self.sockserve, "rcmd-server", "--key", self.path("rcmd.key"),
                                  "tcp://127.0.0.1:0"], stdin=subprocess.DEVNULL, stdout=logf,
                                 stderr=logf, preexec_fn=die_with_parent)
        self.rcmd_server = p  # cleanup must see it even if the wait fails
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if p.poll() is not None:
                raise BenchError("rcmd-server exited: " + self.read_log(log_name))
            m = re.search(r"listening on (tcp://\S+)", self.read_log(log_name))
            if m:
                return p, m.group(1)
            time.sleep(0.05)
        raise BenchError("rcmd-server did not say `listening on` within 10 s")

    def wait_sshd(self):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.sshd.poll() is not None:
                raise BenchError("sshd exited: " + self.read_log("sshd.log"))
            try:
                with socket.create_connection(("127.0.0.1", self.ssh_port), timeout=2) as s:
                    if s.recv(64).startswith(b"SSH-2.0-"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise BenchError("sshd did not accept within 10 s: " + self.read_log("sshd.log"))

    def read_log(self, name):
        with open(self.path(name), "rb") as f:
            return f.read().decode(errors="replace")[-2000:]

    # the two clients, as a user would type them
    def rcmd(self, *command):
        argv = [self.sockserve, "rcmd", "--key", self.path("rcmd.key"), self.rcmd_addr]
        return argv + (["--", *command] if command else [])

    def ssh_opts(self):
        return ["-p", str(self.ssh_port), "-i", self.path("id_ed25519"),
                "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                "-o", f"UserKnownHostsFile={self.path('known_hosts')}",
                "-o", "IdentitiesOnly=yes"]

    def ssh(self, *command):
        return ["ssh", *self.ssh_opts(), "127.0.0.1", *command]

    def ssh_mux(self, *command):
        return ["ssh", "-S", self.mux, *self.ssh_opts(), "127.0.0.1", *command]

    def start_master(self):
        # the master forks into the background and keeps the descriptors it was
        # given: a file, never a pipe we would wait on
        with open(self.path("ssh-master.log"), "ab") as logf:
            rc = subprocess.run(["ssh", "-M", "-S", self.mux, "-fN", *self.ssh_opts(),
                                 "127.0.0.1"], stdin=subprocess.DEVNULL, stdout=logf,
                                stderr=logf, timeout=30).returncode
        if rc != 0:
            raise BenchError(f"ssh ControlMaster failed (exit {rc}): "
                             + self.read_log("ssh-master.log"))
        p = subprocess.run(["ssh", "-S", self.mux, "-O", "check", "127.0.0.1"],
                           capture_output=True, text=True, timeout=10)
        m = re.search(r"pid=(\d+)", p.stderr)
        if p.returncode != 0 or not m:
            raise BenchError(f"ssh ControlMaster is not running: {p.stderr.strip()}")
        self.master_pid = int(m.group(1))

    def stop_master(self):
        if self.master_pid is None:
            return
        subprocess.run(["ssh", "-S", self.mux, "-O", "exit", "127.0.0.1"],
                       capture_output=True, timeout=10)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and os.path.exists(f"/proc/{self.master_pid}"):
            time.sleep(0.02)
        if os.path.exists(f"/proc/{self.master_pid}"):
            try:
                os.kill(self.master_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.master_pid = None

    def cleanup(self):
        try:
            self.stop_master()
        except Exception as e:  # keep cleaning up
            log(f"cleanup: ssh master: {e}")
        for p in (self.rcmd_server, self.sshd):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        shutil.rmtree(self.tmp, ignore_errors=True)


# ---- one measurement ----------------------------------------------------------

def timed(argv, server_pid, extra_pid=None, stdin=subprocess.DEVNULL, check=True):
    """Run argv to completion: wall seconds, client CPU s, server-tree CPU s."""
    c0, s0 = children_cpu(), tree_cpu(server_pid)
    x0 = proc_stat(extra_pid)[1] if extra_pid else 0.0
    t = time.monotonic()
    p = subprocess.run(argv, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.monotonic() - t
    s1, c1 = tree_cpu(server_pid), children_cpu()
    x1 = proc_stat(extra_pid)[1] if extra_pid else 0.0
    if check and p.returncode != 0:
        raise BenchError(f"{argv[:3]}... exit {p.returncode}: "
                         f"{p.stderr.decode(errors='replace').strip()[-800:]}")
    return wall, (c1 - c0) + (x1 - x0), s1 - s0


def loop(n, argv):
    return ["/bin/sh", "-c", LOOP, "sh", str(n), *argv]


def bulk(argv, server_pid, nbytes):
    """Run argv, count its stdout; (wall s, bytes, client CPU s, server CPU s)."""
    c0, s0 = children_cpu(), tree_cpu(server_pid)
    t = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        fcntl.fcntl(p.stdout.fileno(), F_SETPIPE_SZ, 1 << 20)
    except OSError:
        pass
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    got = 0
    fd = p.stdout.fileno()
    while True:
        n = os.readv(fd, [view])
        if n == 0:
            break
        got += n
    err = p.stderr.read()
    rc = p.wait(60)
    wall = time.monotonic() - t
    s1, c1 = tree_cpu(server_pid), children_cpu()
    if rc != 0:
        raise BenchError(f"{argv[:3]}... exit {rc}: {err.decode(errors='replace')[-800:]}")
    if got != nbytes:
        raise BenchError(f"{argv[:3]}... delivered {got} bytes, not {nbytes}")
    return wall, got, c1 - c0, s1 - s0


def spread(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "samples": values}


# ---- the benchmark --------------------------------------------------------------

def negotiated(rig):
    """What ssh negotiated (from ssh -v) and what rcmd uses (its protocol doc)."""
    p = subprocess.run(rig.ssh("-v", "true"), capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=30)
    info = {}
    for key, pat in (("kex", r"kex: algorithm: (\S+)"),
                     ("host_key", r"kex: host key algorithm: (\S+)"),
                     ("cipher", r"kex: server->client cipher: (\S+) MAC: (\S+)"),
                     ("auth", r"Authenticated to \S+ \(\[[^]]*\]:\d+\) using \"(\S+)\"")):
        m = re.search(pat, p.stderr)
        if m:
            info[key] = m.group(1) + (f" MAC {m.group(2)}" if key == "cipher" else "")
    return info


def machine_info(sockserve):
    def out(argv):
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return (p.stdout + p.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ssl = "?"
    try:
        ldd = subprocess.run(["ldd", sockserve], capture_output=True, text=True).stdout
        m = re.search(r"libssl\.so\S*", ldd)
        ssl = m.group(0) if m else "?"
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
            "os": out(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
            "openssl": out(["openssl", "version"]), "sockserve_links": ssl,
            "openssh": out(["ssh", "-V"]), "sockserve": out([sockserve, "--version"]),
            "git": out(["git", "rev-parse", "--short", "HEAD"]),
            "loadavg_start": open("/proc/loadavg").read().split()[:3]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sockserve", default="build-bench/sockserve")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--fresh", type=int, default=50, help="commands in (a)")
    ap.add_argument("--session", type=int, default=200, help="commands in (b)")
    ap.add_argument("--bytes", type=int, default=1 << 30, help="output size in (c)")
    ap.add_argument("--quick", action="store_true",
                    help="1 round, 10/50 commands, 64 MiB: checks the script (noise, not results)")
    ap.add_argument("--out", default=None,
                    help="directory for results.md/json (default bench/rcmd, or "
                         "bench/out/rcmd-quick with --quick)")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.fresh, args.session, args.bytes = 1, 10, 50, 64 << 20
    out_dir = args.out or ("bench/out/rcmd-quick" if args.quick else "bench/rcmd")
    if not (1 <= args.rounds <= 20 and 1 <= args.fresh <= 10000 and 1 <= args.session <= 100000
            and 1 <= args.bytes <= 16 << 30):
        ap.error("rounds 1-20, fresh 1-10000, session 1-100000, bytes 1-16 GiB")

    def on_term(sig, _frame):
        raise SystemExit(128 + sig)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    rig = Rig(args.sockserve)
    try:
        return bench(rig, args, out_dir)
    except BenchError as e:
        log(f"FAILED: {e}")
        for name in ("sshd.log", "rcmd-server.log"):
            if os.path.exists(rig.path(name)):
                log(f"--- last of {name}:\n{rig.read_log(name)[-1200:]}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        rig.cleanup()
        log("servers stopped, temp dir removed")


def bench(rig, args, out_dir):
    info = machine_info(rig.sockserve)
    rig.setup()
    srv = rig.rcmd_server.pid

    # sanity, and warm both sides up (page cache, first known_hosts write)
    for argv in (rig.rcmd("echo", "ok"), rig.ssh("echo", "ok")):
        p = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                           timeout=30)
        if p.returncode != 0 or p.stdout != "ok\n":
            raise BenchError(f"sanity `{' '.join(argv[:2])} ... echo ok` gave exit "
                             f"{p.returncode}, {p.stdout!r}, {p.stderr.strip()!r}")
    info["ssh_negotiated"] = negotiated(rig)
    info["rcmd_tls"] = ("TLS 1.3, external PSK with psk_dhe_ke (ECDHE), "
                        "TLS_AES_128_GCM_SHA256 (docs/rcmd-protocol.md §2)")
    log(f"ssh negotiated: {info['ssh_negotiated']}")

    # (b) needs rcmd's interactive mode to run every piped line, one after
    # the other, on one connection: check it once with output we can count.
    lines = rig.path("lines")
    with open(lines, "w") as f:
        f.write("true\n" * args.session)
    with open(rig.path("echo-lines"), "w") as f:
        f.write("".join(f"echo {i}\n" for i in range(args.session)))
    with open(rig.path("echo-lines")) as f:
        p = subprocess.run(rig.rcmd(), stdin=f, capture_output=True, text=True, timeout=120)
    want = "".join(f"{i}\n" for i in range(args.session))
    if p.returncode != 0 or p.stdout != want:
        raise BenchError(f"rcmd interactive mode from a pipe did not run the {args.session} "
                         f"lines in order (exit {p.returncode}, {len(p.stdout)} bytes out)")
    log(f"checked: rcmd's interactive mode runs {args.session} piped lines in order")

    # local baseline: what the shell loop itself costs per command
    base = [timed(loop(args.fresh, ["/bin/true"]), srv)[0] / args.fresh * 1e3
            for _ in range(args.rounds)]

    keys = ["a_rcmd", "a_ssh", "b_rcmd", "b_ssh_mux", "b_ssh_sh", "c_rcmd", "c_ssh"]
    samples = {k: [] for k in keys}
    cpu = {k: [] for k in samples}
    sshd = rig.sshd.pid

    log(f"(a) fresh connection per command: {args.rounds} rounds x {args.fresh} commands each")
    for r in range(args.rounds):
        w, c, s = timed(loop(args.fresh, rig.rcmd("true")), srv)
        samples["a_rcmd"].append(w / args.fresh * 1e3)
        cpu["a_rcmd"].append((c / args.fresh * 1e3, s / args.fresh * 1e3))
        w, c, s = timed(loop(args.fresh, rig.ssh("true")), sshd)
        samples["a_ssh"].append(w / args.fresh * 1e3)
        cpu["a_ssh"].append((c / args.fresh * 1e3, s / args.fresh * 1e3))
        log(f"  round {r + 1}: rcmd {samples['a_rcmd'][-1]:.2f} ms/cmd, "
            f"ssh {samples['a_ssh'][-1]:.2f} ms/cmd")

    log(f"(b) one connection: {args.rounds} rounds x {args.session} commands each")
    for r in range(args.rounds):
        with open(lines) as f:
            w, c, s = timed(rig.rcmd(), srv, stdin=f)
        samples["b_rcmd"].append(args.session / w)
        cpu["b_rcmd"].append((c / args.session * 1e3, s / args.session * 1e3))
        rig.start_master()
        try:
            w, c, s = timed(loop(args.session, rig.ssh_mux("true")), sshd,
                            extra_pid=rig.master_pid)
        finally:
            rig.stop_master()
        samples["b_ssh_mux"].append(args.session / w)
        cpu["b_ssh_mux"].append((c / args.session * 1e3, s / args.session * 1e3))
        with open(lines) as f:
            w, c, s = timed(rig.ssh("sh"), sshd, stdin=f)
        samples["b_ssh_sh"].append(args.session / w)
        cpu["b_ssh_sh"].append((c / args.session * 1e3, s / args.session * 1e3))
        log(f"  round {r + 1}: rcmd {samples['b_rcmd'][-1]:.0f} cmd/s, ssh ControlMaster "
            f"{samples['b_ssh_mux'][-1]:.0f} cmd/s, ssh remote sh {samples['b_ssh_sh'][-1]:.0f} "
            f"cmd/s")

    log(f"(c) bulk: {args.rounds} rounds x {args.bytes} bytes of stdout")
    hwm = {"idle_rss_kib": vm_field(srv, "VmRSS"), "hwm_before_c_kib": vm_field(srv, "VmHWM")}
    head = ["head", "-c", str(args.bytes), "/dev/zero"]
    for r in range(args.rounds):
        w, n, c, s = bulk(rig.rcmd(*head), srv, args.bytes)
        samples["c_rcmd"].append(n / w / 1e6)
        cpu["c_rcmd"].append((c / n * 1e12, s / n * 1e12))  # ms per GB
        w, n, c, s = bulk(rig.ssh(" ".join(head)), sshd, args.bytes)
        samples["c_ssh"].append(n / w / 1e6)
        cpu["c_ssh"].append((c / n * 1e12, s / n * 1e12))
        log(f"  round {r + 1}: rcmd {samples['c_rcmd'][-1]:.0f} MB/s, "
            f"ssh {samples['c_ssh'][-1]:.0f} MB/s")
    hwm["hwm_after_c_kib"] = vm_field(srv, "VmHWM")
    hwm["rss_after_c_kib"] = vm_field(srv, "VmRSS")
    info["loadavg_end"] = open("/proc/loadavg").read().split()[:3]

    result = {
        "machine": info, "params": vars(args) | {"out": out_dir},
        "loop_baseline_ms_per_cmd": spread(base),
        "scenarios": {k: spread(v) for k, v in samples.items()},
        "cpu": {k: {"client": spread([a for a, _ in v]), "server": spread([b for _, b in v])}
                for k, v in cpu.items()},
        "rcmd_server_memory": hwm,
    }
    ratio = {
        "a": ("a_ssh", "a_rcmd"), "b": ("b_rcmd", "b_ssh_mux"), "b_sh": ("b_rcmd", "b_ssh_sh"),
        "c": ("c_rcmd", "c_ssh"),
    }
    result["ratios"] = {}
    for k, (num, den) in ratio.items():
        per_round = [x / y for x, y in zip(samples[num], samples[den])]
        result["ratios"][k] = {"of_medians": statistics.median(samples[num]) /
                               statistics.median(samples[den]), "per_round": spread(per_round)}
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(result, f, indent=1)
    md = render(result, args)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(md)
    print(md)
    log(f"wrote {out_dir}/results.md and results.json")
    return 0


def render(res, args):
    s, r, c, m, mi = (res["scenarios"], res["ratios"], res["cpu"], res["machine"],
                      res["rcmd_server_memory"])

    def cell(key, fmt):
        x = s[key]
        return f"**{x['median']:{fmt}}** [{x['min']:{fmt}}–{x['max']:{fmt}}]"

    def rat(key):
        x = r[key]
        pr = x["per_round"]
        f = ".1f" if x["of_medians"] >= 0.95 else ".2f"
        return f"**{x['of_medians']:{f}}×** [{pr['min']:{f}}–{pr['max']:{f}}]"

    def cpus(key, fmt=".2f"):
        x = c[key]
        return f"{x['client']['median']:{fmt}} + {x['server']['median']:{fmt}}"

    gib = args.bytes / (1 << 30)
    size = f"{gib:g} GiB" if gib >= 1 else f"{args.bytes >> 20} MiB"
    n = args.rounds
    ssh_neg = m.get("ssh_negotiated", {})
    cmd = "bench/rcmd/run.sh" + (" --quick" if args.quick else "")
    lines = [
        "# sockserve rcmd vs OpenSSH on 127.0.0.1",
        "",
        f"Written by `{cmd}` (bench/rcmd/runner.py). Median over {n} round(s) in **bold**, "
        "[min–max] across rounds; each round runs both sides in turn (A B A B …). Ratios "
        "are of the medians, [min–max] of the per-round ratios. Both sides encrypted and "
        "authenticated with their default algorithms.",
        "",
        "| scenario | sockserve rcmd | OpenSSH | ratio | rounds |",
        "|---|---|---|---|---|",
        f"| (a) fresh connection per command, {args.fresh} × `true`: ms per command (lower is "
        f"better) | {cell('a_rcmd', '.2f')} | {cell('a_ssh', '.2f')} | ssh/rcmd "
        f"{rat('a')} | {n} |",
        f"| (b) one connection, {args.session} × `true`: commands/s (higher is better); ssh = "
        f"ControlMaster + `ssh -S` per command | {cell('b_rcmd', '.0f')} | "
        f"{cell('b_ssh_mux', '.0f')} | rcmd/ssh {rat('b')} | {n} |",
        f"| (b′) the same {args.session} lines into one remote `sh` (ssh only; see below) | "
        f"— | {cell('b_ssh_sh', '.0f')} | rcmd/ssh {rat('b_sh')} | {n} |",
        f"| (c) {size} of stdout, every byte counted: MB/s (10⁶ B/s, higher is better) | "
        f"{cell('c_rcmd', '.0f')} | {cell('c_ssh', '.0f')} | rcmd/ssh {rat('c')} | {n} |",
        "",
    ]
    lines += [
        "CPU time, medians, **client + server side** (client: the client processes and the "
        "shell loop, from `getrusage(RUSAGE_CHILDREN)`, plus the ssh ControlMaster process "
        "in (b); server: the whole server process tree — rcmd-server or the sshd listener, "
        "their connection processes and the commands they ran — utime+stime+cutime+cstime "
        "from /proc):",
        "",
        "| scenario | sockserve rcmd | OpenSSH |",
        "|---|---|---|",
        f"| (a) ms CPU per command | {cpus('a_rcmd')} | {cpus('a_ssh')} |",
        f"| (b) ms CPU per command | {cpus('b_rcmd')} | {cpus('b_ssh_mux')} (remote sh: "
        f"{cpus('b_ssh_sh')}) |",
        f"| (c) ms CPU per GB | {cpus('c_rcmd', '.0f')} | {cpus('c_ssh', '.0f')} |",
    ]
    lines += [
        "",
        f"rcmd-server memory (threading model): VmRSS idle {mi['idle_rss_kib']} KiB; peak "
        f"(VmHWM) {mi['hwm_before_c_kib']} KiB before (c), {mi['hwm_after_c_kib']} KiB after "
        f"{n} × {size} of output (VmRSS after: {mi['rss_after_c_kib']} KiB).",
        "",
        "## What runs",
        "",
        "- (a) rcmd: `sockserve rcmd --key KEY tcp://127.0.0.1:PORT -- true`; ssh: "
        "`ssh -p PORT -i USERKEY -o BatchMode=yes -o StrictHostKeyChecking=no "
        "-o UserKnownHostsFile=TMP/known_hosts -o IdentitiesOnly=yes 127.0.0.1 true`. "
        "Both in a `/bin/sh` while-loop, stdin and stdout `/dev/null`, every exit status "
        f"checked. The loop itself (running local `/bin/true`) costs "
        f"{res['loop_baseline_ms_per_cmd']['median']:.2f} ms per command, included on both "
        "sides. The server runs `true` via execve (rcmd, argv mode) or via root's "
        "login shell `bash -c true` (sshd).",
        "- (b) rcmd: one `sockserve rcmd --key KEY ADDR` with no command, its stdin a file "
        f"of {args.session} `true` lines: the interactive mode reads lines plainly when "
        "stdin is not a terminal and runs each through the server's `/bin/sh -c`, one "
        "after the other on one connection, waiting for each EXIT (the runner checks "
        "this first with numbered `echo` lines). Its time includes connecting and "
        "authenticating once. ssh: `ssh -M -S SOCK -fN …` (not timed), then the same "
        "shell loop of `ssh -S SOCK … 127.0.0.1 true`: a new ssh process per command, a "
        "new session (channel + `bash -c true`) on the master's connection.",
        "- (b′) `ssh … 127.0.0.1 sh < lines`: one remote shell reads all the lines; `true` "
        "is a builtin there, so no process per command and no per-command status come "
        "back. It is the fastest way to push commands through ssh, not the same work; "
        "the ratio against it is shown only for completeness.",
        f"- (c) `sockserve rcmd … -- head -c {args.bytes} /dev/zero` and `ssh … "
        f"'head -c {args.bytes} /dev/zero'`, stdout into a pipe (1 MiB) that the runner "
        "reads and counts; a count different from the size fails the run.",
        "",
        "## Security on both sides",
        "",
        f"- rcmd: {m['rcmd_tls']}; key from `sockserve keygen`.",
        f"- ssh (from `ssh -v`): kex {ssh_neg.get('kex', '?')}, host key "
        f"{ssh_neg.get('host_key', '?')}, cipher {ssh_neg.get('cipher', '?')}, user auth "
        f"{ssh_neg.get('auth', '?')}; ed25519 host and user keys.",
        "- sshd: `/usr/sbin/sshd -D -e -f CONFIG` with ListenAddress 127.0.0.1, UsePAM no, "
        "UseDNS no, StrictModes no, PermitRootLogin yes, public key only. Both servers log "
        "to a file at their default level: sshd (INFO) a few lines per connection, "
        "rcmd-server (INFO) a connection line and an audit line per command.",
        "",
        "## Machine",
        "",
        f"- {m['nproc']} CPUs ({m['cpu']}), Linux {m['kernel']}, {m['os']}",
        f"- {m['openssl']} (sockserve links {m['sockserve_links']}); {m['openssh']}",
        f"- {m['sockserve']}, git {m['git']}",
        f"- load average at start {' '.join(m['loadavg_start'])}, at end "
        f"{' '.join(m['loadavg_end'])} (the machine is shared: treat differences under "
        "~25 % as ties, see /work/shared/BENCH-NOTES.md)",
        "",
        "## Reproduce",
        "",
        "```sh",
        f"{cmd}    # from the repository root, as root (sshd needs it)",
        "```",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

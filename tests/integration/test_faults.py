# SPDX-License-Identifier: MIT
"""The fault suite: every failure mode of the hardening catalogue (issue 9),
run against every server model.

Each run starts its own server (port 0 or a fresh unix name), warms it up,
takes a baseline of its footprint (descriptors and RSS of the server and its
children, its threads), inflicts one fault, and then insists that

  - a canary client (a real round trip: echo, a datagram, or an rcmd
    command) is served during the fault where the model can, and after it
    always;
  - no child of the server is left <defunct>, and none died of a signal;
  - descriptors, threads and RSS come back to the baseline (within a small
    tolerance; RSS is looser under the sanitizers, which keep freed memory
    in quarantine);
  - SIGTERM then stops it with exit 0.

The runs are generated as test methods named test_CASE_MODEL. At the end one
line says how many ran: "fault suite: N cases x M models = K runs".

ctest-labels: faults tsan
"""
import os
import pwd
import resource
import select
import selectors
import signal
import socket
import struct
import sys
import threading
import time

import sstest
from sstest import SLOW, SANITIZED

MODELS = ["serial", "threading", "forking", "pool", "prefork", "event", "coroutine"]

# CLI.md "Privileges": without authentication root must name the user to
# serve as (--user); the tests run as whoever they are.
AS_USER = ["--user", "root"] if os.geteuid() == 0 else []

FD_TOLERANCE = 0            # descriptors: back exactly where they were
THREAD_TOLERANCE = 0
# RSS: allocator arenas and caches keep some of what a fault made them take;
# ASan keeps freed memory in quarantine and shadow besides.
RSS_TOLERANCE_KIB = 128 * 1024 if SANITIZED else 4 * 1024
CPU_SPIN_LIMIT_S = 0.2      # of CPU used in 1 s of wall clock while at EMFILE

RUNS = []  # (case, model) of every run that went to its end


# ---- what /proc says ------------------------------------------------------

def proc_stat(pid):
    """Fields of /proc/PID/stat after the command name (index 0 = state)."""
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def family(pid):
    """pid and all its descendants (live or zombie)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(sstest.children_of(p))
    return out


def zombies(pid):
    found = []
    for p in family(pid)[1:]:
        try:
            if proc_stat(p)[0] == "Z":
                found.append(p)
        except OSError:
            pass
    return found


def fds_of(pid):
    """Descriptors held by the server and its live descendants."""
    n = 0
    for p in family(pid):
        try:
            n += len(os.listdir("/proc/%d/fd" % p))
        except OSError:
            pass
    return n


def rss_kib(pid):
    total = 0
    for p in family(pid):
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def threads_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


class TaskCap:
    """A cap on the tasks (threads and processes) of one server and its
    children, for the thread-exhaustion case.

    A pids cgroup counts that tree only. A per-user RLIMIT_NPROC (as
    `--user nobody`) would count every process of that user on the machine,
    and other tests run servers as nobody at the same time: they ate its
    slots, and LeakSanitizer's exit check found no task left for its tracer.
    So: a pids cgroup where one can be made (cgroup v1's pids hierarchy, or
    a delegated cgroup v2 subtree); else RLIMIT_NPROC as nobody, on top of
    what nobody runs already. Not root: no cap (the flood alone)."""

    def __init__(self, n):
        self.path, self.nproc, self.server_args = None, None, []
        if os.geteuid() != 0:
            return
        TaskCap.made += 1
        for parent in self._cgroup_parents():
            self._sweep(parent)
            path = os.path.join(parent, "sockserve-faults-%d-%d" % (os.getpid(), TaskCap.made))
            try:
                os.mkdir(path)
            except OSError:
                continue
            try:
                with open(os.path.join(path, "pids.max"), "w") as f:
                    f.write(str(n))
                self.path = path
                return
            except OSError:
                os.rmdir(path)
        self.server_args = ["--user", "nobody"]
        self.nproc = n + tasks_of_uid(nobody_uid())

    made = 0

    @staticmethod
    def _sweep(parent):
        """Remove caps left by runs that are gone (their last task was still
        exiting when they tried): empty ones whose test process is dead."""
        try:
            names = os.listdir(parent)
        except OSError:
            return
        for name in names:
            parts = name.split("-")
            if not name.startswith("sockserve-faults-") or len(parts) < 3 or not parts[2].isdigit():
                continue
            if os.path.exists("/proc/%s" % parts[2]):
                continue
            try:
                os.rmdir(os.path.join(parent, name))
            except OSError:
                pass

    @staticmethod
    def _cgroup_parents():
        yield "/sys/fs/cgroup/pids"  # v1
        try:  # v2: our own cgroup, if it hands out the pids controller
            with open("/proc/self/cgroup") as f:
                own = [l.split(":", 2)[2].strip() for l in f if l.startswith("0::")]
            if own:
                d = "/sys/fs/cgroup" + own[0]
                with open(os.path.join(d, "cgroup.subtree_control")) as f:
                    if "pids" in f.read().split():
                        yield d
        except OSError:
            pass

    def enter(self):
        """preexec_fn: the server (before exec) puts itself under the cap."""
        if self.path:
            with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        elif self.nproc:
            resource.setrlimit(resource.RLIMIT_NPROC, (self.nproc, self.nproc))

    def lift(self, pid):
        if self.path:
            with open(os.path.join(self.path, "pids.max"), "w") as f:
                f.write("max")
        elif self.nproc:
            inf = resource.RLIM_INFINITY
            resource.prlimit(pid, resource.RLIMIT_NPROC, (inf, inf))

    def refusals(self):
        """How often the cgroup refused a fork or a thread (None: unknown)."""
        if not self.path:
            return None
        with open(os.path.join(self.path, "pids.events")) as f:
            for line in f:
                if line.startswith("max "):
                    return int(line.split()[1])
        return None

    def remove(self):
        """The cgroup goes once its last task has (bounded wait)."""
        if self.path:
            sstest.wait_until(lambda: self._try_rmdir(), 15)

    def _try_rmdir(self):
        try:
            os.rmdir(self.path)
            return True
        except FileNotFoundError:
            return True
        except OSError:
            return False


def nobody_uid():
    return pwd.getpwnam("nobody").pw_uid


def tasks_of_uid(uid):
    """Threads of every process whose real uid is `uid` (what RLIMIT_NPROC
    counts)."""
    n = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/status" % d) as f:
                fields = dict(l.split(":", 1) for l in f if ":" in l)
            if int(fields["Uid"].split()[0]) == uid:
                n += int(fields["Threads"])
        except (OSError, KeyError, ValueError):
            pass
    return n


def cpu_seconds(pid):
    """utime + stime of the server and its live descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in family(pid):
        try:
            f = proc_stat(p)
            total += int(f[11]) + int(f[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / tick


# ---- clients ----------------------------------------------------------------

def recv_exact(s, n):
    got = b""
    while len(got) < n:
        chunk = s.recv(n - len(got))
        if not chunk:
            break
        got += chunk
    return got


def echo_round(address, payload=b"canary", timeout=5.0):
    with sstest.connect(address, timeout=timeout) as s:
        s.sendall(payload)
        return recv_exact(s, len(payload))


def recv_all_of(address, payload, n, timeout=10.0):
    """Send `payload`, read `n` bytes back."""
    with sstest.connect(address, timeout=timeout) as s:
        s.sendall(payload)
        return recv_exact(s, n)


def exchange(s, data, timeout=10.0):
    """Send `data` while reading; after the last byte shut down our sending
    side and read to end of file. Returns what came back."""
    s.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    sent, got, shut = 0, [], False
    deadline = time.monotonic() + timeout * SLOW
    try:
        while time.monotonic() < deadline:
            for key, ev in sel.select(0.2):
                if ev & selectors.EVENT_WRITE and sent < len(data):
                    try:
                        sent += s.send(data[sent:sent + 65536])
                    except BlockingIOError:
                        pass
                if ev & selectors.EVENT_READ:
                    try:
                        chunk = s.recv(65536)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        return b"".join(got)
                    got.append(chunk)
            if sent == len(data) and not shut:
                s.shutdown(socket.SHUT_WR)
                shut = True
                sel.modify(s, selectors.EVENT_READ)
        raise AssertionError("no end of file after %d of %d bytes sent, %d back"
                             % (sent, len(data), sum(map(len, got))))
    finally:
        sel.close()


def clog(s, limit=256 << 20, quiet_s=0.3):
    """Send without reading until the connection takes nothing for `quiet_s`:
    the server is then stuck writing to us. Returns bytes sent."""
    s.setblocking(False)
    sent = 0
    chunk = b"z" * 65536
    deadline = time.monotonic() + 10 * SLOW
    while sent < limit and time.monotonic() < deadline:
        try:
            sent += s.send(chunk)
            continue
        except BlockingIOError:
            pass
        _, w, _ = select.select([], [s], [], quiet_s)
        if not w:
            return sent
    raise AssertionError("the server kept reading %d bytes it cannot answer" % sent)


class Clogger(threading.Thread):
    """A slow reader: keeps sending, never reads, until the connection fails
    (the server gave up on it) or `stop` is set. Bounded in bytes."""

    def __init__(self, sock, limit=256 << 20):
        super().__init__(daemon=True)
        self.s = sock
        self.limit = limit
        self.sent = 0
        self.failed = None
        self.stop = threading.Event()
        sock.setblocking(False)

    def run(self):
        chunk = b"w" * 65536
        while not self.stop.is_set() and self.sent < self.limit:
            try:
                self.sent += self.s.send(chunk)
            except BlockingIOError:
                select.select([], [self.s], [], 0.1)
            except OSError as e:
                self.failed = e
                return


def dgram_round(address, payload=b"canary", source="127.0.0.1", timeout=3.0):
    fam, typ, sa = sstest.sock_for(address)
    with socket.socket(fam, typ) as s:
        if fam == socket.AF_UNIX:
            s.bind("\0" + sstest.abstract_name("canary")[1:])
        else:
            s.bind((source, 0))
        s.settimeout(timeout * SLOW)
        s.sendto(payload, sa)
        return s.recv(1 << 17)


def frame(t, payload=b""):
    return struct.pack(">BI", t, len(payload)) + payload


def read_frame(s):
    hdr = recv_exact(s, 5)
    if len(hdr) < 5:
        return None, b""
    return hdr[0], recv_exact(s, struct.unpack(">I", hdr[1:])[0])


HELLO = frame(1, b"RCMD\x01\x00faults")


def rcmd_round(address, argv=("echo", "canary"), timeout=10.0):
    """One command over the native protocol (no auth): (stdout, exit payload)."""
    with sstest.connect(address, timeout=timeout) as s:
        s.sendall(HELLO)
        t, _ = read_frame(s)
        if t != 1:
            raise AssertionError("no HELLO from the server (got %r)" % t)
        s.sendall(frame(2, b"\x00" + b"".join(a.encode() + b"\0" for a in argv)) + frame(4))
        out = b""
        while True:
            t, body = read_frame(s)
            if t is None:
                raise AssertionError("server closed before EXIT")
            if t == 5:
                out += body
            elif t == 8:
                return out, body


# ---- the suite ----------------------------------------------------------------

class Target:
    """A server under test: its process, address and canary."""

    def __init__(self, proc, address, canary):
        self.p = proc
        self.address = address
        self.canary = canary
        self.base_fds = self.base_rss = self.base_threads = 0


class FaultSuite(sstest.TestCase):

    # -- starting and checking --------------------------------------------

    def begin(self, model, *args, kind="echo", address="tcp://127.0.0.1:0",
              preexec_fn=None, warm=3):
        argv = [kind, "--model", model] + list(args)
        if kind == "rcmd-server":
            argv += ["--insecure-no-auth"] + AS_USER
        p = self.sockserve(*(argv + [address]), preexec_fn=preexec_fn)
        bound = p.wait_listening()
        if kind == "rcmd-server":
            canary = lambda: self.assertEqual(rcmd_round(bound), (b"canary\n", b"\x00\x00"))
        elif bound.startswith(("udp:", "unixgram:")):
            canary = lambda: self.assertEqual(dgram_round(bound), b"canary")
        else:
            canary = lambda: self.assertEqual(echo_round(bound), b"canary")
        t = Target(p, bound, canary)
        for _ in range(warm):  # threads, children, arenas, lazy descriptors
            canary()
        self.settle_baseline(t)
        return t

    def settle_baseline(self, t):
        """The footprint once it stops moving (children of the warm-up end)."""
        last = None
        deadline = time.monotonic() + 5 * SLOW
        while time.monotonic() < deadline:
            now = (fds_of(t.p.pid), len(family(t.p.pid)))
            if now == last and not zombies(t.p.pid):
                break
            last = now
            time.sleep(0.1)
        t.base_fds = fds_of(t.p.pid)
        t.base_rss = rss_kib(t.p.pid)
        t.base_threads = threads_of(t.p.pid)
        t.base_family = len(family(t.p.pid))

    def alive(self, t):
        self.assertIsNone(t.p.p.poll(), "the server died: %r" % t.p.err_lines[-10:])

    def end(self, t, may_lose_workers=False, stop=True):
        """After the fault: alive, serving, back to its footprint, stops cleanly."""
        self.alive(t)
        t.canary()
        self.assertTrue(sstest.wait_until(lambda: not zombies(t.p.pid), 5),
                        "defunct children of the server: %r" % zombies(t.p.pid))
        ok = sstest.wait_until(lambda: fds_of(t.p.pid) <= t.base_fds + FD_TOLERANCE, 10)
        self.assertTrue(ok, "descriptors: %d at the baseline, %d now"
                        % (t.base_fds, fds_of(t.p.pid)))
        ok = sstest.wait_until(lambda: threads_of(t.p.pid) <= t.base_threads + THREAD_TOLERANCE, 5)
        self.assertTrue(ok, "threads: %d at the baseline, %d now"
                        % (t.base_threads, threads_of(t.p.pid)))
        rss = rss_kib(t.p.pid)
        if os.environ.get("SS_FAULTS_VERBOSE"):
            sys.stderr.write("  [%s] fds %d->%d rss %d->%d KiB threads %d\n"
                             % (self.id().rsplit(".", 1)[1], t.base_fds, fds_of(t.p.pid),
                                t.base_rss, rss, threads_of(t.p.pid)))
        self.assertLessEqual(rss, t.base_rss + RSS_TOLERANCE_KIB,
                             "RSS %d KiB, %d at the baseline" % (rss, t.base_rss))
        t.p._pump(0)
        deaths = [l for l in t.p.err_lines if "killed by signal" in l or "restarting" in l]
        if not may_lose_workers:
            self.assertEqual(deaths, [], "a worker or child died")
        if stop:
            self.stop(t)
        else:
            self.no_sanitizer_report(t.p)

    def stop(self, t):
        t.p.signal(signal.SIGTERM)
        self.assertEqual(t.p.wait(timeout=15), 0, t.p.err_lines[-10:])
        self.no_sanitizer_report(t.p)

    def no_sanitizer_report(self, p):
        """A report from a forked child does not change the server's exit
        status: look for it in what they all wrote."""
        reports = [l for l in p.err_lines if "Sanitizer" in l or "runtime error:" in l]
        self.assertEqual(reports, [], "sanitizer report: %r" % p.err_lines[-40:])

    # -- the cases ----------------------------------------------------------

    def fault_emfile(self, model):
        """Descriptors run out: the server does not spin (its CPU time over
        1 s stays low) and serves again once they come back."""
        limit = 64

        def low_nofile():
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        t = self.begin(model, "--handshake-timeout", "30", preexec_fn=low_nofile)
        host, port = sstest.split_inet(t.address)
        held = []
        try:
            for i in range(2 * limit):  # silent ones first, then some that speak
                s = socket.create_connection((host, port), timeout=5 * SLOW)
                if i >= limit:
                    s.sendall(b"x")
                held.append(s)
            # it took what it could: the fault is real
            self.assertTrue(sstest.wait_until(
                lambda: len(os.listdir("/proc/%d/fd" % t.p.pid)) >= limit - 1, 5),
                "the server never ran out: %d descriptors" % fds_of(t.p.pid))
            time.sleep(0.2)
            c0 = cpu_seconds(t.p.pid)
            time.sleep(1.0)
            used = cpu_seconds(t.p.pid) - c0
            if os.environ.get("SS_FAULTS_VERBOSE"):
                sys.stderr.write("  [emfile %s] %.2fs of CPU in 1s\n" % (model, used))
            # not scaled for the sanitizers: a server that spins takes the
            # whole second whatever the build, one that waits next to none
            self.assertLess(used, CPU_SPIN_LIMIT_S,
                            "%.2fs of CPU in 1s at EMFILE: spinning" % used)
            self.alive(t)
        finally:
            for s in held:
                s.close()
        self.end(t)

    def fault_sigpipe(self, model):
        """The peer goes away while the server is writing a big reply to it:
        no SIGPIPE kills the server (or a worker or child of it)."""
        prefix = b"P" * 100000  # every reply is big: the server writes, we do not read
        t = self.begin(model, "--prefix", prefix.decode(), warm=0)
        t.canary = lambda: self.assertEqual(
            recv_all_of(t.address, b"canary", len(prefix) + 6), prefix + b"canary")
        t.canary()
        self.settle_baseline(t)
        for how in ("fin, then reset", "reset"):
            s = sstest.connect(t.address, timeout=10)
            if how == "reset":
                clog(s)  # the server is now blocked writing to us
            else:
                # Small requests, big replies, until the server is stuck
                # writing; then our FIN reaches it (CLOSE_WAIT), and the
                # reset that follows makes its next write EPIPE: the
                # classic SIGPIPE.
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                for _ in range(200):
                    s.send(b"x")
                    time.sleep(0.001)
                s.shutdown(socket.SHUT_WR)
                time.sleep(0.1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            time.sleep(0.1)
            self.alive(t)
            t.canary()
        self.end(t)

    def fault_slow_reader(self, model):
        """Clients that send a lot and never read: --write-timeout frees what
        they hold, while others are served; the server closes its ends while
        the readers still hold theirs."""
        t = self.begin(model, "--write-timeout", "1")
        readers = [Clogger(sstest.connect(t.address, timeout=10)) for _ in range(2)]
        for r in readers:
            r.start()
        try:
            # serial serves one at a time: the canary waits until the write
            # timeout has freed the server of both
            with sstest.connect(t.address, timeout=15) as c:
                c.sendall(b"canary")
                self.assertEqual(recv_exact(c, 6), b"canary")
            ok = sstest.wait_until(lambda: fds_of(t.p.pid) <= t.base_fds + FD_TOLERANCE, 10)
            self.assertTrue(ok, "the server still holds the slow readers: %d fds, %d at the "
                            "baseline" % (fds_of(t.p.pid), t.base_fds))
        finally:
            for r in readers:
                r.stop.set()
                r.join()
                r.s.close()
        self.end(t)

    def fault_half_close(self, model):
        """shutdown(SHUT_WR) after sending: the whole echo, then end of file."""
        t = self.begin(model)
        for size in (1, 5000, 300000):
            data = bytes(i % 251 for i in range(size))
            with sstest.connect(t.address, timeout=10) as s:
                self.assertEqual(exchange(s, data), data, "size %d" % size)
        self.end(t)

    def fault_rst(self, model):
        """Resets (SO_LINGER 0) before, during and after a request."""
        t = self.begin(model)
        host, port = sstest.split_inet(t.address)
        for i in range(30):
            s = socket.create_connection((host, port), timeout=5 * SLOW)
            kind = i % 3
            if kind == 1:
                s.sendall(b"half a request")
            elif kind == 2:
                s.sendall(b"y" * (1 << 20))  # mid-echo
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        self.end(t)

    def fault_slowloris(self, model):
        """Silent connections and ones that trickle a byte now and then and
        never finish: the server serves others and cuts them
        (--handshake-timeout, --idle-timeout)."""
        t = self.begin(model, "--handshake-timeout", "1", "--idle-timeout", "1")
        host, port = sstest.split_inet(t.address)
        silent = [socket.create_connection((host, port), timeout=5 * SLOW) for _ in range(4)]
        trickle = [socket.create_connection((host, port), timeout=5 * SLOW) for _ in range(3)]
        stop = threading.Event()

        def drip():
            for _ in range(6):
                for s in trickle:
                    try:
                        s.send(b"G")
                    except OSError:
                        pass
                if stop.wait(0.2):
                    return

        dripper = threading.Thread(target=drip)
        dripper.start()
        try:
            # serial serves one at a time: the canary waits its turn
            with sstest.connect(t.address, timeout=15) as c:
                c.sendall(b"canary")
                self.assertEqual(recv_exact(c, 6), b"canary")
            dripper.join()
            for s in silent + trickle:  # each one cut by the server
                s.settimeout(15 * SLOW)
                try:
                    while s.recv(4096):
                        pass
                except ConnectionResetError:
                    pass
        finally:
            stop.set()
            dripper.join()
            for s in silent + trickle:
                s.close()
        self.end(t)

    def fault_conn_flood(self, model):
        """Many connects at once (all answered: --max-pending allows them),
        and a burst of connections that vanish at once."""
        t = self.begin(model)
        host, port = sstest.split_inet(t.address)
        served, refused, hung = sstest.burst_clients(host, port, 200, 30)
        self.assertEqual((served, refused, hung), (200, 0, 0))
        for _ in range(100):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex((host, port))
            s.close()
        self.end(t)

    def fault_udp_flood(self, model):
        """A datagram flood to `reply` from several 127.0.0.x sources: each is
        cut to --reply-rate, and another source is answered all the same."""
        t = self.begin(model, "--default", "canary", "--reply-rate", "10", kind="reply",
                       address="udp://127.0.0.1:0")
        host, port = sstest.split_inet(t.address)
        floods = []
        for i in range(4):
            f = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            f.bind(("127.0.0.%d" % (2 + i), 0))
            f.setblocking(False)
            floods.append(f)
        try:
            # bursts that stay below what the socket's receive queue holds,
            # so what the kernel drops says nothing about the server
            for burst in range(12):
                for n in range(25):
                    for f in floods:
                        try:
                            f.sendto(b"flood", (host, port))
                        except BlockingIOError:
                            pass
                if burst == 6:  # a second source, during the flood
                    self.assertEqual(self.udp_canary(t.address), b"canary")
                time.sleep(0.005)
            time.sleep(0.5 * SLOW)
            for f in floods:
                got = 0
                try:
                    while f.recv(100):
                        got += 1
                except BlockingIOError:
                    pass
                # rate 10, burst 10 (prefork: per worker): far below 300
                self.assertGreater(got, 0)
                self.assertLess(got, 150)
            self.assertEqual(self.udp_canary(t.address), b"canary")
        finally:
            for f in floods:
                f.close()
        self.end(t)

    def udp_canary(self, address):
        """A datagram client from 127.0.0.9, which asks again (as UDP clients
        do) if its datagram was lost in a full receive queue."""
        for attempt in range(3):
            try:
                return dgram_round(address, source="127.0.0.9", timeout=1.0)
            except socket.timeout:
                pass
        self.fail("a second source got no answer in 3 tries")

    def fault_huge_length(self, model):
        """rcmd frame headers announcing 4 GiB: refused at the header, before
        any memory is taken; the server goes on."""
        t = self.begin(model, kind="rcmd-server")
        for before_hello, ftype in ((True, 1), (False, 2), (False, 3)):
            with sstest.connect(t.address, timeout=10) as s:
                if not before_hello:
                    s.sendall(HELLO)
                    self.assertEqual(read_frame(s)[0], 1)
                s.sendall(struct.pack(">BI", ftype, 0xFFFFFFFF))
                ty, body = read_frame(s)
                self.assertEqual(ty, 9, "an ERROR frame")
                self.assertEqual(struct.unpack(">H", body[:2])[0], 1, "PROTOCOL")
                s.settimeout(5 * SLOW)
                self.assertEqual(s.recv(100), b"", "closed after the error")
            t.canary()
        self.end(t)

    def fault_zombies(self, model):
        """Children that end in every way (exit, signal, a background
        grandchild, a client that leaves mid-command; prefork: a worker
        killed) leave no <defunct> child of the server."""
        t = self.begin(model, kind="rcmd-server")
        self.assertEqual(rcmd_round(t.address, ("true",))[1], b"\x00\x00")
        self.assertEqual(rcmd_round(t.address, ("sh", "-c", "exit 3"))[1], b"\x00\x03")
        self.assertEqual(rcmd_round(t.address, ("sh", "-c", "kill -9 $$"))[1], b"\x01\x09")
        out, ex = rcmd_round(t.address, ("sh", "-c", "sleep 0.2 >/dev/null 2>&1 & echo bg"))
        self.assertEqual((out, ex), (b"bg\n", b"\x00\x00"))
        with sstest.connect(t.address, timeout=10) as s:  # leaves mid-command
            s.sendall(HELLO)
            self.assertEqual(read_frame(s)[0], 1)
            s.sendall(frame(2, b"\x00sh\x00-c\x00echo up; exec sleep 30\x00"))
            self.assertEqual(read_frame(s), (5, b"up\n"))
        lose = False
        if model == "prefork":
            workers = sstest.children_of(t.p.pid)
            self.assertTrue(workers)
            os.kill(workers[0], signal.SIGKILL)
            lose = True
            self.assertTrue(sstest.wait_until(
                lambda: workers[0] not in family(t.p.pid) and
                len(sstest.children_of(t.p.pid)) == len(workers), 10),
                "the killed worker was not reaped and replaced")
        time.sleep(0.3)  # the background grandchild ends
        self.end(t, may_lose_workers=lose)

    def fault_thread_exhaustion(self, model):
        """Many concurrent connections under a cap on the server's tasks
        (threads and processes), so threads and children run out: every
        client is answered or cleanly closed, none lost (a task per
        connection: all answered, the one that met the cap waits for a
        task); once they are gone the server serves again, same cap."""
        cap = TaskCap(24)
        try:
            t = self.begin(model, *cap.server_args, preexec_fn=cap.enter)
            host, port = sstest.split_inet(t.address)
            answered, refused, lost = sstest.burst_clients(host, port, 150, 30, hold_s=1.0)
            self.assertEqual(lost, 0, "answered %d refused %d lost %d"
                             % (answered, refused, lost))
            self.assertGreater(answered, 0)
            if model in ("threading", "forking") and cap.refusals() is not None:
                # A task per connection: the cap must have bitten, and the
                # request that met it waited for a task instead of being
                # dropped, so no client was turned away.
                self.assertGreater(cap.refusals(), 0, "the cap never refused a task")
                self.assertEqual(refused, 0, "clients dropped for want of a task")
                t.p._pump(0)
                self.assertTrue(any("it waits for one to end" in l for l in t.p.err_lines),
                                t.p.err_lines[-10:])
            # A fork or a thread the cap refused closes that client (it
            # counts as refused above); children and threads that served the
            # others take a while to go, under TSan longer. The canary in
            # end() comes once they have: it must then be served, the cap
            # still on.
            self.assertTrue(sstest.wait_until(
                lambda: len(family(t.p.pid)) <= t.base_family
                and threads_of(t.p.pid) <= t.base_threads, 10),
                "tasks never came back: %d processes, %d threads"
                % (len(family(t.p.pid)), threads_of(t.p.pid)))
            self.end(t, may_lose_workers=True, stop=False)
            # The sanitizers' exit check (LeakSanitizer's tracer) needs a
            # task of its own: lift the cap only for the stop.
            cap.lift(t.p.pid)
            self.stop(t)
        finally:
            cap.remove()

    def fault_stale_unix(self, model):
        """A leftover socket file at the path: the server starts. A live one:
        a second server is refused and the first goes on."""
        d = sstest.temp_dir()
        path = os.path.join(d, "s.sock")
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(path)
        stale.close()  # the file stays; nobody listens
        t = self.begin(model, address="unix:" + path)
        r = self.run_cli("echo", "--model", model, "unix:" + path)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertRegex(r.stderr.decode(), r"in use")
        self.assertTrue(os.path.exists(path))
        self.end(t)
        self.assertFalse(os.path.exists(path), "socket file left after a clean exit")

    def fault_udp_truncation(self, model):
        """Datagrams at and past the largest packet: answered whole up to it,
        cut (never overflowed) past it; the next one is unaffected."""
        t = self.begin(model, address="unixgram:" + sstest.abstract_name("trunc"))
        big = bytes(i % 253 for i in range(100000))
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.bind("\0" + sstest.abstract_name("truncc")[1:])
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            s.settimeout(3 * SLOW)
            _, _, sa = sstest.sock_for(t.address)
            s.sendto(big, sa)
            try:
                answer = s.recv(1 << 18)
                self.assertLessEqual(len(answer), 65536)
                self.assertEqual(answer, big[:len(answer)])
            except socket.timeout:
                pass  # dropped: also bounded
            s.sendto(b"ping", sa)
            self.assertEqual(s.recv(1 << 18), b"ping")
        self.end(t)
        # UDP: the largest datagram IPv4 carries fits, and comes back whole
        u = self.begin(model, address="udp://127.0.0.1:0")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(3 * SLOW)
            s.sendto(big[:65507], sstest.split_inet(u.address))
            self.assertEqual(s.recv(1 << 17), big[:65507])
        self.end(u)

    def fault_drain(self, model):
        """SIGTERM with requests in flight: they are served on, the one left
        idle is cut at --drain-timeout, and the server exits 0 with no child
        left behind."""
        t = self.begin(model, "--drain-timeout", "1.5")
        n = 1 if model == "serial" else 2
        flying = []
        for i in range(n):
            c = sstest.connect(t.address, timeout=10)
            c.sendall(b"a%d" % i)
            self.assertEqual(recv_exact(c, 2), b"a%d" % i)
            flying.append(c)
        kids = family(t.p.pid)[1:]
        t0 = time.monotonic()
        t.p.signal(signal.SIGTERM)
        time.sleep(0.2 * SLOW)
        for i, c in enumerate(flying):  # served on while draining
            c.sendall(b"b%d" % i)
            self.assertEqual(recv_exact(c, 2), b"b%d" % i)
        flying[0].close()  # one ends by itself, the other stays idle
        self.assertEqual(t.p.wait(timeout=10), 0, t.p.err_lines[-10:])
        self.assertLess(time.monotonic() - t0, (1.5 + 3) * SLOW)
        for c in flying[1:]:
            c.settimeout(5 * SLOW)
            try:
                self.assertEqual(c.recv(10), b"", "cut by the drain")
            except ConnectionResetError:
                pass
            c.close()
        left = [k for k in kids if os.path.exists("/proc/%d" % k)]
        self.assertEqual(left, [], "children outlived the server")
        self.no_sanitizer_report(t.p)

    def fault_fd_leak(self, model):
        """Rounds of every way a connection can end: descriptors back to the
        baseline exactly after each round."""
        t = self.begin(model)
        host, port = sstest.split_inet(t.address)
        for rnd in range(3):
            for i in range(25):
                s = socket.create_connection((host, port), timeout=5 * SLOW)
                way = i % 5
                if way == 0:    # a whole request
                    s.sendall(b"q")
                    self.assertEqual(recv_exact(s, 1), b"q")
                elif way == 1:  # gone before the answer
                    s.sendall(b"gone")
                elif way == 2:  # reset after a request
                    s.sendall(b"r")
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                elif way == 3:  # half-close
                    s.sendall(b"h")
                    s.shutdown(socket.SHUT_WR)
                    self.assertEqual(recv_exact(s, 1), b"h")
                # way 4: silent, then gone
                s.close()
            ok = sstest.wait_until(lambda: fds_of(t.p.pid) <= t.base_fds, 10)
            self.assertTrue(ok, "round %d: %d descriptors, %d at the baseline"
                            % (rnd, fds_of(t.p.pid), t.base_fds))
        self.end(t)


CASES = [name[len("fault_"):] for name in FaultSuite.__dict__ if name.startswith("fault_")]


def _make(case, model):
    def run(self):
        t0 = time.monotonic()
        getattr(self, "fault_" + case)(model)
        RUNS.append((case, model))
        if os.environ.get("SS_FAULTS_VERBOSE"):
            sys.stderr.write("  [%s %s] %.2fs\n" % (case, model, time.monotonic() - t0))
    run.__doc__ = "%s under %s: %s" % (case, model,
                                       (getattr(FaultSuite, "fault_" + case).__doc__ or "")
                                       .strip().split("\n")[0])
    return run


for _case in CASES:
    for _model in MODELS:
        setattr(FaultSuite, "test_%s_%s" % (_case, _model), _make(_case, _model))


def tearDownModule():
    cases = sorted({c for c, _ in RUNS})
    models = sorted({m for _, m in RUNS})
    sys.stderr.write("fault suite: %d cases x %d models = %d runs\n"
                     % (len(cases), len(models), len(RUNS)))


if __name__ == "__main__":
    sstest.main()

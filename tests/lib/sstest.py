# SPDX-License-Identifier: MIT
"""sstest — helpers for sockserve's integration tests (real processes, real sockets).

Every server is started on port 0 (or a fresh unix name) and its address read
from its `sockserve: listening on ADDRESS` line; every wait is bounded; every
process started is killed at the end of its test.
"""
import errno
import os
import re
import select
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

SOCKSERVE = os.environ.get("SOCKSERVE") or os.path.join(
    os.environ.get("SS_BUILD_DIR", "build"), "sockserve")
BUILD_DIR = os.environ.get("SS_BUILD_DIR", os.path.dirname(SOCKSERVE))
SOURCE_DIR = os.environ.get("SS_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
SEED_DIR = os.path.join(SOURCE_DIR, "tests", "seed")
PYTHON = sys.executable
SANITIZED = bool(os.environ.get("SS_SANITIZE"))
# Sanitized builds are several times slower: scale every wait by this.
SLOW = 4.0 if SANITIZED else 1.0

LISTEN_RE = re.compile(r"sockserve: listening on (\S+)")


def seed(name):
    return os.path.join(SEED_DIR, name)


def free_port(kind=socket.SOCK_STREAM):
    """A port that was free a moment ago (only for peers that cannot take port 0)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def abstract_name(tag="t"):
    return "@sockserve-test-%d-%s-%d" % (os.getpid(), tag, time.monotonic_ns() % 10**9)


def temp_dir():
    return tempfile.mkdtemp(prefix="sockserve-test-")


def split_inet(address):
    """'tcp://127.0.0.1:4000' -> ('127.0.0.1', 4000); handles [::1]."""
    rest = address.split("://", 1)[1]
    host, port = rest.rsplit(":", 1)
    return host.strip("[]"), int(port)


def sock_for(address):
    """(family, type, sockaddr) a Python socket needs to reach a sockserve address."""
    if address.startswith(("tcp://", "udp://")):
        host, port = split_inet(address)
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        typ = socket.SOCK_STREAM if address.startswith("tcp") else socket.SOCK_DGRAM
        return fam, typ, (host, port)
    scheme, path = address.split(":", 1)
    typ = {"unix": socket.SOCK_STREAM, "unixgram": socket.SOCK_DGRAM,
           "seqpacket": socket.SOCK_SEQPACKET}[scheme]
    if path.startswith("@"):
        path = "\0" + path[1:]
    return socket.AF_UNIX, typ, path


def connect(address, timeout=5.0):
    fam, typ, sa = sock_for(address)
    s = socket.socket(fam, typ)
    s.settimeout(timeout * SLOW)
    s.connect(sa)
    return s


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def children_of(pid):
    """Direct children pids of `pid` (from /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append(int(d))
        except (OSError, IndexError, ValueError):
            pass
    return out


def wait_until(pred, timeout=5.0, interval=0.02):
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return pred()

def burst_clients(host, port, n, deadline_s, hold_s=0.0):
    """n TCP connections opened at once; each sends one message and waits
    for its echo. Answers that come in the first `hold_s` seconds are held
    open (so threads and children pile up at once) and let go after it;
    later ones close as soon as they are answered. An answer that is not
    the message is a bug (AssertionError), never a refusal.
    Returns (answered, refused, lost): refused = reset or closed before its
    answer, lost = still waiting at the deadline (deadline_s scaled by SLOW).
    """
    sel = selectors.DefaultSelector()
    state, held = {}, []
    for i in range(n):
        s = socket.socket()
        s.setblocking(False)
        if s.connect_ex((host, port)) not in (0, errno.EINPROGRESS):
            s.close()
            state[i] = "refused"
            continue
        sel.register(s, selectors.EVENT_WRITE, (i, b"m%05d" % i))
        state[i] = "connecting"
    t0 = time.monotonic()
    deadline = t0 + deadline_s * SLOW
    while any(v in ("connecting", "waiting") for v in state.values()):
        now = time.monotonic()
        if now > deadline:
            break
        if held and now - t0 > hold_s:
            for s in held:
                s.close()
            held = []
        for key, _ in sel.select(min(deadline - now, 0.1)):
            s, (i, msg) = key.fileobj, key.data
            try:
                if state[i] == "connecting":
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        raise OSError(err, "connect")
                    s.send(msg)
                    state[i] = "waiting"
                    sel.modify(s, selectors.EVENT_READ, key.data)
                    continue
                data = s.recv(100)
                if not data:
                    raise OSError(0, "closed")
                if data != msg:
                    raise AssertionError("client %d got %r, sent %r" % (i, data, msg))
                state[i] = "answered"
                sel.unregister(s)
                if time.monotonic() - t0 <= hold_s:
                    held.append(s)
                else:
                    s.close()
            except OSError:
                state[i] = "refused"
                sel.unregister(s)
                s.close()
    for s in held:
        s.close()
    lost = 0
    for key in list(sel.get_map().values()):
        key.fileobj.close()
        lost += 1
    sel.close()
    vals = list(state.values())
    return vals.count("answered"), vals.count("refused"), lost



# SS_BACKEND=epoll|io_uring (ctest's *.epoll / *.io_uring entries): every
# sockserve server started with --model event or coroutine gets --backend,
# unless the test names one itself. The library reads the same variable for
# servers started otherwise (docs/backends.md).
BACKEND = os.environ.get("SS_BACKEND", "")


def with_backend(argv):
    argv = list(argv)
    if not BACKEND or not argv or argv[0] != SOCKSERVE:
        return argv
    if any(a == "--backend" or a.startswith("--backend=") for a in argv):
        return argv
    for i, a in enumerate(argv):
        model = argv[i + 1] if a == "--model" and i + 1 < len(argv) else \
            a[len("--model="):] if a.startswith("--model=") else None
        if model in ("event", "coroutine"):
            at = i + (2 if a == "--model" else 1)
            return argv[:at] + ["--backend", BACKEND] + argv[at:]
    return argv


class Proc:
    """A process under test with its stderr read line by line, bounded waits."""

    def __init__(self, argv, stdin=subprocess.DEVNULL, env=None, cwd=None, pass_fds=(),
                 preexec_fn=None):
        argv = with_backend(argv)
        self.argv = argv
        self.p = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env, cwd=cwd,
                                  pass_fds=pass_fds, start_new_session=True,
                                  preexec_fn=preexec_fn)
        self.err_lines = []
        self._err_buf = b""
        self.out_data = b""

    @property
    def pid(self):
        return self.p.pid

    def _pump(self, timeout):
        fds = [f for f in (self.p.stderr, self.p.stdout) if f and not f.closed]
        if not fds:
            return False
        r, _, _ = select.select(fds, [], [], timeout)
        got = False
        for f in r:
            chunk = os.read(f.fileno(), 65536)
            if not chunk:
                f.close()
                continue
            got = True
            if f is self.p.stderr:
                self._err_buf += chunk
                while b"\n" in self._err_buf:
                    line, self._err_buf = self._err_buf.split(b"\n", 1)
                    self.err_lines.append(line.decode("utf-8", "replace"))
            else:
                self.out_data += chunk
        return got

    def wait_stderr(self, regex, timeout=10.0):
        """Wait for a stderr line matching `regex`; returns the match."""
        rx = re.compile(regex)
        deadline = time.monotonic() + timeout * SLOW
        seen = 0
        while True:
            for line in self.err_lines[seen:]:
                m = rx.search(line)
                if m:
                    return m
            seen = len(self.err_lines)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no stderr line matching %r from %s; got %r"
                                     % (regex, self.argv, self.err_lines))
            if not self._pump(min(left, 0.2)) and self.p.poll() is not None:
                self._pump(0)
                for line in self.err_lines[seen:]:
                    m = rx.search(line)
                    if m:
                        return m
                raise AssertionError("%s exited %s before printing %r; stderr %r"
                                     % (self.argv, self.p.returncode, regex, self.err_lines))

    def wait_listening(self, timeout=10.0):
        return self.wait_stderr(LISTEN_RE.pattern, timeout).group(1)

    def wait_out(self, needle, timeout=10.0):
        """Wait until stdout contains `needle` (bytes)."""
        deadline = time.monotonic() + timeout * SLOW
        while needle not in self.out_data:
            left = deadline - time.monotonic()
            if left <= 0 or (not self._pump(min(left, 0.2)) and self.p.poll() is not None
                             and not self._pump(0)):
                if needle in self.out_data:
                    break
                raise AssertionError("stdout of %s lacks %r; got %r"
                                     % (self.argv, needle, self.out_data[-2000:]))
        return self.out_data

    def write(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def close_stdin(self):
        self.p.stdin.close()

    def wait(self, timeout=10.0):
        """Wait for exit, collecting output; returns the exit code."""
        deadline = time.monotonic() + timeout * SLOW
        while self.p.poll() is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("%s did not exit within %.1fs; stderr %r"
                                     % (self.argv, timeout * SLOW, self.err_lines))
            self._pump(min(left, 0.1))
        while self._pump(0):
            pass
        if self._err_buf:
            self.err_lines.append(self._err_buf.decode("utf-8", "replace"))
            self._err_buf = b""
        return self.p.returncode

    def signal(self, sig):
        if self.p.poll() is None:
            os.kill(self.p.pid, sig)

    def kill(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.p.wait()
        for f in (self.p.stdin, self.p.stdout, self.p.stderr):
            if f and not f.closed:
                f.close()


class TestCase(unittest.TestCase):
    """Kills every Proc it started when the test ends."""

    def setUp(self):
        self._procs = []

    def tearDown(self):
        for p in self._procs:
            p.kill()

    def start(self, argv, **kw):
        p = Proc(argv, **kw)
        self._procs.append(p)
        return p

    def sockserve(self, *args, **kw):
        return self.start([SOCKSERVE] + list(args), **kw)

    def server(self, *args, **kw):
        """Start `sockserve ARGS...` and return (proc, bound address)."""
        p = self.sockserve(*args, **kw)
        return p, p.wait_listening()

    def run_cli(self, *args, input=b"", timeout=20.0):
        """Run sockserve to completion; returns CompletedProcess."""
        return subprocess.run([SOCKSERVE] + list(args), input=input,
                              capture_output=True, timeout=timeout * SLOW)

    def seed_py(self, name, *args, **kw):
        return self.start([PYTHON, "-u", seed(name)] + [str(a) for a in args],
                          stdin=subprocess.PIPE, **kw)


def main():
    unittest.main(verbosity=2)

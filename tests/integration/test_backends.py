# SPDX-License-Identifier: MIT
"""--backend epoll|io_uring|auto under --model event: each backend is the one
the loops run on (their descriptors in /proc say so), and auto falls back to
epoll, saying so in one log line, when io_uring is refused. The refusal is
real: a seccomp filter, installed in the server's process before it starts,
makes io_uring_setup fail with EPERM (a container policy) or ENOSYS (a kernel
without it). /proc/sys/kernel/io_uring_disabled is machine-wide, so it is
left alone: other programs share this machine.

ctest-labels: backend
"""
import ctypes
import os
import platform
import socket
import unittest

import sstest

IO_URING_SETUP = 425  # the same number on x86-64 and aarch64
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}.get(platform.machine())
FALLBACK = r"io_uring is not available \((.*)\): using epoll"


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                ("k", ctypes.c_uint)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


def deny_io_uring(errno_value):
    """A preexec_fn: from exec on, io_uring_setup fails with errno_value."""
    ld_abs, jeq, ret = 0x20, 0x15, 0x06
    prog = (SockFilter * 6)(
        SockFilter(ld_abs, 0, 0, 4),               # arch
        SockFilter(jeq, 0, 3, AUDIT_ARCH),          # another arch: allow
        SockFilter(ld_abs, 0, 0, 0),                # syscall number
        SockFilter(jeq, 0, 1, IO_URING_SETUP),
        SockFilter(ret, 0, 0, 0x00050000 | errno_value),  # SECCOMP_RET_ERRNO
        SockFilter(ret, 0, 0, 0x7FFF0000))          # SECCOMP_RET_ALLOW
    fprog = SockFprog(len(prog), prog)
    libc = ctypes.CDLL(None, use_errno=True)

    def install():
        if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
            os._exit(120)
        if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, FILTER
            os._exit(121)
    return install


def ring_kinds(pid):
    """The anon-inode kinds among a process's descriptors (io_uring, eventpoll)."""
    kinds = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("anon_inode:"):
            kinds.add(target[len("anon_inode:"):].strip("[]"))
    return kinds


def echo_once(address):
    with sstest.connect(address) as s:
        s.sendall(b"ping")
        return s.recv(100)


@unittest.skipUnless(AUDIT_ARCH, "the seccomp filter knows x86-64 and aarch64 only")
class Backends(sstest.TestCase):

    def serve(self, *args, **kw):
        return self.server("echo", "--model", "event", "--workers", "2", *args,
                           "tcp://127.0.0.1:0", **kw)

    def test_io_uring_backend_runs_on_a_ring(self):
        p, address = self.serve("--backend", "io_uring")
        self.assertEqual(echo_once(address), b"ping")
        self.assertIn("io_uring", ring_kinds(p.pid))
        self.assertFalse([l for l in p.err_lines if "using epoll" in l], p.err_lines)

    def test_epoll_backend_makes_no_ring(self):
        p, address = self.serve("--backend", "epoll")
        self.assertEqual(echo_once(address), b"ping")
        kinds = ring_kinds(p.pid)
        self.assertNotIn("io_uring", kinds)
        self.assertIn("eventpoll", kinds)

    def test_auto_takes_io_uring_when_allowed(self):
        env = dict(os.environ)
        env.pop("SS_BACKEND", None)
        p, address = self.server("echo", "--model", "event", "--backend", "auto",
                                 "tcp://127.0.0.1:0", env=env)
        self.assertEqual(echo_once(address), b"ping")
        self.assertIn("io_uring", ring_kinds(p.pid))

    def check_fallback(self, errno_value, text):
        env = dict(os.environ)
        env.pop("SS_BACKEND", None)  # auto itself decides
        p, address = self.server("echo", "--model", "event", "--workers", "2",
                                 "tcp://127.0.0.1:0", env=env,
                                 preexec_fn=deny_io_uring(errno_value))
        m = p.wait_stderr(FALLBACK)
        self.assertIn(text, m.group(1))
        self.assertEqual(echo_once(address), b"ping")
        self.assertEqual(echo_once(address), b"ping")
        kinds = ring_kinds(p.pid)
        self.assertNotIn("io_uring", kinds)
        self.assertIn("eventpoll", kinds)
        p.signal(15)
        self.assertEqual(p.wait(), 0, p.err_lines)
        said = [l for l in p.err_lines if "using epoll" in l]
        self.assertEqual(len(said), 1, p.err_lines)  # once, not once per loop

    def test_auto_falls_back_when_a_policy_refuses_io_uring(self):
        self.check_fallback(1, "Operation not permitted")  # EPERM

    def test_auto_falls_back_on_a_kernel_without_io_uring(self):
        self.check_fallback(38, "Function not implemented")  # ENOSYS

    def test_io_uring_refused_is_a_runtime_error(self):
        p = self.sockserve("echo", "--model", "event", "--backend", "io_uring",
                           "tcp://127.0.0.1:0", preexec_fn=deny_io_uring(1))
        self.assertEqual(p.wait(), 1, p.err_lines)
        text = "\n".join(p.err_lines)
        self.assertIn("cannot use the io_uring backend", text)
        self.assertIn("Operation not permitted", text)
        self.assertNotIn("listening on", text)

    def test_bad_backend_is_a_usage_error(self):
        r = self.run_cli("echo", "--model", "event", "--backend", "kqueue", "tcp://127.0.0.1:0")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"--backend", r.stderr)


if __name__ == "__main__":
    sstest.main()

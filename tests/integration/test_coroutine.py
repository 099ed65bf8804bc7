# SPDX-License-Identifier: MIT
"""--model coroutine as a whole server: idle cost and defaults.

The server costs no CPU while its connections are idle.
ctest-labels: coroutine tsan

Issue 12 asks for "0 % CPU while idle". Each connection below is answered
once, so its coroutine is parked in a read on the connection; the server
must then sleep in the kernel. Its utime+stime (/proc/PID/stat) over one
second must stay near 0: a bound on idleness, not a speed assertion (a
spinning loop burns ~100 ticks a second, an idle one 0; the bound leaves
room for a tick of noise on a shared machine).

Run on auto (io_uring where the kernel allows it) and, by ctest, again
with SS_BACKEND=epoll and SS_BACKEND=io_uring (integration.coroutine.*): the
io_uring backend's readiness is level-triggered whatever the flags say, and
a scheduler that registered the connection for both directions for good
spun there on EPOLLOUT (97 % CPU with idle connections).

Without --workers the server runs one loop per CPU it may run on
(sched_getaffinity), as the event model does.
"""
import os
import time

import sstest

CONNS = 50
IDLE_S = 1.0
# Clock ticks (1/100 s) the server may use in IDLE_S: noise, not work.
MAX_IDLE_TICKS = 5


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14, 15)


class CoroutineServerTest(sstest.TestCase):
    def idle_ticks(self, srv):
        time.sleep(0.2)  # the loops' last turn
        c0 = cpu_ticks(srv.pid)
        time.sleep(IDLE_S)
        return cpu_ticks(srv.pid) - c0

    def answered(self, s, data):
        s.sendall(data)
        got = b""
        while len(got) < len(data):
            chunk = s.recv(len(data) - len(got))
            self.assertTrue(chunk, "the server closed the connection")
            got += chunk
        self.assertEqual(got, data)

    def test_idle_connections_cost_no_cpu(self):
        srv, address = self.server("echo", "--model", "coroutine", "-q", "tcp://127.0.0.1:0")
        socks = []
        try:
            for i in range(CONNS):
                s = sstest.connect(address)
                socks.append(s)
                self.answered(s, b"idle %d\n" % i)
            ticks = self.idle_ticks(srv)
            self.assertLessEqual(ticks, MAX_IDLE_TICKS,
                                 "%d idle connections: the server used %d ticks (1/%d s) of "
                                 "CPU in %.1f s" % (CONNS, ticks, os.sysconf("SC_CLK_TCK"),
                                                    IDLE_S))
            # still serving: the parked coroutines wake for their data
            for i, s in enumerate(socks):
                self.answered(s, b"again %d\n" % i)
        finally:
            for s in socks:
                s.close()
        srv.signal(15)
        self.assertEqual(srv.wait(timeout=20), 0, srv.err_lines)

    def thread_count(self, cpus):
        def pin():
            os.sched_setaffinity(0, cpus)
        srv, _ = self.server("echo", "--model", "coroutine", "-q", "tcp://127.0.0.1:0",
                             preexec_fn=pin)
        n = len(os.listdir("/proc/%d/task" % srv.pid))
        srv.signal(15)
        self.assertEqual(srv.wait(timeout=20), 0, srv.err_lines)
        return n

    def test_default_loops_are_the_usable_cpus(self):
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            self.skipTest("one usable CPU: nothing to tell apart")
        one, two = self.thread_count({cpus[0]}), self.thread_count(set(cpus[:2]))
        self.assertEqual(two - one, 1, "threads with 1 CPU: %d, with 2 CPUs: %d" % (one, two))


if __name__ == "__main__":
    sstest.main()

# SPDX-License-Identifier: MIT
"""`make deb` builds three Debian packages with CPack (sockserve, libsockserve0,
libsockserve-dev): their files and control fields (dpkg-deb -c / -f) are what
cmake/packaging.cmake promises, dependencies come from dpkg-shlibdeps, and the
three install with `dpkg --root` into a scratch root whose `sockserve --version`
runs and whose -dev files build a program against its libsockserve0.

ctest-labels: packaging
"""
import os
import re
import shutil
import socket
import subprocess
import unittest

import sstest
from sstest import SLOW

with open(os.path.join(sstest.SOURCE_DIR, "CMakeLists.txt")) as _f:
    VERSION = re.search(r"project\(sockserve VERSION (\S+)", _f.read()).group(1)

# Dials a local port, sends "ping", prints the library's version.
HELLO_C = r"""#include <sockserve.h>
#include <stdio.h>
int main(void)
{
    ss_sock s;
    ss_error e;
    if (ss_dial(&s, "tcp://127.0.0.1:PORT", 5.0, &e) < 0)
        return fprintf(stderr, "%s\n", e.msg), 1;
    ss_sock_sendall(&s, "ping", 4);
    ss_sock_close(&s);
    puts(ss_version());
    return 0;
}
"""
TOOLS = ("dpkg", "dpkg-deb", "dpkg-shlibdeps", "dpkg-architecture", "make", "cc",
         "pkg-config")


def clean_make_env():
    """The environment without the make that runs ctest (make test-asan passes
    CMAKE_ARGS=-DSS_SANITIZE=... down through MAKEFLAGS and, as a command-line
    variable, the environment): this make is the user's."""
    return {k: v for k, v in os.environ.items()
            if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES",
                         "CMAKE_ARGS", "CTEST_ARGS", "BUILD")}


def run(argv, env=None, timeout=240):
    r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout * SLOW)
    if r.returncode != 0:
        raise AssertionError("%s exited %d\n%s%s" % (argv, r.returncode, r.stdout, r.stderr))
    return r.stdout


@unittest.skipUnless(all(shutil.which(t) for t in TOOLS),
                     "needs %s (scripts/install-deps.sh installs them)" % ", ".join(TOOLS))
class DebianPackages(sstest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = sstest.temp_dir()
        cls.build = os.path.join(cls.tmp, "build-deb")
        cls.make_out = run(["make", "-C", sstest.SOURCE_DIR, "--no-print-directory", "deb",
                            "DEB_BUILD=" + cls.build, "JOBS=2"], env=clean_make_env(),
                           timeout=400)
        cls.arch = run(["dpkg", "--print-architecture"]).strip()
        cls.multiarch = run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"]).strip()
        cls.debs = {}
        for name in ("sockserve", "libsockserve0", "libsockserve-dev"):
            cls.debs[name] = os.path.join(cls.build, "%s_%s_%s.deb" % (name, VERSION, cls.arch))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, True)

    def files(self, name):
        """Paths in a package (dpkg-deb -c), without the leading '.'."""
        out = run(["dpkg-deb", "-c", self.debs[name]])
        paths = set()
        for line in out.splitlines():
            path = line.split(None, 5)[5].split(" -> ")[0]
            paths.add(path[1:].rstrip("/") or "/")
        return paths

    def field(self, name, key):
        return run(["dpkg-deb", "-f", self.debs[name], key]).strip()

    def depends(self, name):
        return [d.strip() for d in self.field(name, "Depends").split(",") if d.strip()]

    def test_three_packages(self):
        for name, path in self.debs.items():
            self.assertTrue(os.path.exists(path), "%s\n%s" % (path, self.make_out))
            self.assertEqual(self.field(name, "Package"), name)
            self.assertEqual(self.field(name, "Version"), VERSION)
            self.assertTrue(self.field(name, "Maintainer"))
            self.assertTrue(self.field(name, "Description"))
            self.assertIn("/usr/share/doc/%s/copyright" % name, self.files(name))
            info = run(["dpkg-deb", "-I", path])
            self.assertIn("Section: ", info)

    def test_command_package(self):
        files = self.files("sockserve")
        self.assertIn("/usr/bin/sockserve", files)
        self.assertFalse([f for f in files if "/include/" in f or re.search(r"\.so(\.|$)", f)])
        self.assertIn("/usr/share/man/man1/sockserve.1.gz", files)
        self.assertEqual(self.field("sockserve", "Section"), "net")
        deps = self.depends("sockserve")
        # from dpkg-shlibdeps: versioned libc and libssl, never a guessed list
        self.assertTrue([d for d in deps if re.match(r"libc6 \(>= ", d)], deps)
        self.assertTrue([d for d in deps if re.match(r"libssl3\w* \(>= ", d)], deps)

    def test_library_package(self):
        lib = "/usr/lib/%s/libsockserve.so.%s" % (self.multiarch, VERSION)
        files = self.files("libsockserve0")
        self.assertIn(lib, files)
        self.assertIn("/usr/lib/%s/libsockserve.so.0" % self.multiarch, files)
        self.assertNotIn("/usr/lib/%s/libsockserve.so" % self.multiarch, files)
        self.assertEqual(self.field("libsockserve0", "Section"), "libs")
        self.assertTrue([d for d in self.depends("libsockserve0")
                         if d.startswith("libc6 (>= ")])
        ctl = os.path.join(self.tmp, "control")
        run(["dpkg-deb", "-e", self.debs["libsockserve0"], ctl])
        with open(os.path.join(ctl, "shlibs")) as f:  # what dependents' shlibdeps read
            self.assertIn("libsockserve 0 libsockserve0 (>= %s)" % VERSION, f.read())

    def test_dev_package(self):
        files = self.files("libsockserve-dev")
        d = "/usr/lib/%s" % self.multiarch
        for want in ("/usr/include/sockserve.h", d + "/libsockserve.a", d + "/libsockserve.so",
                     d + "/pkgconfig/sockserve.pc", d + "/cmake/sockserve/sockserveConfig.cmake",
                     d + "/cmake/sockserve/sockserveConfigVersion.cmake",
                     "/usr/share/man/man3/libsockserve.3.gz"):
            self.assertIn(want, files)
        self.assertEqual(self.field("libsockserve-dev", "Section"), "libdevel")
        deps = self.depends("libsockserve-dev")
        self.assertIn("libsockserve0 (= %s)" % VERSION, deps)
        self.assertIn("libssl-dev", deps)

    def install_root(self):
        """dpkg --root into a scratch root; returns it. The packages' ldconfig
        call is a stub on PATH here, so the host's cache is never touched."""
        root = os.path.join(self.tmp, "root")
        for sub in ("info", "updates", "triggers"):
            os.makedirs(os.path.join(root, "var", "lib", "dpkg", sub), exist_ok=True)
        for f in ("status", "available"):
            open(os.path.join(root, "var", "lib", "dpkg", f), "a").close()
        stubs = os.path.join(self.tmp, "stubs")
        os.makedirs(stubs, exist_ok=True)
        with open(os.path.join(stubs, "ldconfig"), "w") as f:
            f.write('#!/bin/sh\ntouch "$DPKG_ROOT/ldconfig-ran"\n')
        os.chmod(os.path.join(stubs, "ldconfig"), 0o755)
        env = dict(os.environ, PATH=stubs + ":" + os.environ.get("PATH", "/usr/bin:/bin"))
        run(["dpkg", "--root=" + root, "--force-not-root", "--force-depends",
             "--force-script-chrootless", "--log=/dev/null", "-i"] + list(self.debs.values()),
            env=env)
        return root

    def test_installs_and_runs(self):
        root = self.install_root()
        self.assertTrue(os.path.exists(os.path.join(root, "ldconfig-ran")))  # postinst ran
        with open(os.path.join(root, "var", "lib", "dpkg", "status")) as f:
            status = f.read()
        self.assertEqual(status.count("Status: install ok installed"), 3, status)
        libdir = os.path.join(root, "usr", "lib", self.multiarch)
        env = dict(os.environ, LD_LIBRARY_PATH=libdir)
        exe = os.path.join(root, "usr", "bin", "sockserve")
        self.assertEqual(run([exe, "--version"], env=env).strip(), "sockserve " + VERSION)
        if shutil.which("man"):  # the installed manual renders
            page = run(["man", "-l", os.path.join(root, "usr/share/man/man1/sockserve.1.gz")],
                       env=dict(env, MANWIDTH="80"))
            self.assertIn("SOCKSERVE(1)", page)
        # a program built from the -dev files runs on the installed libsockserve0
        pc_env = dict(os.environ, PKG_CONFIG_SYSROOT_DIR=root,
                      PKG_CONFIG_PATH=os.path.join(libdir, "pkgconfig"))
        flags = run(["pkg-config", "--cflags", "--libs", "sockserve"], env=pc_env).split()
        self.assertIn("-I" + os.path.join(root, "usr", "include"), flags)
        with socket.socket() as srv:
            srv.bind(("127.0.0.1", 0))
            srv.listen(1)
            src = os.path.join(self.tmp, "hello.c")
            with open(src, "w") as f:
                f.write(HELLO_C.replace("PORT", str(srv.getsockname()[1])))
            hello = os.path.join(self.tmp, "hello")
            run(["cc", "-o", hello, src] + flags)
            self.assertEqual(run([hello], env=env).strip(), VERSION)
            srv.settimeout(5 * SLOW)
            conn, _ = srv.accept()
            with conn:
                self.assertEqual(conn.recv(10), b"ping")
        ldd = run(["ldd", hello], env=env)
        self.assertIn(os.path.join(libdir, "libsockserve.so.0"), ldd)


if __name__ == "__main__":
    sstest.main()

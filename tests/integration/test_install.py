# SPDX-License-Identifier: MIT
"""Installed, libsockserve is usable from a user's own project: `cmake --install`
and `make install PREFIX=... DESTDIR=...` lay out bin/, the libraries, the header,
sockserve.pc and the CMake package; the README's C example (taken from README.md
itself) and examples/upper_server.c then build against the installed copy only,
with pkg-config (shared and --static) and with find_package(sockserve CONFIG), and
serve a real echo round trip on 127.0.0.1.

ctest-labels: packaging
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import unittest

import sstest
from sstest import SLOW

CMAKE = os.environ.get("SS_CMAKE") or shutil.which("cmake")
CC = shutil.which("cc") or shutil.which("gcc")
README = os.path.join(sstest.SOURCE_DIR, "README.md")
UPPER = os.path.join(sstest.SOURCE_DIR, "examples", "upper_server.c")
IN_TREE_INCLUDE = os.path.realpath(os.path.join(sstest.SOURCE_DIR, "include"))
# A sanitized build installs a sanitized library: its users must link the
# sanitizer runtime too, as a user of such a build would.
SAN_FLAGS = ["-fsanitize=" + os.environ["SS_SANITIZE"]] if os.environ.get("SS_SANITIZE") else []


def readme_c_example():
    """The README's (first) fenced C block, byte for byte."""
    m = re.search(r"^```c\n(.*?)^```", read(README), re.M | re.S)
    if m is None:
        raise AssertionError("README.md has no ```c block")
    return m.group(1)


def read(path):
    with open(path) as f:
        return f.read()


def clean_make_env():
    """The environment without the make that runs ctest (make test-asan passes
    CMAKE_ARGS=-DSS_SANITIZE=... down through MAKEFLAGS): this make is the user's."""
    return {k: v for k, v in os.environ.items()
            if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES",
                         "CMAKE_ARGS", "CTEST_ARGS", "BUILD")}


def run(argv, env=None, cwd=None, timeout=240):
    r = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True,
                       timeout=timeout * SLOW)
    if r.returncode != 0:
        raise AssertionError("%s exited %d\n%s%s" % (argv, r.returncode, r.stdout, r.stderr))
    return r


def needed_libs(exe):
    out = run(["readelf", "-d", exe]).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


@unittest.skipUnless(CC and shutil.which("pkg-config") and shutil.which("readelf"),
                     "needs cc, pkg-config and readelf")
class Install(sstest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = sstest.temp_dir()
        cls.prefix = os.path.join(cls.tmp, "prefix")
        run([CMAKE, "--install", sstest.BUILD_DIR, "--prefix", cls.prefix])
        cls.src = os.path.join(cls.tmp, "src")  # far from the source tree's include/
        os.mkdir(cls.src)
        with open(os.path.join(cls.src, "readme.c"), "w") as f:
            f.write(readme_c_example())
        shutil.copy(UPPER, os.path.join(cls.src, "upper_server.c"))
        shutil.copy(os.path.join(os.path.dirname(UPPER), "strip.h"), cls.src)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, True)

    def pc_env(self, prefix=None):
        return dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix or self.prefix, "lib",
                                                             "pkgconfig"))

    def pkg_config(self, *args, env=None):
        return run(["pkg-config"] + list(args) + ["sockserve"],
                   env=env or self.pc_env()).stdout.split()

    def compile(self, source, exe, cflags, libs):
        """cc -H: the header it reports must be the installed one."""
        r = run([CC, "-H", "-Wall", "-Wextra", "-o", exe, source] + SAN_FLAGS + cflags + libs,
                cwd=self.src)
        headers = [line.lstrip(". ").strip() for line in r.stderr.splitlines()
                   if line.startswith(".") and line.rstrip().endswith("sockserve.h")]
        self.assertEqual([os.path.realpath(h) for h in headers],
                         [os.path.realpath(os.path.join(self.prefix, "include",
                                                        "sockserve.h"))], r.stderr)
        self.assertNotIn(IN_TREE_INCLUDE, " ".join(cflags + libs))

    # ---- servers, driven through real sockets ---------------------------------

    def echo_round_trip(self, exe, env=None):
        """The README server: a free port as its argument, one echo back."""
        port = sstest.free_port()
        p = self.start([exe, "tcp://127.0.0.1:%d" % port], env=env)

        def up():
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0
        self.assertTrue(sstest.wait_until(up, 10), "the README server never listened")
        with socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW) as s:
            s.sendall(b"round trip\n")
            got = b""
            while len(got) < 11:
                chunk = s.recv(100)
                if not chunk:
                    break
                got += chunk
        self.assertEqual(got, b"round trip\n")
        p.signal(signal.SIGTERM)  # ss_server_serve_until_signal: drain, return 0
        self.assertEqual(p.wait(), 0, p.err_lines)
        return p

    def upper_round_trip(self, exe, env=None):
        p = self.start([exe, "tcp://127.0.0.1:0"], env=env)
        p.wait_out(b"server is running on ")
        bound = re.search(rb"server is running on (\S+?)\.\.\.", p.out_data).group(1)
        host, port = sstest.split_inet(bound.decode())
        with socket.create_connection((host, port), timeout=5 * SLOW) as s:
            s.sendall(b"hello")
            self.assertEqual(s.recv(100), b"HELLO")
        return p

    # ---- the layout -----------------------------------------------------------

    def test_layout(self):
        for rel in ("bin/sockserve", "include/sockserve.h", "lib/libsockserve.a",
                    "lib/libsockserve.so", "lib/libsockserve.so.0",
                    "lib/pkgconfig/sockserve.pc", "lib/cmake/sockserve/sockserveConfig.cmake",
                    "lib/cmake/sockserve/sockserveConfigVersion.cmake",
                    "lib/cmake/sockserve/sockserveTargets.cmake"):
            self.assertTrue(os.path.exists(os.path.join(self.prefix, rel)), rel)
        self.assertTrue(os.path.islink(os.path.join(self.prefix, "lib", "libsockserve.so")))
        self.assertEqual(self.pkg_config("--variable=prefix"), [self.prefix])
        ver = run([os.path.join(self.prefix, "bin", "sockserve"), "--version"]).stdout
        self.assertTrue(ver.startswith("sockserve "), ver)

    def test_make_install_honours_prefix_and_destdir(self):
        stage = os.path.join(self.tmp, "stage")
        run(["make", "-C", sstest.SOURCE_DIR, "--no-print-directory", "install",
             "BUILD=" + os.path.abspath(sstest.BUILD_DIR), "PREFIX=/opt/sockserve",
             "DESTDIR=" + stage, "JOBS=2"], env=clean_make_env())
        root = os.path.join(stage, "opt", "sockserve")
        for rel in ("bin/sockserve", "include/sockserve.h", "lib/libsockserve.a",
                    "lib/libsockserve.so.0", "lib/pkgconfig/sockserve.pc",
                    "lib/cmake/sockserve/sockserveConfig.cmake"):
            self.assertTrue(os.path.exists(os.path.join(root, rel)), rel)
        pc = read(os.path.join(root, "lib", "pkgconfig", "sockserve.pc"))
        self.assertIn("prefix=/opt/sockserve\n", pc)  # where it will live, not the stage
        self.assertNotIn(stage, pc)
        # pkg-config's sysroot finds the staged copy, as a cross build would
        env = dict(self.pc_env(root), PKG_CONFIG_SYSROOT_DIR=stage)
        cflags = self.pkg_config("--cflags", env=env)
        self.assertIn("-I" + os.path.join(root, "include"), cflags)

    # ---- pkg-config -------------------------------------------------------------

    def test_pkg_config_shared(self):
        cflags = self.pkg_config("--cflags")
        libs = self.pkg_config("--libs")
        self.assertEqual(cflags, ["-I" + os.path.join(self.prefix, "include")])
        exe = os.path.join(self.src, "readme-pc")
        self.compile("readme.c", exe, cflags, libs)
        self.assertIn("libsockserve.so.0", needed_libs(exe))
        env = dict(os.environ, LD_LIBRARY_PATH=os.path.join(self.prefix, "lib"))
        ldd = run(["ldd", exe], env=env).stdout
        self.assertIn(os.path.join(self.prefix, "lib", "libsockserve.so.0"), ldd)
        self.echo_round_trip(exe, env=env)
        upper = os.path.join(self.src, "upper-pc")
        self.compile("upper_server.c", upper, cflags, libs)
        self.upper_round_trip(upper, env=env)

    def test_pkg_config_static(self):
        cflags = self.pkg_config("--cflags", "--static")
        libs = self.pkg_config("--libs", "--static")
        for want in ("-lssl", "-lcrypto", "-pthread"):  # Requires.private, Libs.private
            self.assertIn(want, libs)
        # -lsockserve would take the .so beside the .a: name the archive
        libs = ["-l:libsockserve.a" if x == "-lsockserve" else x for x in libs]
        exe = os.path.join(self.src, "upper-static")
        self.compile("upper_server.c", exe, cflags, libs)
        self.assertFalse([n for n in needed_libs(exe) if "sockserve" in n])
        self.upper_round_trip(exe)  # no LD_LIBRARY_PATH needed
        readme = os.path.join(self.src, "readme-static")
        self.compile("readme.c", readme, cflags, libs)
        self.echo_round_trip(readme)

    # ---- CMake ------------------------------------------------------------------

    def test_find_package(self):
        proj = os.path.join(self.tmp, "cmake-project")
        os.mkdir(proj)
        with open(os.path.join(proj, "CMakeLists.txt"), "w") as f:
            f.write("cmake_minimum_required(VERSION 3.18)\n"
                    "project(uses_sockserve C)\n"
                    "find_package(sockserve CONFIG REQUIRED)\n"
                    "add_executable(readme %s/readme.c)\n"
                    "target_link_libraries(readme PRIVATE sockserve::sockserve)\n"
                    "add_executable(upper %s/upper_server.c)\n"
                    "target_link_libraries(upper PRIVATE sockserve::sockserve_static)\n"
                    % (self.src, self.src))
        build = os.path.join(proj, "build")
        # only the prefix: no package registry, no system copy
        run([CMAKE, "-S", proj, "-B", build, "-DCMAKE_PREFIX_PATH=" + self.prefix,
             "-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF", "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON",
             "-DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF",
             "-DCMAKE_C_FLAGS=" + " ".join(SAN_FLAGS)])
        cache = read(os.path.join(build, "CMakeCache.txt"))
        self.assertIn("sockserve_DIR:PATH=%s/lib/cmake/sockserve" % self.prefix, cache)
        run([CMAKE, "--build", build, "-j", "2"])
        commands = read(os.path.join(build, "compile_commands.json"))
        self.assertIn(os.path.join(self.prefix, "include"), commands)
        self.assertNotIn(IN_TREE_INCLUDE, commands)
        readme = os.path.join(build, "readme")
        self.assertIn("libsockserve.so.0", needed_libs(readme))
        self.echo_round_trip(readme)  # CMake's build RPATH finds the prefix's copy
        upper = os.path.join(build, "upper")
        self.assertFalse([n for n in needed_libs(upper) if "sockserve" in n])
        self.upper_round_trip(upper)


if __name__ == "__main__":
    sstest.main()

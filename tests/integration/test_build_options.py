# SPDX-License-Identifier: MIT
"""-DSOCKSERVE_TESTS=OFF configures and builds with only OpenSSL: no cmocka, no
fuzz toolchain, no libedit (pkg-config is pointed at an empty directory, so
none of them can be found), and the command then reads plain lines.

ctest-labels: packaging
"""
import os
import shutil
import subprocess
import unittest

import sstest

CMAKE = os.environ.get("SS_CMAKE") or shutil.which("cmake")


class WithoutTestTools(unittest.TestCase):
    def test_configure_and_build_with_only_openssl(self):
        tmp = sstest.temp_dir()
        self.addCleanup(shutil.rmtree, tmp, True)
        build = os.path.join(tmp, "build")
        env = dict(os.environ, PKG_CONFIG_LIBDIR=os.path.join(tmp, "no-pc"),
                   PKG_CONFIG_PATH="")
        cfg = subprocess.run([CMAKE, "-S", sstest.SOURCE_DIR, "-B", build,
                              "-DSOCKSERVE_TESTS=OFF", "-DCMAKE_BUILD_TYPE=Debug"],
                             env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(cfg.returncode, 0, cfg.stdout + cfg.stderr)
        self.assertIn("libedit not used", cfg.stdout)
        cache = open(os.path.join(build, "CMakeCache.txt")).read()
        self.assertNotIn("CMOCKA_FOUND:INTERNAL=1", cache)
        self.assertFalse(os.path.exists(os.path.join(build, "fuzz")))
        bld = subprocess.run([CMAKE, "--build", build, "-j", str(os.cpu_count() or 2),
                              "--target", "sockserve"],
                             env=env, capture_output=True, text=True, timeout=300)
        self.assertEqual(bld.returncode, 0, bld.stdout + bld.stderr)
        self.assertNotIn("warning:", bld.stdout + bld.stderr)
        exe = os.path.join(build, "sockserve")
        ver = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10)
        self.assertEqual(ver.returncode, 0, ver.stderr)
        self.assertTrue(ver.stdout.startswith("sockserve "), ver.stdout)
        if shutil.which("ldd"):
            deps = subprocess.run(["ldd", exe], capture_output=True, text=True,
                                  timeout=10).stdout
            self.assertNotIn("libedit", deps)


if __name__ == "__main__":
    unittest.main()

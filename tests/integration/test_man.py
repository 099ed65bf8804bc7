# SPDX-License-Identifier: MIT
"""The manuals (man/, mdoc) render without a single warning from groff
(-ww -mandoc), man-db (man --warnings -l) and mandoc (-T lint -W warning), and
they stay true to the command: sockserve(1) names every subcommand and every
flag that `sockserve COMMAND --help` lists, and every exit status;
libsockserve(3) names every function of include/sockserve.h. Both are installed.

ctest-labels: packaging
"""
import os
import re
import shutil
import subprocess
import unittest

import sstest

MAN = os.path.join(sstest.SOURCE_DIR, "man")
PAGES = [os.path.join(MAN, "sockserve.1"), os.path.join(MAN, "libsockserve.3")]
HEADER = os.path.join(sstest.SOURCE_DIR, "include", "sockserve.h")
COMMANDS = ["echo", "reply", "connect", "rcmd-server", "rcmd", "keygen", "bench", "exec"]


def read(path):
    with open(path) as f:
        return f.read()


def lint(argv):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8"))
    return r.returncode, r.stderr.strip()


def rendered(page):
    r = subprocess.run(["man", "-l", page], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, MANWIDTH="200", MAN_KEEP_FORMATTING="",
                                LC_ALL="C.UTF-8"))
    return r.stdout


def flags_in_help(cmd):
    r = subprocess.run([sstest.SOCKSERVE, cmd, "--help"], capture_output=True, text=True,
                       timeout=10)
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", r.stdout + r.stderr))


class Manuals(unittest.TestCase):

    @unittest.skipUnless(shutil.which("groff"), "groff is not installed")
    def test_groff_no_warning(self):
        for page in PAGES:
            self.assertEqual(lint(["groff", "-ww", "-mandoc", "-z", page]), (0, ""), page)

    @unittest.skipUnless(shutil.which("man"), "man-db is not installed")
    def test_man_no_warning(self):
        for page in PAGES:
            r = subprocess.run(["man", "--warnings", "-l", page], capture_output=True,
                               text=True, timeout=60, env=dict(os.environ, MANWIDTH="80"))
            self.assertEqual((r.returncode, r.stderr.strip()), (0, ""), page)
            self.assertGreater(len(r.stdout), 2000, page)

    @unittest.skipUnless(shutil.which("mandoc"), "mandoc is not installed")
    def test_mandoc_lint_no_warning(self):
        for page in PAGES:
            r = subprocess.run(["mandoc", "-T", "lint", "-W", "warning", page],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual((r.returncode, (r.stdout + r.stderr).strip()), (0, ""), page)

    def test_written_in_mdoc(self):
        for page in PAGES:
            text = read(page)
            self.assertTrue(text.startswith(".\\\" SPDX-License-Identifier: MIT\n"), page)
            self.assertIn("\n.Dd ", text)
            self.assertNotIn("\n.TH ", text)

    @unittest.skipUnless(shutil.which("man"), "man-db is not installed")
    def test_sockserve_1_covers_the_command(self):
        page = rendered(PAGES[0])
        for cmd in COMMANDS:
            self.assertRegex(page, r"\n   %s\b" % re.escape(cmd), "no section for " + cmd)
            missing = sorted(f for f in flags_in_help(cmd) if f not in page)
            self.assertEqual(missing, [], "sockserve %s --help lists flags the manual lacks"
                             % cmd)
        for section in ("ADDRESSES", "SERVER OPTIONS", "SIGNALS", "EXIT STATUS", "EXAMPLES"):
            self.assertIn("\n" + section + "\n", page)
        for form in ("tcp://", "udp://", "unix:/", "unix:@", "unixgram:", "seqpacket:"):
            self.assertIn(form, page)
        self.assertNotRegex(page, r"\bseed's\b")  # speaks to users

    @unittest.skipUnless(shutil.which("man"), "man-db is not installed")
    def test_libsockserve_3_covers_the_header(self):
        page = rendered(PAGES[1])
        text = re.sub(r"/\*.*?\*/", " ", read(HEADER), flags=re.S)
        functions = set(re.findall(r"\b(ss_[a-z]\w*)\s*\(", text))
        self.assertGreater(len(functions), 50)
        missing = sorted(f for f in functions if not re.search(r"\b%s\b" % f, page))
        self.assertEqual(missing, [], "declared in sockserve.h, absent from libsockserve(3)")
        for section in ("ADDRESSES", "SOCKETS", "SERVERS", "EVENT API", "ERRORS",
                        "THREAD SAFETY"):
            self.assertIn("\n" + section + "\n", page)
        codes = set(re.findall(r"X\((\w+), -\d+", read(HEADER)))
        self.assertEqual(sorted(c for c in codes if "SS_E" + c not in page), [])

    def test_installed(self):
        tmp = sstest.temp_dir()
        self.addCleanup(shutil.rmtree, tmp, True)
        cmake = os.environ.get("SS_CMAKE") or shutil.which("cmake")
        for comp, rel in (("cli", "share/man/man1/sockserve.1"),
                          ("dev", "share/man/man3/libsockserve.3")):
            subprocess.run([cmake, "--install", sstest.BUILD_DIR, "--prefix", tmp,
                            "--component", comp], check=True, capture_output=True, timeout=60)
            self.assertTrue(os.path.exists(os.path.join(tmp, rel)), rel)


if __name__ == "__main__":
    unittest.main()

# SPDX-License-Identifier: MIT
"""The shared library exports the public API and nothing else (docs/abi.md):
every symbol `nm -D` lists as defined in libsockserve.so is declared in
include/sockserve.h, and no library-internal ss__ name leaks.

ctest-labels: packaging
"""
import os
import re
import shutil
import subprocess
import unittest

import sstest

HEADER = os.path.join(sstest.SOURCE_DIR, "include", "sockserve.h")


def shared_lib():
    lib = os.environ.get("SS_SHARED_LIB")
    return lib if lib else os.path.join(sstest.BUILD_DIR, "libsockserve.so")


def exported_symbols(lib):
    out = subprocess.run(["nm", "-D", "--defined-only", lib], check=True,
                         capture_output=True, text=True, timeout=30).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            names.add(parts[2].split("@")[0])
    return names


def header_declarations():
    """Names the header declares as functions or objects (comments stripped)."""
    text = open(HEADER).read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r"^\s*#.*?(?<!\\)$", " ", text, flags=re.M | re.S)
    funcs = set(re.findall(r"\b(ss_\w+)\s*\(", text))
    objs = set(re.findall(r"\bextern\b[^;(]*?\b(ss_\w+)\s*(?:\[[^\]]*\])?\s*;", text))
    return funcs | objs


@unittest.skipUnless(shutil.which("nm"), "nm (binutils) is not installed")
class ExportedSymbols(unittest.TestCase):
    def setUp(self):
        self.lib = shared_lib()
        self.assertTrue(os.path.exists(self.lib), self.lib)
        self.exported = exported_symbols(self.lib)
        self.declared = header_declarations()

    def test_something_is_exported(self):
        self.assertIn("ss_version", self.exported)
        self.assertIn("ss_server_new", self.exported)

    def test_every_export_is_declared_in_the_header(self):
        stray = sorted(self.exported - self.declared)
        self.assertEqual(stray, [], "exported from %s but not declared in %s"
                         % (self.lib, HEADER))

    def test_no_internal_name_leaks(self):
        self.assertEqual(sorted(n for n in self.exported if n.startswith("ss__")), [])

    def test_every_exported_name_is_public(self):
        self.assertEqual(sorted(n for n in self.exported
                                if not re.match(r"ss_[a-z]", n)), [])


if __name__ == "__main__":
    unittest.main()

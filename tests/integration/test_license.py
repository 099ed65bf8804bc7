# SPDX-License-Identifier: MIT
"""Every source file of the project (C, headers, Python, shell, CMake, make)
says its license in its first comment line, `SPDX-License-Identifier: MIT`
(after the #! line of a script), and LICENSE is the MIT license. The files
are the tracked ones (`git ls-files`) in a git checkout, else the tree.
tests/seed/ is exempt: it holds verbatim copies of a classic Python tutorial's
programs, which are not ours to license.

ctest-labels: packaging
"""
import os
import re
import shutil
import subprocess
import unittest

import sstest

ROOT = os.path.realpath(sstest.SOURCE_DIR)
EXEMPT = ("tests/seed/",)
SKIP_DIRS = {".git", "__pycache__"}
SPDX_C = "/* SPDX-License-Identifier: MIT */"
SPDX_HASH = "# SPDX-License-Identifier: MIT"
SPDX_ROFF = '.\\" SPDX-License-Identifier: MIT'


def tracked_files():
    if shutil.which("git") and os.path.exists(os.path.join(ROOT, ".git")):
        r = subprocess.run(["git", "-C", ROOT, "ls-files", "-z"], capture_output=True,
                           timeout=30)
        if r.returncode == 0:
            return [p for p in r.stdout.decode().split("\0") if p]
    out = []
    for base, dirs, names in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith("build")]
        for n in names:
            out.append(os.path.relpath(os.path.join(base, n), ROOT))
    return out


def expected_line(path):
    """The SPDX line a file of this kind needs, or None for a file that is not source."""
    name = os.path.basename(path)
    if path.endswith((".c", ".h", ".map")):
        return SPDX_C
    if path.endswith((".py", ".sh", ".cmake", ".cmake.in")) or name in ("CMakeLists.txt",
                                                                           "Makefile"):
        return SPDX_HASH
    if re.search(r"\.[1-9]$", name) and path.startswith("man/"):
        return SPDX_ROFF
    try:
        with open(os.path.join(ROOT, path), "rb") as f:
            first = f.readline()
    except OSError:
        return None
    if first.startswith(b"#!") and re.search(rb"\b(sh|bash|python3?)\b", first):
        return SPDX_HASH  # a script without an extension (.ci/run)
    return None


def first_comment_line(path):
    with open(os.path.join(ROOT, path), encoding="utf-8", errors="replace") as f:
        lines = f.read().split("\n", 2)
    if lines and lines[0].startswith("#!"):
        return lines[1] if len(lines) > 1 else ""
    return lines[0] if lines else ""


class License(unittest.TestCase):

    def test_license_file_is_mit(self):
        with open(os.path.join(ROOT, "LICENSE")) as f:
            text = f.read()
        self.assertTrue(text.startswith("MIT License\n"))
        self.assertIn("Permission is hereby granted, free of charge", text)

    def test_every_source_file_has_the_spdx_line(self):
        checked, missing = 0, []
        for path in tracked_files():
            if path.startswith(EXEMPT) or not os.path.isfile(os.path.join(ROOT, path)):
                continue
            want = expected_line(path)
            if want is None:
                continue
            checked += 1
            if first_comment_line(path).strip() != want:
                missing.append(path)
        self.assertGreater(checked, 100)  # the walk found the tree
        self.assertEqual(missing, [], "first comment line is not %r / %r"
                         % (SPDX_C, SPDX_HASH))

    def test_the_check_sees_a_file_without_it(self):
        self.assertIsNone(expected_line("docs/abi.md"))
        self.assertEqual(expected_line("src/x.c"), SPDX_C)
        self.assertEqual(expected_line("cmake/x.cmake"), SPDX_HASH)


if __name__ == "__main__":
    unittest.main()

# SPDX-License-Identifier: MIT
"""What users read stays inside the repository and speaks to them: README.md,
docs/, the public header and the sources never point to ../shared (users do
not have it), and neither the docs nor any --help text uses the project's
private word "seed" for the classic Python tutorial's programs, except as the
flag value `--protocol seed` (and the tests/seed/ folder that holds them).

ctest-labels: packaging
"""
import os
import re
import subprocess
import unittest

import sstest

ROOT = sstest.SOURCE_DIR
USER_DIRS = ["docs", "include", "src", "cli", "apps", "examples", "man"]
COMMANDS = ["echo", "reply", "connect", "rcmd-server", "rcmd", "keygen", "bench", "help"]
# allowed: the flag value, its C names, and the folder of the tutorial's programs
SEED_OK = re.compile(r"--protocol[ =]seed|native\|seed|native or seed|or seed\b|tests/seed"
                     r"|test_seed_rows|`seed`|seed =|seed:")


def user_files():
    yield os.path.join(ROOT, "README.md")
    for d in USER_DIRS:
        for base, _, names in os.walk(os.path.join(ROOT, d)):
            for n in names:
                yield os.path.join(base, n)


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


class UserFacingText(unittest.TestCase):

    def test_nothing_points_outside_the_repository(self):
        bad = []
        for path in user_files():
            for i, line in enumerate(read(path).splitlines(), 1):
                if "../shared" in line or re.search(r"(?<![\w/])shared/(?:seed|[A-Z]+\.md)",
                                                     line):
                    bad.append("%s:%d: %s" % (os.path.relpath(path, ROOT), i, line.strip()))
        self.assertEqual(bad, [])

    def seed_words(self, text):
        return [line.strip() for line in text.splitlines()
                if re.search(r"\bseed\b", line, re.I) and not SEED_OK.search(line)]

    def test_docs_say_what_the_programs_are(self):
        bad = []
        docs = [os.path.join(ROOT, "README.md"), os.path.join(ROOT, "examples", "README.md")]
        docs += [os.path.join(ROOT, "docs", n) for n in os.listdir(os.path.join(ROOT, "docs"))]
        for path in docs:
            bad += ["%s: %s" % (os.path.relpath(path, ROOT), w) for w in self.seed_words(read(path))]
        self.assertEqual(bad, [])

    def test_help_texts_say_what_the_programs_are(self):
        bad = []
        for cmd in [None] + COMMANDS:
            argv = [sstest.SOCKSERVE, "--help"] if cmd is None else [sstest.SOCKSERVE, cmd,
                                                                     "--help"]
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            bad += ["%s: %s" % (cmd, w) for w in self.seed_words(r.stdout + r.stderr)]
        self.assertEqual(bad, [])


if __name__ == "__main__":
    unittest.main()

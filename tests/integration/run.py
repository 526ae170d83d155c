#!/usr/bin/env python3
"""Run the leakwatch real-kernel integration tests (as root).

usage: python3 tests/integration/run.py [-k NAME]... [-v] [--list]

Loads every tests/integration/test_*.py, runs the registered tests in order and
prints PASS/FAIL per test and, last, one line "N passed, N failed".
Exit status 1 when a test failed.
"""
import glob
import importlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import lwtest  # noqa: E402


def main():
    for path in sorted(glob.glob(os.path.join(HERE, "test_*.py"))):
        importlib.import_module(os.path.splitext(os.path.basename(path))[0])
    return lwtest.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())

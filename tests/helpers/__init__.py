"""Helpers shared by several test modules: plain functions, classes and constants.

Fixtures live in ``tests/conftest.py``; what more than one ``test_*.py`` needs otherwise
lives here, so that no test module imports another (tests/test_exports.py checks):

- :mod:`helpers.demo`: one run of ``python -m netra_ws demo`` per test session;
- :mod:`helpers.scripts`: traces written by hand, each frame at a chosen millisecond;
- :mod:`helpers.reliability`: secret scans, a server in a subprocess, a trickling proxy,
  and the faults the reliability suites survive;
- :mod:`helpers.auth_cases`: the bad credentials the auth suite tries;
- :mod:`helpers.corpus`: the bad-input corpus of tests/bad_inputs/;
- :mod:`helpers.load`: the load tests' users and how each one connects.
"""

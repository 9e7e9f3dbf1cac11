"""Options shared by the whole suite: long simulations and soaks run only with --slow, and
the Hypothesis profiles.

Profiles (a test's own @settings still wins for what it names):
- "ci", the default: derandomized, so every run of the suite tries the same examples
  and a failure in CI is a failure on every machine; no example database and no
  per-example deadline (timing on a shared machine is not reproducible). Its budget of
  100 examples of 30 steps is what kills the planted bugs of docs/chaincode.md, "How
  the rules are tested", in tests/chaincode/test_chaincode_properties.py.
- "deep": random examples, ten times the examples and longer histories; loaded with
  --slow, or with HYPOTHESIS_PROFILE=deep (HYPOTHESIS_PROFILE=ci keeps "ci" under
  --slow). Hypothesis's own --hypothesis-profile wins over both.
"""
from __future__ import annotations

import os

import pytest
from hypothesis import settings

settings.register_profile("ci", max_examples=100, stateful_step_count=30, derandomize=True,
                          database=None, deadline=None)
settings.register_profile("deep", max_examples=1000, stateful_step_count=80,
                          derandomize=False, deadline=None)


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", default=False,
                     help="also run tests marked slow (long simulations, soaks), and load "
                          "the deep Hypothesis profile")


def pytest_configure(config):
    if config.getoption("hypothesis_profile", default=None):
        return                          # --hypothesis-profile, loaded by Hypothesis
    default = "deep" if config.getoption("--slow") else "ci"
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", default))


def pytest_collection_modifyitems(config, items):
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)

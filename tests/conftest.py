"""Options shared by the whole suite: long simulations and soaks run only with --slow, the
Hypothesis profiles, and which tests start processes.

Profiles (a test's own @settings still wins for what it names):
- "ci", the default: derandomized, so every run of the suite tries the same examples
  and a failure in CI is a failure on every machine; no example database and no
  per-example deadline (timing on a shared machine is not reproducible). Its budget of
  100 examples of 30 steps is what kills the planted bugs of docs/chaincode.md, "How
  the rules are tested", in tests/chaincode/test_chaincode_properties.py.
- "deep": random examples, ten times the examples and longer histories; loaded with
  --slow, or with HYPOTHESIS_PROFILE=deep (HYPOTHESIS_PROFILE=ci keeps "ci" under
  --slow). Hypothesis's own --hypothesis-profile wins over both.

Tests that start processes (real validators, the CLI, the demo, a process pool) are
marked `processes`, by module (PROCESSES). `python3 dev.py test` runs the others
first, spread over the cores by pytest-xdist, then these one at a time with nothing
beside them, as their timing checks need. In a pytest-xdist worker, a test not so
marked that starts a process fails, naming this list.
"""
from __future__ import annotations

import multiprocessing.util
import os
import subprocess
from pathlib import Path

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


# modules (or folders) of tests that start processes, from the top of the checkout
PROCESSES = (
    "tests/integration/", "tests/bench/", "tests/test_architecture.py",
    "tests/test_optimize_refused.py",
    "tests/audit/test_audit_cli.py", "tests/audit/test_audit_gateway.py",
    "tests/audit/test_audit_governance.py", "tests/audit/test_audit_properties.py",
    "tests/audit/test_audit_tamper.py", "tests/audit/test_export_tamper.py",
    "tests/client/test_client.py", "tests/client/test_client_cli.py",
    "tests/client/test_client_messages.py", "tests/client/test_demo.py",
    "tests/client/test_dev_wrapper.py", "tests/client/test_gov.py",
    "tests/client/test_gov_two.py", "tests/client/test_keys_show.py",
    "tests/client/test_node_init.py", "tests/client/test_staff_members.py",
    "tests/consensus/test_fairness.py", "tests/faultnet/test_faultnet.py",
    "tests/gateway/test_connection_settings.py", "tests/node/test_backup_restore.py",
    "tests/node/test_config_sections.py", "tests/node/test_crash.py",
    "tests/node/test_evidence.py", "tests/node/test_file_modes.py",
    "tests/node/test_runtime_catch_up.py", "tests/research/test_research_spark.py",
    "tests/web/",
)
ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    if hasattr(config, "workerinput"):          # a pytest-xdist worker
        _refuse_processes()
    if config.getoption("hypothesis_profile", default=None):
        return                          # --hypothesis-profile, loaded by Hypothesis
    default = "deep" if config.getoption("--slow") else "ci"
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", default))


@pytest.hookimpl(tryfirst=True)         # before -m selects by marker
def pytest_collection_modifyitems(config, items):
    processes = pytest.mark.processes
    for item in items:
        if Path(item.path).relative_to(ROOT).as_posix().startswith(PROCESSES):
            item.add_marker(processes)
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


# ---- the guard of pytest-xdist workers ------------------------------------------------

_RUNNING: list = []         # the test a worker runs now
_STARTED: dict = {}         # node id -> how a test outside PROCESSES started a process


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _RUNNING.append(item)
    try:
        return (yield)
    finally:
        _RUNNING.pop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A test that started a process where it must not fails, even if it caught the
    error."""
    report = yield
    if item.nodeid in _STARTED:
        problem = _STARTED.pop(item.nodeid)
        if report.passed:
            report.outcome = "failed"
            report.longrepr = problem
    return report


def _refuse_processes() -> None:
    """Every way a test could start a process, in this worker: refused (and the test
    failed) unless the test is marked `processes`."""
    def guard(owner, name: str) -> None:
        original = getattr(owner, name)
        what = f"{getattr(owner, '__name__', owner)}.{name}"

        def guarded(*args, **kwargs):
            item = _RUNNING[-1] if _RUNNING else None
            if item is not None and item.get_closest_marker("processes") is None:
                problem = (f"{item.nodeid} starts a process ({what}) beside other tests: "
                           f"add its module to PROCESSES in tests/conftest.py")
                _STARTED.setdefault(item.nodeid, problem)
                raise RuntimeError(problem)
            return original(*args, **kwargs)
        setattr(owner, name, guarded)

    guard(subprocess.Popen, "__init__")
    guard(multiprocessing.util, "spawnv_passfds")
    for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp"):
        if hasattr(os, name):
            guard(os, name)

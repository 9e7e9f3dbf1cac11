"""The indicator SQL runs unchanged on Apache Spark (research/spark.py) and gives DuckDB's
table, raw and suppressed. Behind --slow: it needs Java (17 or later) and PySpark, which
it installs on first use into a cache folder (about 450 MB, a minute), or it says why it
skips."""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from histories import history
from research import report
from test_research_report import write

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "stadsmunt-tests" \
    / "pyspark"
PYSPARK = "pyspark>=4,<5"


def spark_path() -> Path:
    """A folder from which `import pyspark` works, installing it there if need be."""
    if shutil.which("java") is None:
        pytest.skip("no java on PATH: Spark needs Java 17 or later")
    probe = [sys.executable, "-c", "import pyspark"]
    env = dict(os.environ, PYTHONPATH=str(CACHE))
    if subprocess.run(probe, env=env, capture_output=True).returncode != 0:
        done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target",
                               str(CACHE), PYSPARK], capture_output=True, text=True,
                              timeout=1800)
        if done.returncode != 0:
            pytest.skip(f"cannot install {PYSPARK}: {done.stderr.strip()[-300:]}")
    return CACHE


def steps(seed: int) -> list[tuple]:
    chance = random.Random(seed)
    drawn = [(1, "post", 0, 800)]
    for _ in range(300):
        drawn.append((chance.randint(0, 60), chance.choice(["approve", "approve", "spend",
                                                            "post", "update"]),
                       chance.randint(0, 13), chance.randint(1, 5_000)))
    return drawn


def run_spark(folder: Path, *extra: str) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(spark_path()), str(REPO)]))
    done = subprocess.run([sys.executable, "-m", "research.spark", str(folder), *extra],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)["indicators"]


def test_spark_and_duckdb_give_the_same_indicators(tmp_path):
    folder = tmp_path / "dataset"
    write(history(steps(7)), folder)
    duckdb_raw = json.loads(json.dumps(report.compute(folder, suppress=False)))
    assert sum(len(rows) for rows in duckdb_raw.values()) > 20
    assert run_spark(folder, "--raw") == duckdb_raw
    assert run_spark(folder) == json.loads(json.dumps(report.compute(folder)))

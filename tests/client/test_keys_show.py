"""`stadsmunt keys show FILE [--json]`: the public key of a key file `keygen` made, and
exit code 2 with a message naming the file when it is missing or not a key file."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from node import keys

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ops.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def key_file(tmp_path) -> tuple[Path, str]:
    path = tmp_path / "steward.key"
    done = run_cli("keygen", "--out", str(path))
    assert done.returncode == 0, done.stderr
    return path, done.stdout.strip()


def test_keys_show_prints_the_public_key_keygen_printed(key_file):
    path, public = key_file
    done = run_cli("keys", "show", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == public + "\n"
    assert public == keys.read_key_file(path).public.hex()


def test_keys_show_json(key_file):
    path, public = key_file
    done = run_cli("keys", "show", "--json", str(path))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"public": public}


@pytest.mark.parametrize("content, file_mode, says", [
    (None, None, "no such key file"),
    ("not a key\n", 0o600, "not a key file"),
    ("ab" * 31 + "\n", 0o600, "not a key file"),
    ("zz" * 32 + "\n", 0o600, "not a key file"),
    ("ab" * 32 + "\n", 0o644, "readable by others"),
])
def test_keys_show_refuses_a_missing_or_malformed_file_with_exit_2(tmp_path, content,
                                                                   file_mode, says):
    path = tmp_path / "broken.key"
    if content is not None:
        path.write_text(content)
        path.chmod(file_mode)
    done = run_cli("keys", "show", str(path))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"stadsmunt: {path}: ") and says in done.stderr
    assert "Traceback" not in done.stderr

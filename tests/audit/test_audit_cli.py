"""`stadsmunt audit` and `stadsmunt export`: the contract's exit codes (0 holds, 1 a check
failed with the first height and a plain reason, 2 bad usage or unreachable) for each
class of problem, the summary in text and JSON, and no traceback whatever the input."""
from __future__ import annotations

import json

import pytest

from audit_kit import blocks_of, build_log, export_bytes
from ops.cli import main


@pytest.fixture(scope="module")
def folder(logged):
    """(the data folder of the story's store, its genesis)."""
    return logged


@pytest.fixture(scope="module")
def export_file(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "chain.export"
    assert main(["export", str(folder[0]), "--out", str(out)]) == 0
    return out


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_audit_of_a_data_folder_passes_and_prints_the_summary(folder, capsys):
    path, genesis = folder
    code, out, err = run(capsys, "audit", str(path), "--genesis-hash", genesis.hash().hex())
    assert code == 0
    for words in ("audit passed", "blocks        9", "transactions  15", "minted        10.00",
                  "redeemed      0.50", "circulating   9.50", "tasks         1",
                  f"genesis hash  {genesis.hash().hex()}", "head hash"):
        assert words in out
    assert "trusted" not in err


def test_audit_without_a_pin_prints_the_genesis_hash_and_warns(folder, capsys):
    path, genesis = folder
    code, out, err = run(capsys, "audit", str(path.parent))     # the folder holding data/
    assert code == 0
    assert genesis.hash().hex() in err and "trusted" in err


def test_audit_json_gives_the_same_summary(export_file, folder, capsys):
    code, out, _ = run(capsys, "audit", str(export_file), "--json", "--jobs", "1")
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["failure"] is None
    s = report["summary"]
    assert (s["blocks"], s["transactions"], s["minted"], s["redeemed"], s["circulating"]) \
        == (9, 15, 1_000, 50, 950)
    assert s["genesis"] == folder[1].hash().hex() and report["genesis_trusted"]


def test_a_changed_export_exits_1_with_the_height_and_reason(export_file, tmp_path, capsys):
    data = bytearray(export_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "bad.export"
    bad.write_bytes(bytes(data))
    code, out, _ = run(capsys, "audit", str(bad))
    assert code == 1 and "audit FAILED at height" in out
    code, out, _ = run(capsys, "audit", str(bad), "--json")
    report = json.loads(out)
    assert code == 1 and not report["ok"] and report["failure"]["height"] >= 1


def test_a_file_that_exists_but_does_not_parse_exits_1(tmp_path, capsys):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00" * 10)
    assert run(capsys, "audit", str(junk))[0] == 1
    junk.write_bytes(b"")
    assert run(capsys, "audit", str(junk))[0] == 1


def test_a_pin_of_another_chain_exits_1_at_height_0(folder, capsys):
    code, out, _ = run(capsys, "audit", str(folder[0]), "--genesis-hash", "ab" * 32)
    assert code == 1 and "height 0" in out and "pinned" in out


@pytest.mark.parametrize("argv", [
    ["audit", "/nonexistent/stadsmunt"],
    ["audit", "http://127.0.0.1:9/"],
    ["audit", "{data}", "--genesis-hash", "xyz"],
    ["audit", "{data}", "--genesis-hash", "ab" * 32, "--genesis", "{data}"],
    ["audit", "{data}", "--genesis", "/nonexistent/genesis.json"],
    ["audit", "{data}", "--key", "/nonexistent/key"],
    ["audit", "{empty}"],
    ["audit"],
    ["export", "/nonexistent/stadsmunt", "--out", "{out}"],
    ["export", "{data}", "--out", "{data}"],
])
def test_bad_usage_and_unreachable_sources_exit_2(folder, tmp_path, capsys, argv):
    (tmp_path / "empty").mkdir()
    fill = {"data": str(folder[0]), "empty": str(tmp_path / "empty"),
            "out": str(tmp_path / "x.export")}
    argv = [a.format(**fill) for a in argv]
    try:
        code = main(argv)
    except SystemExit as stop:          # argparse's own usage errors
        code = stop.code
    _, err = capsys.readouterr()
    assert code == 2 and "Traceback" not in err


def test_two_sources_that_agree_pass_and_one_behind_is_named(folder, export_file, tmp_path,
                                                             capsys):
    code, out, err = run(capsys, "audit", str(folder[0]), str(export_file))
    assert code == 0 and "behind" not in err
    genesis_bytes, blocks = blocks_of(folder[0])
    short = tmp_path / "short.export"
    short.write_bytes(export_bytes(genesis_bytes, blocks[:5], folder[1].hash()))
    code, out, err = run(capsys, "audit", str(short), str(folder[0]))
    assert code == 0 and "blocks        9" in out
    assert f"{short} is behind: it ends at height 5" in err


def test_two_sources_with_different_blocks_exit_1(folder, tmp_path, capsys):
    other = tmp_path / "other" / "data"
    build_log(other, spends=5)
    code, out, _ = run(capsys, "audit", str(folder[0]), str(other))
    assert code == 1 and "height 6" in out and "different blocks" in out


def test_export_refuses_to_overwrite_and_leaves_no_half_file(folder, export_file, tmp_path,
                                                             capsys):
    assert run(capsys, "export", str(folder[0]), "--out", str(export_file))[0] == 2
    copy = tmp_path / "copy.export"
    assert run(capsys, "export", str(export_file), "--out", str(copy))[0] == 0
    assert copy.read_bytes() == export_file.read_bytes()
    assert not (tmp_path / "copy.export.part").exists()

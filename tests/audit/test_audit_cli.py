"""`stadsmunt audit` and `stadsmunt export`: the contract's exit codes (0 holds, 1 a check
failed with the first height and a plain reason, 2 bad usage or unreachable) for each
class of problem, the summary in text and JSON, and no traceback whatever the input."""
from __future__ import annotations

import base64
import configparser
import hashlib
import importlib.metadata
import io
import json
import re
import sys
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

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


def test_export_prints_the_files_sha256_and_the_head(folder, tmp_path, capsys):
    out_file = tmp_path / "recorded.export"
    code, out, err = run(capsys, "export", str(folder[0]), "--out", str(out_file))
    _, blocks = blocks_of(folder[0])
    assert code == 0 and f"exported {len(blocks)} blocks to {out_file}" in out
    assert f"file sha256   {hashlib.sha256(out_file.read_bytes()).hexdigest()}" in out
    assert f"head height   {blocks[-1].height}" in out
    assert f"head hash     {blocks[-1].hash.hex()}" in out
    assert "written" not in err                 # not a terminal: no progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_export_shows_the_blocks_written_only_on_a_terminal(folder, tmp_path, capsys,
                                                            monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["export", str(folder[0]), "--out", str(tmp_path / "t.export")]) == 0
    assert "\rexport: 9 blocks written\n" in terminal.getvalue()
    assert "sha256" in capsys.readouterr().out


class Gateway(BaseHTTPRequestHandler):
    """A gateway as docs/api.md has it for a reader without a token: status and genesis
    answer, the blocks are 401."""
    genesis = None

    def do_GET(self):
        genesis = type(self).genesis
        answers = {"/v1/status": {"chain": genesis.chain, "genesis": genesis.hash().hex(),
                                  "height": 9},
                   "/v1/genesis": {"canonical":
                                   base64.b64encode(genesis.canonical()).decode()}}
        answer = answers.get(self.path.split("?")[0])
        body = json.dumps(answer or {"error": "unauthenticated"}).encode()
        self.send_response(200 if answer else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def gateway(folder):
    Gateway.genesis = folder[1]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_gateway_without_a_key_says_a_staff_or_auditor_key_is_needed(gateway, tmp_path,
                                                                       capsys):
    for argv in (["audit", gateway], ["export", gateway, "--out", str(tmp_path / "g.export")]):
        code, out, err = run(capsys, *argv)
        assert code == 2, argv
        assert ("reading the log from a gateway needs a staff or auditor key (--key FILE), "
                "because the log holds personal data") in err
        assert "HTTP 401" not in err and "Unauthorized" not in err   # (a port may hold 401)
    assert not (tmp_path / "g.export").exists()


def test_the_speed_figures_only_with_verbose(folder, capsys):
    code, out, _ = run(capsys, "audit", str(folder[0]), "--jobs", "1")
    assert code == 0 and "signatures" in out and "tx/s" not in out and " s (" not in out
    code, out, _ = run(capsys, "audit", str(folder[0]), "--jobs", "1", "--verbose")
    assert code == 0 and re.search(r"signatures    \d+ checked in [\d.]+ s \(\d+ tx/s\)", out)


def header_of(out: str) -> dict[str, str]:
    lines = out.splitlines()
    assert lines[0] == "Stadsmunt audit"
    fields = {}
    for line in lines[1:]:
        if not line.startswith("  "):
            break
        fields[line[2:16].strip()] = line[16:]
    return fields


def winter(ms: int) -> str:
    """Central European Time of a time in January or February (UTC+1)."""
    local = datetime.fromtimestamp(ms / 1000 + 3600, timezone.utc)
    assert local.month in (1, 2)
    return f"{local:%Y-%m-%d %H:%M:%S} CET"


def test_the_text_report_opens_with_a_header_for_the_audit_file(folder, export_file,
                                                                tmp_path, capsys):
    path, genesis = folder
    _, blocks = blocks_of(path)
    timed = [b.time_ms for b in blocks if b.time_ms]
    short = tmp_path / "short.export"
    short.write_bytes(export_bytes(genesis.canonical(), blocks[:5], genesis.hash()))
    before = datetime.now(timezone.utc)
    code, out, _ = run(capsys, "audit", str(export_file), str(short), "--genesis-hash",
                       genesis.hash().hex(), "--jobs", "1")
    after = datetime.now(timezone.utc)
    assert code == 0
    head = header_of(out)
    assert list(head) == ["chain id", "city", "genesis hash", "sources", "block span",
                          "time span", "head hash", "audited at", "tool"]
    assert head["chain id"] == genesis.chain and head["city"] == genesis.city
    assert head["genesis hash"] == f"{genesis.hash().hex()} (pinned by --genesis-hash)"
    assert head["sources"] == (f"{export_file}, {short}: identical at every height they "
                               f"share; {short} ends at height 5")
    assert head["block span"] == f"1..{len(blocks)}"
    assert head["time span"] == f"{winter(timed[0])} .. {winter(timed[-1])} (Europe/Amsterdam)"
    assert head["head hash"] == blocks[-1].hash.hex()
    when, zone, named = head["audited at"].rsplit(" ", 2)
    assert named == "(Europe/Amsterdam)"
    audited = datetime.strptime(when, "%Y-%m-%d %H:%M:%S").replace(
        tzinfo=timezone(timedelta(hours={"CET": 1, "CEST": 2}[zone])))
    assert before - timedelta(seconds=1) <= audited <= after
    version = configparser.ConfigParser(interpolation=None)
    version.read(Path(__file__).resolve().parents[2] / "setup.cfg")
    assert head["tool"] == f"stadsmunt {version['metadata']['version']}"
    assert out.index("audit passed") > out.index("tool")


def test_the_header_of_an_unpinned_or_failed_audit(folder, tmp_path, capsys):
    path, genesis = folder
    code, out, _ = run(capsys, "audit", str(path), "--jobs", "1")
    head = header_of(out)
    assert head["genesis hash"] == (f"{genesis.hash().hex()} "
                                    f"(not pinned: taken from the source)")
    assert head["sources"] == str(path)
    other = tmp_path / "other" / "data"
    build_log(other, spends=5)
    code, out, _ = run(capsys, "audit", str(path), str(other), "--jobs", "1")
    head = header_of(out)
    assert code == 1 and head["sources"] == f"{path}, {other}: they differ at height 6"
    assert "block span" not in head and "head hash" not in head


def test_the_tool_version_falls_back_to_setup_cfg(monkeypatch):
    from ops import audit_cmd

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)
    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    version = configparser.ConfigParser(interpolation=None)
    version.read(Path(__file__).resolve().parents[2] / "setup.cfg")
    assert audit_cmd.tool_version() == version["metadata"]["version"]


def test_block_times_are_shown_in_amsterdam_time_with_the_zone_named():
    from ops.audit_cmd import city_time
    summer = int(datetime(2027, 7, 1, 10, 0, tzinfo=timezone.utc).timestamp() * 1000)
    winter_ms = int(datetime(2027, 12, 1, 10, 0, tzinfo=timezone.utc).timestamp() * 1000)
    assert city_time(summer) == "2027-07-01 12:00:00 CEST"
    assert city_time(winter_ms) == "2027-12-01 11:00:00 CET"

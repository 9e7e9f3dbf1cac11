"""`stadsmunt research export` (docs/research.md): a verified log's closed months as
pseudonymised Parquet, incremental, and nothing of a person that the codebook does not
list: no raw key, no memo, no proof, never the pseudonym key."""
from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import research_kit as kit
from ops import cli
from ops import research_cmd
from ops.research_cmd import read_pseudonym_key
from node.store import Store

KEY_A, KEY_B = bytes(range(32)), bytes(range(1, 33))


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("log") / "data"
    kit.build(path)
    return path


def key_file(folder: Path, key: bytes, name: str = "pseudonym.key") -> Path:
    path = folder / name
    path.write_text(key.hex() + "\n")
    return path


def export(source: Path, out: Path, key_path: Path, *extra: str) -> int:
    return cli.main(["research", "export", str(source), "--out", str(out),
                     "--pseudonym-key", str(key_path), "--jobs", "1", *extra])


def table(out: Path, name: str):
    if name in ("members", "tasks"):
        return pq.read_table(out / f"{name}.parquet").to_pylist()
    return ds.dataset(out / name, format="parquet", partitioning="hive").to_table().to_pylist()


def p(key: bytes, member) -> str:
    """docs/research.md, "Pseudonyms", written out: HMAC-SHA-256(key, public key)."""
    return hmac.new(key, member.public, hashlib.sha256).hexdigest()


def test_the_closed_months_are_written_and_the_open_one_is_not(log, tmp_path):
    out = tmp_path / "dataset"
    assert export(log, out, key_file(tmp_path, KEY_A)) == 0
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["months"] == list(kit.MONTHS)
    assert sorted(d.name for d in (out / "events").iterdir()) == \
        [f"month={m}" for m in kit.MONTHS]
    events = table(out, "events")
    kinds = [e["kind"] for e in events]
    assert kinds.count("coin.spent") == 2                   # not April's
    assert {"task.approved", "coin.refunded", "coin.redeemed", "payout.confirmed"} <= set(kinds)
    with Store(log) as store:                               # through March's last block
        last_march = max(h for h in range(1, store.head()[0] + 1)
                         if store.block(h).time_ms < kit.T0 + 45 * kit.DAY_MS)
    assert manifest["through_height"] == last_march
    approved = next(e for e in events if e["kind"] == "task.approved")
    assert (approved["member"], approved["area"], approved["cents"], approved["minutes"]) == \
        (p(KEY_A, kit.CITIZEN), "GMS", 1_000, 120)
    spends = table(out, "spends")
    assert [(s["month"], s["payer"], s["merchant"], s["merchant_name"], s["cents"])
            for s in spends] == [
        ("2025-02", p(KEY_A, kit.CITIZEN), p(KEY_A, kit.SHOP), "Bakkerij", 250),
        ("2025-03", p(KEY_A, kit.CITIZEN), p(KEY_A, kit.SHOP), "Bakkerij", 300)]
    members = {m["member"]: m for m in table(out, "members")}
    assert members[p(KEY_A, kit.OTHER)]["age_band"] == "under21"
    assert members[p(KEY_A, kit.OTHER)]["area"] == "HRL-Noord"
    assert members[p(KEY_A, kit.SHOP)]["name"] == "Bakkerij"
    assert [t["task"] for t in table(out, "tasks")] == ["litter-1"]


def test_no_raw_key_memo_proof_or_pseudonym_key_lands_in_the_dataset(log, tmp_path):
    out = tmp_path / "dataset"
    assert export(log, out, key_file(tmp_path, KEY_A)) == 0
    secrets = [KEY_A, KEY_A.hex().encode(), kit.MEMO.encode(), kit.PROOF,
               kit.PROOF.hex().encode(), b"SEPA-2025-03"]
    for pair in (kit.ADMIN, kit.CITIZEN, kit.SHOP, kit.OTHER):
        secrets += [pair.public, pair.public.hex().encode()]
    files = [f for f in out.rglob("*") if f.is_file()]
    assert len(files) >= 6
    for path in files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret not in data, (path, secret[:16])


def test_one_key_gives_the_same_pseudonyms_and_another_key_shares_none(log, tmp_path):
    names = {}
    for label, key in (("a", KEY_A), ("a2", KEY_A), ("b", KEY_B)):
        out = tmp_path / label
        assert export(log, out, key_file(tmp_path, key, f"{label}.key")) == 0
        names[label] = {m["member"] for m in table(out, "members")}
    assert names["a"] == names["a2"] and len(names["a"]) == 3   # citizens and shop
    assert not names["a"] & names["b"]


def test_a_second_run_appends_only_the_months_closed_since(log, tmp_path):
    early = tmp_path / "early" / "data"
    kit.build(early, upto=7)                 # February and March's first block
    out, key = tmp_path / "dataset", key_file(tmp_path, KEY_A)
    assert export(early, out, key) == 0
    assert json.loads((out / "dataset.json").read_text())["months"] == ["2025-02"]
    february = sorted((out / "events" / "month=2025-02").iterdir())
    before = [(f.name, f.read_bytes(), f.stat().st_mtime_ns) for f in february]
    first_run = len(table(out, "events"))
    assert export(log, out, key) == 0
    assert json.loads((out / "dataset.json").read_text())["months"] == list(kit.MONTHS)
    after = [(f.name, f.read_bytes(), f.stat().st_mtime_ns)
             for f in sorted((out / "events" / "month=2025-02").iterdir())]
    assert after == before
    assert [e["month"] for e in table(out, "events")].count("2025-02") == first_run
    assert export(log, out, key) == 0            # nothing closed since: nothing changes
    assert sorted(d.name for d in (out / "events").iterdir()) == \
        [f"month={m}" for m in kit.MONTHS]


def test_a_log_that_fails_the_audit_writes_nothing(log, tmp_path, capsys):
    broken = tmp_path / "broken"
    kit.build(broken)
    with Store(broken) as store:                 # a result changed after the fact
        with store.env.begin(write=True, db=store.db["results"]) as txn:
            key, value = next(iter(txn.cursor()))
            txn.put(key, value[:-1] + bytes([value[-1] ^ 1]))
    out = tmp_path / "dataset"
    assert export(broken, out, key_file(tmp_path, KEY_A)) == 1
    assert "fails the audit" in capsys.readouterr().err
    assert not out.exists() or not any(f for f in out.iterdir())


@pytest.mark.parametrize("content", ["", "zz", "00" * 31, "00" * 5000])
def test_a_bad_pseudonym_key_is_refused(tmp_path, content):
    path = tmp_path / "bad.key"
    path.write_text(content)
    with pytest.raises(Exception, match="is not a pseudonym key"):
        read_pseudonym_key(str(path))


def test_another_key_or_a_foreign_folder_is_refused_and_changes_nothing(log, tmp_path, capsys):
    out = tmp_path / "dataset"
    assert export(log, out, key_file(tmp_path, KEY_A)) == 0
    manifest = (out / "dataset.json").read_bytes()
    assert export(log, out, key_file(tmp_path, KEY_B, "b.key")) == 2
    assert "another pseudonym key" in capsys.readouterr().err
    assert (out / "dataset.json").read_bytes() == manifest
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert export(log, other, key_file(tmp_path, KEY_A)) == 2
    assert "holds no dataset" in capsys.readouterr().err
    assert [f.name for f in other.iterdir()] == ["notes.txt"]


def test_keygen_writes_a_key_only_its_owner_reads_and_never_overwrites(tmp_path):
    path = tmp_path / "cbs.key"
    assert cli.main(["research", "keygen", "--out", str(path)]) == 0
    assert len(read_pseudonym_key(str(path))) == 32
    assert path.stat().st_mode & 0o077 == 0
    first = path.read_text()
    assert cli.main(["research", "keygen", "--out", str(path)]) == 2
    assert path.read_text() == first


def test_what_a_killed_run_left_is_ignored_by_readers_and_removed_by_the_next_run(log,
                                                                                 tmp_path):
    early = tmp_path / "early" / "data"
    kit.build(early, upto=7)
    out, key = tmp_path / "dataset", key_file(tmp_path, KEY_A)
    assert export(early, out, key) == 0
    # a run killed after moving March in, before its manifest: junk the manifest never named
    (out / "events" / "month=2025-03").mkdir()
    (out / "events" / "month=2025-03" / "part-00000.parquet").write_bytes(b"half")
    (out / ".staging-999999").mkdir()
    from research import report
    assert [r["month"] for r in report.compute(out)["money"]] == ["2025-02"]
    assert export(log, out, key) == 0
    assert not list(out.glob(".staging-*"))
    assert [r["month"] for r in report.compute(out)["money"]] == list(kit.MONTHS)


def test_a_month_written_in_parts_holds_the_same_rows(log, tmp_path, monkeypatch):
    whole = tmp_path / "whole"
    assert export(log, whole, key_file(tmp_path, KEY_A)) == 0
    monkeypatch.setattr(research_cmd, "FLUSH_ROWS", 1)      # a part file per row
    parts = tmp_path / "parts"
    assert export(log, parts, key_file(tmp_path, KEY_A)) == 0
    assert len(list((parts / "events" / "month=2025-02").glob("part-*.parquet"))) > 2
    for name in ("events", "spends"):
        assert table(parts, name) == table(whole, name)

"""`stadsmunt audit --report FILE`: the report as one self-contained HTML document, parsed
back with the standard library's html.parser: the header, the verdict, the supply, caps
and governance sections, every value escaped, a failed audit's report saying FAILED, and
nothing it needs from outside the file."""
from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser

import pytest

from audit_kit import ADMIN, build_blocks, build_log
from gov_kit import governance_story
from ledger_kit import make_genesis
from ops.cli import main

EVIL_CITY = "<script>alert('x')</script> & Co"


class Page(HTMLParser):
    """The document's text (tags dropped, entities decoded), its tags, the (label,
    value) rows of every two-cell table row, the text of each element with an id, and
    any attribute that would load something from outside the file."""

    def __init__(self, document: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []
        self.rows: list[list[str]] = []
        self.by_id: dict[str, list[str]] = {}
        self.external: list[str] = []
        self._open_ids: list[tuple[str, str]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(document)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        for name in ("src", "href"):
            if attrs.get(name):
                self.external.append(f"{tag} {name}={attrs[name]}")
        if "id" in attrs:
            self._open_ids.append((tag, attrs["id"]))
            self.by_id[attrs["id"]] = []
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None
        if self._open_ids and self._open_ids[-1][0] == tag:
            self._open_ids.pop()

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        for _, element in self._open_ids:
            self.by_id[element].append(data)

    def field(self, label: str) -> str:
        found = [row[1] for row in self.rows if len(row) == 2 and row[0] == label]
        assert len(found) == 1, (label, self.rows)
        return found[0]

    def section(self, element: str) -> str:
        return " ".join(" ".join(self.by_id[element]).split())

    @property
    def all_text(self) -> str:
        return "".join(self.text)


@pytest.fixture(scope="module")
def evil(tmp_path_factory):
    """A store whose genesis names a city that is markup."""
    path = tmp_path_factory.mktemp("evil") / "data"
    genesis = dataclasses.replace(make_genesis(ADMIN), city=EVIL_CITY)
    build_log(path, genesis=genesis)
    return path, genesis


def audit_to(tmp_path, capsys, *argv) -> tuple[int, str, str, str]:
    report = tmp_path / "audit.html"
    code = main(["audit", *argv, "--jobs", "1", "--report", str(report)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err, report.read_text(encoding="utf-8")


def header_of(text_report: str) -> dict[str, str]:
    """The text report's header lines, label -> value."""
    fields = {}
    for line in text_report.splitlines()[1:]:
        match = re.fullmatch(r"  (\S+(?: \S+)?) {2,}(.+)", line)
        if not match:
            break
        fields[match[1]] = match[2]
    return fields


def test_the_report_of_a_passed_audit_holds_the_header_verdict_supply_and_caps(
        logged, tmp_path, capsys):
    path, genesis = logged
    code, out, err, document = audit_to(tmp_path, capsys, str(path), "--genesis-hash",
                                        genesis.hash().hex())
    assert code == 0 and f"report written to {tmp_path / 'audit.html'}" in err
    page = Page(document)
    assert document.startswith("<!DOCTYPE html>") and "html" in page.tags
    # the same header as the text report, value for value (the audit time included)
    text_header = header_of(out)
    for label in ("chain id", "city", "genesis hash", "sources", "block span", "time span",
                  "head hash", "audited at", "tool"):
        assert page.field(label) == text_header[label], label
    assert page.field("chain id") == genesis.chain and page.field("city") == "Heerlen"
    assert page.field("genesis hash") == f"{genesis.hash().hex()} (pinned by --genesis-hash)"
    assert page.field("sources") == str(path)
    assert page.field("block span") == "1..9"
    assert page.field("time span").endswith("(Europe/Amsterdam)")
    assert re.fullmatch(r"[0-9a-f]{64}", page.field("head hash"))
    assert page.field("tool").startswith("stadsmunt ")
    assert page.section("verdict") == "audit passed: every check holds"
    supply = page.section("supply")
    for words in ("minted 10.00 1000", "redeemed 0.50 50", "circulating 9.50 950"):
        assert words in supply
    for label in ("blocks", "transactions", "members", "tasks", "signatures"):
        assert f"  {label:<13} {page.field(label)}" in out, label
    assert page.field("transactions").startswith("15 (")
    assert page.field("cap invariant").startswith("holds")
    assert "citizen-period" in page.field("earnings checked")
    assert "Governance decisions" in page.all_text
    assert page.section("decisions")           # the table, or `none in this period`
    assert "FAILED" not in page.all_text


def test_the_report_needs_nothing_outside_the_file(logged, tmp_path, capsys):
    path, genesis = logged
    _, _, _, document = audit_to(tmp_path, capsys, str(path), "--genesis-hash",
                                 genesis.hash().hex())
    page = Page(document)
    assert page.external == []
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(page.tags)
    assert "style" in page.tags and "@media print" in document
    assert "url(" not in document and "@import" not in document and "http" not in document
    assert '<meta charset="utf-8">' in document


def test_every_value_is_escaped(evil, tmp_path, capsys):
    path, genesis = evil
    code, out, _, document = audit_to(tmp_path, capsys, str(path), "--genesis-hash",
                                      genesis.hash().hex())
    assert code == 0, out
    assert "<script" not in document.lower()
    assert "&lt;script&gt;" in document and "&amp; Co" in document
    page = Page(document)
    assert "script" not in page.tags
    assert page.field("city") == EVIL_CITY         # decoded back, as the text report shows it
    assert f"  city          {EVIL_CITY}" in out


def test_a_failed_audit_report_says_failed_where_and_why(logged, tmp_path, capsys):
    path, _ = logged
    code, out, _, document = audit_to(tmp_path, capsys, str(path), "--genesis-hash", "ab" * 32)
    assert code == 1 and "audit FAILED at height 0" in out
    page = Page(document)
    verdict = page.section("verdict")
    assert verdict.startswith("audit FAILED at height 0: ") and "not the pinned" in verdict
    assert page.field("genesis hash") == "- (pinned by --genesis-hash)"
    assert "supply" not in page.by_id and "decisions" not in page.by_id
    assert "block span" not in [row[0] for row in page.rows]


def test_a_tampered_export_report_says_failed(logged, tmp_path, capsys):
    path, _ = logged
    export = tmp_path / "chain.export"
    assert main(["export", str(path), "--out", str(export)]) == 0
    data = bytearray(export.read_bytes())
    data[len(data) // 2] ^= 0xFF
    export.write_bytes(bytes(data))
    capsys.readouterr()
    code, out, _, document = audit_to(tmp_path, capsys, str(export))
    assert code == 1
    failed = [line for line in out.splitlines() if line.startswith("audit FAILED")]
    assert Page(document).section("verdict") == failed[0]


def test_the_report_goes_with_json_too_and_a_bad_folder_is_usage(logged, tmp_path, capsys):
    path, genesis = logged
    code, out, _, document = audit_to(tmp_path, capsys, str(path), "--json")
    assert code == 0 and out.lstrip().startswith("{")      # stdout stays pure JSON
    assert "audit passed" in Page(document).section("verdict")
    code = main(["audit", str(path), "--report", str(tmp_path / "no" / "such" / "r.html")])
    _, err = capsys.readouterr()
    assert code == 2 and "--report" in err


def test_the_report_lists_the_governance_decisions(tmp_path, capsys):
    blocks, expected = governance_story()
    path = tmp_path / "gov" / "data"
    genesis = build_blocks(path, make_genesis(ADMIN), blocks)
    code, out, _, document = audit_to(tmp_path, capsys, str(path), "--genesis-hash",
                                      genesis.hash().hex())
    assert code == 0
    page = Page(document)
    rows = [row for row in page.rows if len(row) == 6 and row[0] != "height"]
    assert [(int(r[0]), r[1], r[2], r[3], r[5]) for r in rows] == \
        [(h, summary, organisation, ", ".join(approvals), outcome)
         for h, summary, organisation, approvals, outcome in expected]
    assert rows[0] == ["3", "policy.set 2027", "municipality", "municipality, cbs, brightlands",
                       "3", "enacted"]
    assert any(r[5] == "failed (exists)" for r in rows)

"""The CSV reader of `stadsmunt client import`, without a network: every line of a file is
either a row to register or a failure with its line and reason, never both or neither,
and what it lets through is what the chain's argument check takes."""
from __future__ import annotations

import csv
import io

import pytest

from hypothesis import given, settings, strategies as hs

from chaincode.args import valid
from ops.client_rows import read_csv
from ops.errors import UsageError

KEY = hs.binary(min_size=32, max_size=32).map(bytes.hex)
AREA = hs.from_regex(r"[A-Za-z0-9._-]{1,12}", fullmatch=True)
NAME = hs.text(hs.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30) \
    .map(str.strip).filter(bool)

# (cells of key, role, age_band, area, name; whether the row is good)
GOOD = hs.one_of(
    hs.tuples(KEY, hs.just("citizen"), hs.sampled_from(["21plus", "under21"]), AREA,
              hs.just("")),
    hs.tuples(KEY, hs.just("merchant"), hs.just(""), hs.just(""), NAME),
    hs.tuples(KEY, hs.sampled_from(["reviewer", "admin", "auditor"]), hs.just(""),
              hs.just(""), hs.just(""))).map(lambda cells: (list(cells), True))
BAD = hs.one_of(
    hs.tuples(hs.text("0123456789abcdefxyz", max_size=70).filter(lambda t: len(t) != 64),
              hs.just("citizen"), hs.just("21plus"), AREA, hs.just("")),
    hs.tuples(KEY, hs.just("citizen"), hs.sampled_from(["", "over65", "21PLUS"]), AREA,
              hs.just("")),
    hs.tuples(KEY, hs.just("citizen"), hs.just("21plus"), hs.just("no spaces allowed"),
              hs.just("")),
    hs.tuples(KEY, hs.just("merchant"), hs.just(""), hs.just(""), hs.just("")),
    hs.tuples(KEY, hs.sampled_from(["mayor", "", "Citizen"]), hs.just(""), hs.just(""),
              hs.just("")),
    hs.tuples(KEY, hs.just("reviewer"), hs.just(""), AREA, hs.just("")),
).map(lambda cells: (list(cells), False))
SHORT = hs.lists(hs.just("x"), min_size=1, max_size=4).map(lambda cells: (cells, False))
ROWS = hs.lists(hs.one_of(GOOD, BAD, SHORT), max_size=25)

ADMIN = bytes(32)


def write(rows: list[list[str]], separator: str = ",") -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=separator, lineterminator="\n")
    writer.writerow(["key", "role", "age_band", "area", "name"])
    writer.writerows(rows)
    return out.getvalue()


@settings(max_examples=150, deadline=None)
@given(ROWS, hs.sampled_from([",", ";"]))
def test_every_line_is_a_row_or_a_failure_and_good_rows_pass_the_chains_check(
        tmp_path_factory, rows, separator):
    path = tmp_path_factory.mktemp("csv") / "members.csv"
    path.write_text(write([cells for cells, _good in rows], separator))
    found, failed = read_csv(path)
    lines = [r.line for r in found] + [f.line for f in failed]
    assert sorted(lines) == list(range(2, len(rows) + 2))
    good_lines = {number for number, (_cells, good) in enumerate(rows, start=2) if good}
    assert {r.line for r in found} == good_lines
    for row in found:
        assert valid("member.register", ADMIN, row.args)
        assert row.args["key"].hex() == rows[row.line - 2][0][0]
    assert all(f.reason and f.code == "bad_row" for f in failed)


def test_a_semicolon_file_as_dutch_excel_saves_it_reads_as_the_comma_file(tmp_path):
    citizen, shop = "ab" * 32, "cd" * 32
    dutch = tmp_path / "leden.csv"          # Excel's "CSV UTF-8": a BOM, ; and CRLF
    dutch.write_bytes(("\ufeffkey;role;age_band;area;name\r\n"
                       f"{citizen};citizen;21plus;Meezenbroek;\r\n"
                       f"{shop};merchant;;;Cafe De Kroon, Heerlen\r\n"
                       "zz;citizen;21plus;GMS;\r\n").encode())
    rows, failed = read_csv(dutch)
    assert [(r.line, r.args) for r in rows] == [
        (2, {"key": bytes.fromhex(citizen), "role": "citizen", "age_band": "21plus",
             "area": "Meezenbroek"}),
        (3, {"key": bytes.fromhex(shop), "role": "merchant",
             "name": "Cafe De Kroon, Heerlen"})]
    assert [f.line for f in failed] == [4]


def test_a_header_with_an_unknown_column_is_refused_whichever_the_separator(tmp_path):
    for header in ("key;role;colour", "key,role,colour"):
        path = tmp_path / "bad.csv"
        path.write_text(header + "\n")
        with pytest.raises(UsageError, match="bad columns"):
            read_csv(path)

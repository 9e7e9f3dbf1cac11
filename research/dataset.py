"""The research dataset on disk (docs/research.md, "Layout"):

    DIR/dataset.json                          the manifest (below)
    DIR/events/month=YYYY-MM/part-NNNNN.parquet   one row per event of the month
    DIR/spends/month=YYYY-MM/part-NNNNN.parquet   one row per spend of the month
    DIR/members.parquet                       the members at the end of the last month
    DIR/tasks.parquet                         the tasks at the end of the last month
    DIR/policies.parquet                      the cap policy of each year so far

Months are Hive partitions: DuckDB and Spark read `month` from the folder name. A run
writes into DIR/.staging-PID first and moves its months in only once the whole log has
passed the audit; the manifest is replaced last, in one rename, and names the months
that count: readers take those only, and the next run removes what a killed one left
(one run at a time per folder). Memory stays bounded: a month's rows go to a part file every
FLUSH_ROWS rows.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from research import columns
from research.columns import SCHEMA_VERSION

MANIFEST = "dataset.json"
FLUSH_ROWS = 100_000
TABLES = columns.PARTITIONED


class DatasetError(Exception):
    """The folder holds something this run must not touch or extend."""


def arrow_modules():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise DatasetError("the research dataset needs pyarrow: pip install "
                           "'stadsmunt[research]'") from None
    return pyarrow, pyarrow.parquet


def table_schema(pa, table: str):
    kinds = {"int": pa.int64(), "text": pa.string(), "bool": pa.bool_()}
    return pa.schema([(name, kinds[kind]) for name, kind in columns.TABLES[table]])


def read_manifest(folder: Path) -> dict | None:
    path = folder / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DatasetError(f"{path} is not a dataset manifest: {error}") from None
    if type(manifest) is not dict or manifest.get("schema") != SCHEMA_VERSION:
        raise DatasetError(f"{path}: schema {manifest.get('schema')!r} is not "
                           f"{SCHEMA_VERSION}, the one this version writes")
    return manifest


class Writer:
    """One run: parts of each month into staging, then `commit` or `abandon`."""

    def __init__(self, folder: Path, chain: str, genesis_hash: str, fingerprint: str):
        self.pa, self.pq = arrow_modules()
        self.folder = folder
        manifest = read_manifest(folder)
        if manifest is None and folder.exists() and any(
                not p.name.startswith(".staging-") for p in folder.iterdir()):
            raise DatasetError(f"{folder} is not empty and holds no dataset")
        if manifest is not None:
            theirs = (manifest.get("chain"), manifest.get("genesis"))
            if theirs != (chain, genesis_hash):
                raise DatasetError(f"{folder} holds the dataset of chain {theirs[0]} "
                                   f"(genesis {str(theirs[1])[:16]}...), not of this log")
            if manifest.get("key_fingerprint") != fingerprint:
                raise DatasetError(f"{folder} was written with another pseudonym key: its "
                                   f"pseudonyms would not match; use that key or a new folder")
        self.manifest = manifest or {"schema": SCHEMA_VERSION, "chain": chain,
                                     "genesis": genesis_hash, "key_fingerprint": fingerprint,
                                     "months": [], "through_height": 0}
        self.months = frozenset(self.manifest["months"])
        folder.mkdir(parents=True, exist_ok=True)
        self._tidy()
        self.staging = folder / f".staging-{os.getpid()}"
        self.staging.mkdir()
        self.parts: dict[tuple[str, str], int] = {}
        self.closed: list[str] = []

    def _tidy(self) -> None:
        """What a killed run left: staging folders, and month folders it had moved in
        before it could write the manifest (readers never look at those)."""
        for staged in self.folder.glob(".staging-*"):
            shutil.rmtree(staged, ignore_errors=True)
        for table in TABLES:
            for month in (self.folder / table).glob("month=*"):
                if month.name.removeprefix("month=") not in self.months:
                    shutil.rmtree(month)

    def rows(self, table: str, month: str, rows: list[tuple]) -> None:
        """Writes rows of `table` for `month` as the month's next part file."""
        if rows:
            self._part(table, month, rows)

    def _part(self, table: str, month: str, rows: list[tuple]) -> None:
        count = self.parts.get((table, month), 0)
        self.parts[(table, month)] = count + 1
        folder = self.staging / table / f"month={month}"
        folder.mkdir(parents=True, exist_ok=True)
        self.pq.write_table(self._table(table, rows), folder / f"part-{count:05d}.parquet")

    def _table(self, name: str, rows: list[tuple]):
        """Rows as an Arrow table of the dataset's schema for `name` (none: empty)."""
        schema = table_schema(self.pa, name)
        columns = list(zip(*rows)) if rows else [[] for _ in schema]
        return self.pa.table([self.pa.array(c, type=f.type) for c, f in zip(columns, schema)],
                             schema=schema)

    def close_month(self, month: str) -> None:
        """Every table has a folder for a closed month, an empty part if it had no rows,
        so that a reader can take the manifest's months as paths."""
        for table in TABLES:
            if (table, month) not in self.parts:
                self._part(table, month, [])
        self.closed.append(month)

    def commit(self, through_height: int, members: list[tuple], tasks: list[tuple],
               policies: list[tuple]) -> list[str]:
        """Moves the closed months in, replaces the snapshots and the manifest; answers the
        months added."""
        added = [m for m in self.closed if m not in self.months]
        for table in TABLES:            # close_month gave each a folder
            (self.folder / table).mkdir(exist_ok=True)
            for month in added:
                os.replace(self.staging / table / f"month={month}",
                           self.folder / table / f"month={month}")
        if added or not (self.folder / "members.parquet").exists():
            for name, rows in (("members", members), ("tasks", tasks),
                               ("policies", policies)):
                self._snapshot(name, rows)
        manifest = dict(self.manifest, months=sorted(self.months | set(added)),
                        through_height=max(through_height if added else 0,
                                           self.manifest["through_height"]))
        partial = self.folder / (MANIFEST + ".part")
        partial.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        os.replace(partial, self.folder / MANIFEST)
        shutil.rmtree(self.staging, ignore_errors=True)
        return added

    def _snapshot(self, name: str, rows: list[tuple]) -> None:
        partial = self.staging / f"{name}.parquet"
        self.pq.write_table(self._table(name, rows), partial)
        os.replace(partial, self.folder / f"{name}.parquet")

    def abandon(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)

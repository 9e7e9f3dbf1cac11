"""The indicators of a research dataset with DuckDB, and the report a civil servant opens:
one self-contained HTML file, tables and plots (matplotlib, embedded as PNG), every table
of people under the disclosure rules (research/disclosure.py).
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from research import disclosure
from research.dataset import DatasetError, arrow_modules, read_manifest, table_schema

__all__ = ["compute", "read_manifest", "render", "suppressed"]
from research.indicators import INDICATORS, suppressed
from research.columns import PARTITIONED, SNAPSHOTS



def _duckdb():
    try:
        import duckdb
    except ImportError:
        raise DatasetError("the report needs duckdb: pip install 'stadsmunt[research]'") \
            from None
    return duckdb


def connect(folder: Path):
    """A DuckDB connection with the dataset's tables as views (`month` a column)."""
    manifest = read_manifest(folder)
    if manifest is None:
        raise DatasetError(f"{folder} holds no dataset (no dataset.json)")
    pa, _ = arrow_modules()
    con = _duckdb().connect()
    for name in PARTITIONED:          # the manifest's months only: nothing half written
        files = [f for month in manifest["months"]
                 for f in sorted((folder / name / f"month={month}").glob("*.parquet"))]
        if files:
            listed = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM "
                        f"read_parquet([{listed}], hive_partitioning = true)")
        else:
            schema = table_schema(pa, name).append(pa.field("month", pa.string()))
            con.register(name, schema.empty_table())
    for name in SNAPSHOTS:
        path = folder / f"{name}.parquet"
        if path.exists():
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('"
                        + str(path).replace("'", "''") + "')")
        else:
            con.register(name, table_schema(pa, name).empty_table())
    return con


def compute(folder: Path, suppress: bool = True) -> dict[str, list[dict]]:
    """Every indicator's rows; with `suppress`, tables of people as they may be shown."""
    con = connect(folder)
    try:
        found = {}
        for indicator in INDICATORS:
            cursor = con.execute(indicator.sql)
            columns = [d[0] for d in cursor.description]
            rows = [dict(zip(columns, r)) for r in cursor.fetchall()]
            found[indicator.name] = suppressed(indicator, rows) if suppress else rows
        return found
    finally:
        con.close()


# ---- the HTML report ------------------------------------------------------------------

def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def _plots(found: dict[str, list[dict]]) -> list[tuple[str, str]]:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot
    plots = []
    money = found["money"]
    if money:
        figure, axes = pyplot.subplots(figsize=(8, 3.5))
        months = [r["month"] for r in money]
        for column in ("minted", "spent", "redeemed"):      # a withheld figure: a gap
            axes.plot(months, [None if r[column] is None else r[column] / 100
                               for r in money], marker="o", label=column)
        axes.set_ylabel("coins")
        axes.legend()
        axes.tick_params(axis="x", rotation=45)
        plots.append(("Coins minted, spent and redeemed per month", _png(figure)))
        pyplot.close(figure)
    active = [r for r in found["active_citizens"] if not r["suppressed"]]
    if active:
        totals: dict[str, list[int]] = {}
        for row in active:
            total = totals.setdefault(row["month"], [0, 0])
            total[0] += row["new_citizens"]
            total[1] += row["returning_citizens"]
        months = sorted(totals)
        figure, axes = pyplot.subplots(figsize=(8, 3.5))
        axes.bar(months, [totals[m][0] for m in months], label="new")
        axes.bar(months, [totals[m][1] for m in months],
                 bottom=[totals[m][0] for m in months], label="returning")
        axes.set_ylabel("citizens (shown cells)")
        axes.legend()
        axes.tick_params(axis="x", rotation=45)
        plots.append(("Active citizens per month, new and returning (suppressed cells "
                      "left out)", _png(figure)))
        pyplot.close(figure)
    return plots


def _cell(row: dict, column: str) -> str:
    if column in row.get("withheld", ()) or (row.get("suppressed") and row[column] is None):
        return "&lt;10"
    value = row[column]
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return html.escape(str(value))


def _table(rows: list[dict]) -> str:
    if not rows:
        return "<p>No rows.</p>"
    columns = [c for c in rows[0] if c not in ("suppressed", "withheld")]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = "".join("<td>" + _cell(row, c) + "</td>" for c in columns)
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def render(folder: Path, found: dict[str, list[dict]]) -> str:
    manifest = read_manifest(folder)
    parts = [f"<h1>Stadsmunt: participation indicators, chain {html.escape(manifest['chain'])}"
             "</h1>",
             f"<p>Months {html.escape(', '.join(manifest['months']) or 'none')}; the log "
             f"through height {manifest['through_height']}; genesis "
             f"<code>{html.escape(manifest['genesis'])}</code>. Cells of fewer than "
             f"{disclosure.MIN_PEOPLE} people show &lt;10, and so does a second cell of "
             "their month where one alone would follow from the month's total "
             "(docs/research.md, \"Disclosure\").</p>"]
    for title, png in _plots(found):
        parts.append(f"<h2>{html.escape(title)}</h2><img alt=\"{html.escape(title)}\" "
                     f"src=\"data:image/png;base64,{png}\">")
    for indicator in INDICATORS:
        parts.append(f"<h2>{html.escape(indicator.title)}</h2>"
                     + _table(found[indicator.name]))
    style = ("body{font-family:sans-serif;margin:2em;max-width:60em}table{border-collapse:"
             "collapse}td,th{border:1px solid #999;padding:2px 6px;text-align:right}")
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Stadsmunt "
            f"indicators</title><style>{style}</style></head><body>{''.join(parts)}"
            "</body></html>\n")

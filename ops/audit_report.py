"""The audit's report as one self-contained HTML document (`stadsmunt audit --report
FILE`), for an auditor to attach to an audit file: no external CSS, scripts, fonts or
images, so it opens offline and prints as it shows. It holds what the text report prints:
the header (chain, city, genesis hash and how it was pinned, sources, block and time
span, head hash, when and with which tool), the verdict, the summary with the supply and
caps invariants, the warnings and the governance decisions. Every value is escaped."""
from __future__ import annotations

import os
import tempfile
from html import escape
from pathlib import Path

STYLE = """\
body { font: 11pt/1.45 Helvetica, Arial, sans-serif; color: #111; margin: 2em auto;
       max-width: 60em; padding: 0 1em; }
h1 { font-size: 1.5em; margin: 0 0 .6em; }
h2 { font-size: 1.15em; margin: 1.6em 0 .4em; border-bottom: 1px solid #999; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .25em .6em .25em 0; }
table.fields th { width: 11em; font-weight: 600; white-space: nowrap; }
table.list th { border-bottom: 1px solid #999; }
table.list td { border-bottom: 1px solid #ddd; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.mono { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .92em;
        word-break: break-all; }
.verdict { font-size: 1.2em; font-weight: 700; padding: .5em .8em; margin: 1em 0;
           border: 2px solid; }
.passed { color: #0b5d1e; border-color: #0b5d1e; background: #eaf6ec; }
.failed { color: #8b0000; border-color: #8b0000; background: #fbeaea; }
p.note { color: #444; font-size: .92em; }
footer { margin-top: 2em; color: #555; font-size: .85em; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  .verdict { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  h2, tr { break-inside: avoid; page-break-inside: avoid; }
  h2 { break-after: avoid; page-break-after: avoid; }
}"""


def _cents(amount: int) -> str:
    return f"{amount // 100:,}.{amount % 100:02d}"


def _fields(rows: list[tuple[str, str]], mono: frozenset = frozenset()) -> str:
    lines = ['<table class="fields">']
    for label, value in rows:
        cls = ' class="mono"' if label in mono else ""
        lines.append(f"<tr><th>{escape(label)}</th><td{cls}>{escape(str(value))}</td></tr>")
    lines.append("</table>")
    return "\n".join(lines)


def _supply(summary: dict) -> str:
    rows = [("minted", summary["minted"]), ("redeemed", summary["redeemed"]),
            ("circulating", summary["circulating"])]
    lines = ['<table class="list" id="supply">',
             "<tr><th>figure</th><th>coins</th><th>cents</th></tr>"]
    for label, amount in rows:
        lines.append(f'<tr><td>{escape(label)}</td><td class="num">{escape(_cents(amount))}'
                     f'</td><td class="num">{escape(str(amount))}</td></tr>')
    lines.append("</table>")
    lines.append('<p class="note">Minted is the sum of the approved tasks\' rewards '
                 "(<code>task.approved</code>), redeemed the sum of the redemptions "
                 "(<code>coin.redeemed</code>); the members hold exactly minted minus "
                 "redeemed, and both totals equal the chain state's own.</p>")
    return "\n".join(lines)


def _caps(summary: dict) -> str:
    periods = summary.get("citizen_periods", 0)
    return _fields([("cap invariant", "holds: every approval within the monthly cap and "
                                      "the yearly cap of the policy in force at its block"),
                    ("earnings checked", f"{periods} citizen-period total(s) (per citizen "
                                         f"and local month or year), each equal to the "
                                         f"chain state's earnings entry")])


def _decisions(decisions: list[dict]) -> str:
    if not decisions:
        return '<p id="decisions">none in this period</p>'
    lines = ['<table class="list" id="decisions">',
             "<tr><th>height</th><th>decision</th><th>proposed by</th><th>approved by</th>"
             "<th>threshold</th><th>outcome</th></tr>"]
    for d in decisions:
        outcome = d["outcome"] if d.get("code") is None else f"{d['outcome']} ({d['code']})"
        approvals = ", ".join(d.get("approvals") or []) or "none"
        cells = [(str(d["height"]), ' class="num"'), (d["summary"], ""),
                 (d["organisation"], ""), (approvals, ""), (str(d["threshold"]), ' class="num"'),
                 (outcome, "")]
        lines.append("<tr>" + "".join(f"<td{cls}>{escape(str(text))}</td>"
                                      for text, cls in cells) + "</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def render(report, header: list[tuple[str, str]], verbose: bool = False) -> str:
    """The HTML document of `report` (node.audit.Report) under `header` ((label, value)
    pairs, as the text report prints them)."""
    failed = report.failure is not None
    if failed:
        verdict = (f"audit FAILED at height {report.failure.height}: "
                   f"{report.failure.reason}")
    else:
        verdict = "audit passed: every check holds"
    values = dict(header)
    title = f"Stadsmunt audit of {values.get('chain id', '-')}, {values.get('audited at', '')}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>\n{STYLE}\n</style>",
        "</head>",
        "<body>",
        "<h1>Stadsmunt audit</h1>",
        '<section id="header">',
        _fields(header, mono=frozenset({"genesis hash", "head hash"})),
        "</section>",
        f'<p class="verdict {"failed" if failed else "passed"}" id="verdict">'
        f"{escape(verdict)}</p>",
    ]
    if report.warnings:
        parts.append("<h2>Warnings</h2>")
        parts.append('<ul id="warnings">' + "".join(f"<li>{escape(w)}</li>"
                                                    for w in report.warnings) + "</ul>")
    s = report.summary
    if failed or s is None:
        parts.append('<p class="note">Nothing past the failure holds, so the report gives '
                     "no block span, head, supply, caps or governance figures.</p>")
    else:
        members = ", ".join(f"{n} {role}" for role, n in s["members"].items()) or "none"
        signatures = f"{s['signatures']} checked"
        if verbose:
            signatures += f" in {s['seconds']} s ({s['tx_per_s']} tx/s)"
        parts += [
            "<h2>Summary</h2>",
            _fields([("blocks", f"{s['blocks']} ({s['checkpoints']} with a checkpoint)"),
                     ("transactions", f"{s['transactions']} ({s['ok']} ok, "
                                      f"{s['rejected']} rejected)"),
                     ("members", members), ("tasks", s["tasks"]),
                     ("signatures", signatures)]),
            "<h2>Supply</h2>",
            _supply(s),
            "<h2>Caps</h2>",
            _caps(s),
            "<h2>Governance decisions</h2>",
            _decisions(report.decisions or []),
        ]
    parts += [
        f"<footer>Written by {escape(values.get('tool', 'stadsmunt'))}; the checks are "
        "described in the project's docs/audit.md.</footer>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(parts)


def write(path: str | Path, document: str) -> None:
    """Write `document` to `path` whole or not at all (a temporary file beside it,
    renamed into place)."""
    target = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part",
                                         dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
            out.write(document)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise

"""One read model: the chaincode owns its encodings. Nothing outside chaincode/ imports
its state encoding (chaincode/state.py) or a private name of a chaincode module (such as
the result encoding's bytes in chaincode/results.py); what the node's store, the gateway,
the auditor and ops read of the state, the results and the events goes through
chaincode/queries.py, chaincode/results.py and chaincode/events.py. Checked on the source
with the ast module, as tests/test_architecture.py checks the packages' arrows."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from chaincode import events, results, queries
from chaincode.api import Result

ROOT = Path(__file__).resolve().parent.parent
SKIPPED = {"chaincode", "tests"}        # the owner, and the tests (they build states)


def outside_sources() -> list[Path]:
    """The project's Python modules outside chaincode/ (and outside the tests)."""
    return sorted(p for top in ROOT.iterdir()
                  if top.is_dir() and top.name not in SKIPPED and not top.name.startswith(".")
                  and (top / "__init__.py").is_file()
                  for p in top.rglob("*.py"))


def encoding_uses(path: Path) -> list[str]:
    """Where `path` reaches into the chaincode's encodings: an import of chaincode.state,
    of a private name of a chaincode module, or an attribute `_x` of one."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found, modules = [], set()       # names bound to a chaincode module here
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "chaincode.state" or alias.name.startswith("chaincode.state."):
                    found.append(f"{node.lineno}: import {alias.name}")
                elif alias.name.startswith("chaincode"):
                    # `import chaincode.x` binds `chaincode`; `as y` binds the module
                    modules.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            module = node.module
            if module != "chaincode" and not module.startswith("chaincode."):
                continue
            for alias in node.names:
                full = f"{module}.{alias.name}"
                if module.startswith("chaincode.state") or full == "chaincode.state":
                    found.append(f"{node.lineno}: from {module} import {alias.name}")
                elif alias.name.startswith("_"):
                    found.append(f"{node.lineno}: from {module} import {alias.name} (private)")
                elif module == "chaincode":
                    modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                node.value.startswith("chaincode.state"):
            found.append(f"{node.lineno}: names {node.value!r}")     # import_module(...)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and \
                not node.attr.startswith("__"):
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id in modules:
                found.append(f"{node.lineno}: uses {ast.unparse(node)} (private)")
        elif isinstance(node, ast.Attribute) and node.attr == "state" and \
                isinstance(node.value, ast.Name) and node.value.id == "chaincode":
            found.append(f"{node.lineno}: uses chaincode.state")
    return found


def test_the_checker_looks_at_the_project_outside_chaincode():
    names = {p.relative_to(ROOT).parts[0] for p in outside_sources()}
    assert {"node", "gateway", "ops", "consensus"} <= names
    assert not names & SKIPPED


def test_no_module_outside_chaincode_reads_its_encodings():
    wrong = [f"{path.relative_to(ROOT)}:{where}" for path in outside_sources()
             for where in encoding_uses(path)]
    assert not wrong, ("the chaincode's encodings are its own: read the state through "
                       "chaincode/queries.py, results through chaincode/results.py, events "
                       "through chaincode/events.py:\n" + "\n".join(wrong))


@pytest.mark.parametrize("source,caught", [
    ("from chaincode import state as st\n", True),
    ("from chaincode import queries, state\n", True),
    ("from chaincode.state import unpack\n", True),
    ("import chaincode.state\n", True),
    ("import chaincode.state as st\n", True),
    ("def f():\n    import chaincode\n    return chaincode.state.unpack\n", True),
    ("from chaincode.results import _TAIL\n", True),
    ("from chaincode import results\nx = results._OK\n", True),
    ("import chaincode.results as r\nx = r._HEAD\n", True),
    ("import importlib\nst = importlib.import_module('chaincode.state')\n", True),
    ("from chaincode import results, queries\nx = results.is_ok, queries.member\n", False),
    ("from chaincode.results import compact_result\n", False),
    ("import collections\nx = collections._sys\n", False),
])
def test_the_checker_sees_a_reach_into_the_encodings(tmp_path, source, caught):
    sample = tmp_path / "sample.py"
    sample.write_text(source)
    assert bool(encoding_uses(sample)) == caught


# ---- the events table ----

def _emitted_kinds() -> dict[str, str]:
    """Every event kind the chaincode's source writes: {"kind": "x", ...} and
    dict(..., kind="x"); kind -> where."""
    found = {}
    for path in sorted((ROOT / "chaincode").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                for k, v in zip(node.keys, node.values):
                    if isinstance(k, ast.Constant) and k.value == "kind" and \
                            isinstance(v, ast.Constant):
                        found[v.value] = f"{path.name}:{node.lineno}"
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "dict":
                for keyword in node.keywords:
                    if keyword.arg == "kind" and isinstance(keyword.value, ast.Constant):
                        found[keyword.value.value] = f"{path.name}:{node.lineno}"
    return found


def test_every_event_kind_the_chaincode_emits_is_in_its_events_table():
    emitted = _emitted_kinds()
    unknown = {k: w for k, w in emitted.items() if k not in events.FIELDS}
    assert not unknown, f"kinds missing from chaincode/events.py: {unknown}"
    assert set(events.KINDS) == set(emitted), set(events.KINDS) - set(emitted)
    assert len(events.KINDS) == len(set(events.KINDS))


def test_the_events_table_is_the_one_docs_transactions_is_generated_from():
    # tests/test_transactions_doc.py checks that table against what each kind emits
    from ops import transactions_doc
    assert transactions_doc.EVENT_FIELDS is events.FIELDS


def test_the_account_fields_are_fields_of_some_event():
    every = {f for always, sometimes in events.FIELDS.values() for f in always + sometimes}
    assert set(events.ACCOUNT_FIELDS) <= every
    for kind, name in events.ACCOUNT_LISTS.items():
        assert name in events.FIELDS[kind][0]
    for kind in events.ARGS_EVENTS:
        assert "args" in events.FIELDS[kind][0]


EVENT_READERS = ("node/store.py", "node/audit/invariants.py", "gateway/chainlog.py",
                 "gateway/stats.py", "gateway/reads.py")


def _compared_kinds(path: Path) -> list[tuple[int, str]]:
    """String constants compared with something called `kind` (kind == "x",
    event["kind"] == "x", event.get("kind") in (...))."""
    def is_kind(node) -> bool:
        if isinstance(node, ast.Name):
            return node.id == "kind"
        if isinstance(node, ast.Attribute):
            return node.attr == "kind"
        if isinstance(node, ast.Subscript):
            return isinstance(node.slice, ast.Constant) and node.slice.value == "kind"
        if isinstance(node, ast.Call):
            return bool(node.args) and isinstance(node.args[0], ast.Constant) and \
                node.args[0].value == "kind"
        return False

    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(is_kind(s) for s in sides):
                for side in sides:
                    for const in ast.walk(side):
                        if isinstance(const, ast.Constant) and isinstance(const.value, str) \
                                and const.value != "kind":
                            found.append((node.lineno, const.value))
    return found


@pytest.mark.parametrize("name", EVENT_READERS)
def test_the_event_kinds_a_reader_looks_for_are_the_chaincodes(name):
    wrong = [f"{name}:{line} {kind!r}" for line, kind in _compared_kinds(ROOT / name)
             if kind not in events.FIELDS]
    assert not wrong, "not an event kind of chaincode/events.py:\n" + "\n".join(wrong)


# ---- the result helpers: the byte-level checks agree with decoding ----

RESULTS = [Result("ab" * 32, "ok", {}, [{"kind": "coin.spent", "from": b"\x01" * 32,
                                          "to": b"\x02" * 32, "amount": 5, "memo": ""}]),
           Result("cd" * 32, "ok"),
           Result("ef" * 32, "insufficient_funds", {"balance": 3, "amount": 5}),
           Result("01" * 32, "okay_but_not_ok"),
           Result("23" * 32, "duplicate")]


@pytest.mark.parametrize("result", RESULTS, ids=lambda r: r.code)
def test_is_ok_and_the_compact_form_agree_with_the_encoding(result):
    encoded = results.encode_result(result)
    decoded = results.decode_result(encoded)
    assert decoded["tx_id"] == result.tx_id and decoded["code"] == result.code
    assert results.is_ok(encoded) == (result.code == "ok")
    compact = results.compact_result(result.tx_id, encoded)
    assert len(compact) == len(encoded) - 41
    assert results.compact_tx_id(compact) == bytes.fromhex(result.tx_id)
    assert results.expand_result(compact) == encoded


def test_ok_count_counts_the_ok_results():
    encoded = [results.encode_result(r) for r in RESULTS]
    assert results.ok_count(encoded) == 2


def test_the_compact_form_refuses_what_is_not_the_result_of_that_transaction():
    encoded = results.encode_result(RESULTS[1])
    with pytest.raises(AssertionError):
        results.compact_result("00" * 32, encoded)


# ---- the paged reads: pages of a PagedReader walk what the whole reads read ----

def _state():
    sys.path.insert(0, str(ROOT / "tests" / "chaincode"))
    from chaincode_harness import ADMIN, Chain, key
    chain = Chain()
    merchant = key("shop")
    chain.ok(ADMIN, "member.register", key=merchant, role="merchant", name="Bakker")
    citizens = [chain.citizen(f"c{i}") for i in range(3)]
    for task_id in ("walk", "task-2", "task-10", "b", "zz9"):
        assert chain.post(task_id).code == "ok"
    for citizen in citizens:
        chain.ok(citizen, "task.claim", task="walk")
        chain.ok(citizen, "task.submit", task="walk", proof=bytes(32))
        chain.ok(ADMIN, "task.approve", task="walk", citizen=citizen)
        chain.ok(citizen, "coin.spend", to=merchant, amount=100, memo="")
    for amount in (10, 20, 30, 40):
        chain.ok(merchant, "coin.redeem", amount=amount)
    return chain.state


def _walk(page, step):
    out, after = [], None
    while True:
        found = page(after, step)
        if not found:
            return out
        out += found
        after = found[-1]


@pytest.mark.parametrize("step", [1, 2, 3, 1000])
def test_the_paged_reads_walk_what_the_whole_reads_read(step):
    state = _state()
    members = _walk(lambda after, n: queries.members_page(
        state, None if after is None else after["key"], n), step)
    assert members == queries.members(state)
    payouts = _walk(lambda after, n: queries.payouts_page(
        state, None if after is None else bytes.fromhex(after["payout"]), n), step)
    assert payouts == queries.payouts(state) and len(payouts) == 4
    ids = _walk(lambda after, n: queries.task_ids_page(state, after, n), step)
    assert sorted(ids, key=queries.natural) == [t["task"] for t in queries.tasks(state, 0)]
    assert ids == ["b", "zz9", "walk", "task-2", "task-10"]     # the keys' order
    assert queries.task_count(state) == 5


def test_the_store_pages_the_state_as_the_in_memory_reader_does(tmp_path):
    from node.store import Store
    state = _state()
    with Store(tmp_path / "store") as store:
        with store.env.begin(write=True, db=store.db["state"]) as txn:
            for k, v in state.items():
                txn.put(k, v)
        keys = [k for k, _ in state.items()]
        prefixes = sorted({k[:2] for k in keys}) + [b""]
        for prefix in prefixes:
            for after in [None, prefix] + [k for k in keys if k.startswith(prefix)][:5]:
                for limit in (0, 1, 3, 10_000):
                    assert store.scan_after(prefix, after, limit) == \
                        state.scan_after(prefix, after, limit), (prefix, after, limit)

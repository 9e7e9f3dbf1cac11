"""A block is executed in one place (node/block.py, run_block): the validators' executor
and the audit both call it, so the audit cannot drift from what validators compute, and
its independence rests on checking every signature and certificate itself. Checked on
the source: outside node/block.py no module of the validator, the gateway or the audit
runs the chaincode over a block, encodes its results or computes a block hash from them.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOME = ROOT / "node" / "block.py"
# names whose call means executing a block, or hashing one from its execution
EXECUTION = {"execute_block", "encode_result", "results_root"}


def _calls(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
            if name in EXECUTION:
                found.append((node.lineno, name))
    return found


def test_only_node_block_executes_a_block():
    wrong = [f"{path.relative_to(ROOT)}:{line} calls {name}"
             for package in ("node", "gateway")
             for path in sorted((ROOT / package).rglob("*.py")) if path != HOME
             for line, name in _calls(path)]
    assert not wrong, "block execution outside node/block.py:\n" + "\n".join(wrong)


def test_the_executor_and_the_audit_both_run_blocks_through_run_block():
    for path in (ROOT / "node" / "executor.py", ROOT / "node" / "audit" / "engine.py"):
        names = {getattr(n.func, "id", None) for n in ast.walk(ast.parse(path.read_text()))
                 if isinstance(n, ast.Call)}
        assert "run_block" in names, f"{path.relative_to(ROOT)} does not call run_block"

"""chaincode/ is pure: it imports only an allowed list and calls no IO, clock or chance.

This is stricter than tests/test_architecture.py's deny list: a new import must be added
here on purpose. Floats and builtins that reach the outside world are refused too.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "chaincode"
ALLOWED_IMPORTS = {"__future__", "bisect", "dataclasses", "hashlib", "msgpack", "re",
                   "struct", "typing"}
FORBIDDEN_CALLS = {"open", "print", "input", "eval", "exec", "compile", "__import__",
                   "hash", "id", "breakpoint", "globals", "vars", "float"}


def problems(source: str, name: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] not in ALLOWED_IMPORTS:
                    found.append(f"{name}:{node.lineno} imports {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            if node.module.split(".")[0] not in ALLOWED_IMPORTS:
                found.append(f"{name}:{node.lineno} imports {node.module}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in FORBIDDEN_CALLS:
                found.append(f"{name}:{node.lineno} calls {node.func.id}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, float):
            found.append(f"{name}:{node.lineno} has a float")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            found.append(f"{name}:{node.lineno} divides into a float")
    return found


def test_chaincode_imports_no_io_clock_or_randomness_and_uses_no_floats():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        wrong += problems(path.read_text(), path.name)
    assert not wrong, "chaincode/ must stay pure:\n" + "\n".join(wrong)


def test_the_checker_sees_impure_code():
    sample = ("import time\nfrom random import choice\nimport os.path\n"
              "x = open('f')\ny = 1.5\nz = 3 / 2\n")
    assert len(problems(sample, "sample")) == 6

"""The shape rules of consensus/ that no scenario would notice breaking:

1. Dispatch. `Replica.receive` looks a message's class up in `Replica.HANDLERS`, one line
   per kind: every class of consensus/messages.py that a replica receives has a handler
   there, and a message of any other class is dropped.
2. Encapsulation. A module of consensus/ changes a collaborator's data only through the
   collaborator's methods: it never assigns to, deletes from or mutates (append, pop,
   clear, ...) a field of an object it holds (`self.fetcher.wanted = {}`,
   `del self.fetcher.wanted[h]`, `self.requests.queue.pop(k)`), nor a field of what a
   collaborator's method or field handed it (`want = self.fetcher.answer(...)`, then
   `want.due_tick = t`). A collaborator is an attribute of `self` that some class of
   consensus/ sets to a new instance (`self.fetcher = BatchFetcher(...)`).
"""
from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from consensus import messages
from consensus.messages import MESSAGE_TYPES, PreparedProof, Prepare, Reproposal
from consensus.replica import Replica
from tests.consensus.cluster import Cluster

CONSENSUS = Path(__file__).resolve().parents[2] / "consensus"

# message classes that travel only inside other messages, never received on their own
EMBEDDED = {PreparedProof, Reproposal}

# the replica's own output record (consensus/api.py, Ready): a plain dataclass of lists
# that the replica fills during a step and hands over whole in take_ready
OWN_RECORDS = {"ready"}

MUTATORS = {"append", "appendleft", "extend", "extendleft", "insert", "pop", "popleft",
            "popitem", "remove", "discard", "clear", "add", "update", "setdefault",
            "sort", "reverse", "rotate", "__setitem__", "__delitem__"}


# ---- 1. dispatch ----------------------------------------------------------------------

def message_classes() -> set[type]:
    return {obj for obj in vars(messages).values()
            if isinstance(obj, type) and obj.__module__ == messages.__name__}


def test_every_message_class_a_replica_receives_has_a_handler():
    received = message_classes() - EMBEDDED
    assert received == set(MESSAGE_TYPES), \
        "a new message class: add it to MESSAGE_TYPES (or EMBEDDED here if never sent alone)"
    assert set(Replica.HANDLERS) == received, "a message class without a handler"
    for kind, name in Replica.HANDLERS.items():
        assert callable(getattr(Replica, name, None)), f"{kind.__name__}: no {name}"


def placeholder(kind: type) -> object:
    return kind(*(None for _ in dataclasses.fields(kind)))


def test_receive_calls_the_handler_of_the_exact_class_and_drops_any_other():
    calls = []

    class Spy(Replica):
        pass
    for name in Replica.HANDLERS.values():
        setattr(Spy, name, lambda self, sender, message, name=name:
                calls.append((name, sender, message)))
    c = Cluster()
    replica = c.replica(1)
    spy = Spy(c.config, 1, c.keys.signer(1), c.registry.inspect, [], 0,
              replica.executed_hash, 0)
    spy.take_ready()
    for kind, name in Replica.HANDLERS.items():
        message = placeholder(kind)
        spy.receive(2, message)
        assert calls.pop() == (name, 2, message)

    class Other(Prepare):
        pass
    for message in (object(), placeholder(Other), placeholder(PreparedProof)):
        spy.receive(2, message)
    spy.receive(1, placeholder(Prepare))          # from itself
    spy.receive(c.config.n, placeholder(Prepare))  # from no replica
    assert calls == [] and spy.take_ready().empty()


# ---- 2. encapsulation -----------------------------------------------------------------

def collaborators(trees: list[ast.Module]) -> set[str]:
    """Attributes of self set to a new instance (`self.x = SomeClass(...)`) anywhere."""
    found = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                targets, value = [node.target], node.value
            else:
                continue
            if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
                    and value.func.id[:1].isupper()):
                continue
            for target in targets:
                if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
                        and target.value.id == "self":
                    found.add(target.attr)
    return found - OWN_RECORDS


def path_of(node: ast.expr) -> list[str] | None:
    """`self.a.b[k].c` -> ["self", "a", "b", "c"]: the names from the base, subscripts
    skipped; None when the base is not a plain name."""
    names = []
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        if isinstance(node, ast.Attribute):
            names.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(names)]


def changed(node: ast.AST) -> list[ast.expr]:
    """What a statement or call changes: a field or item an assignment or deletion
    targets (`a.f = v`, `a.f[k] = v`, `del a.f[k]`; not a plain name), and the object a
    mutating method is called on (`a.f.append(v)`)."""
    if isinstance(node, (ast.Assign, ast.Delete)):
        targets = node.targets
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        targets = [node.target]
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
            node.func.attr in MUTATORS:
        return [node.func.value]
    else:
        return []
    flat = []
    for target in targets:
        flat += target.elts if isinstance(target, ast.Tuple) else [target]
    return [t for t in flat if isinstance(t, (ast.Attribute, ast.Subscript))]


def handed_out(function: ast.AST, held: set[str]) -> set[str]:
    """Local names bound to what a collaborator returned or holds (`w = self.c.m(...)`,
    `w = self.c.f`)."""
    names = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                isinstance(node.targets[0], ast.Name):
            value = node.value.func if isinstance(node.value, ast.Call) else node.value
            path = path_of(value)
            if path and len(path) >= 3 and path[0] == "self" and path[1] in held:
                names.add(node.targets[0].id)
    return names


def violations(folder: Path) -> list[str]:
    trees = {path: ast.parse(path.read_text(encoding="utf-8"))
             for path in sorted(folder.glob("*.py"))}
    held = collaborators(list(trees.values()))
    found = []
    for path, tree in trees.items():
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            local = handed_out(function, held)
            for node in ast.walk(function):
                for target in changed(node):
                    names = path_of(target)
                    if names is None:
                        continue
                    # a field of a collaborator, or of what one handed out
                    if (names[0] == "self" and len(names) >= 3 and names[1] in held) or \
                            (names[0] in local and len(names) >= 2):
                        found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)[:80]}")
    return sorted(set(found))


def test_no_module_changes_a_collaborators_data_from_outside():
    assert violations(CONSENSUS) == []


BAD = ["self.fetcher.wanted = {}", "self.fetcher.wanted[h] = w", "del self.fetcher.wanted[h]",
       "self.requests.pending[k].x = 1", "self.requests.queue.pop(k)",
       "self.requests.count += 1", "self.fetcher.wanted.clear()",
       "w = self.fetcher.answer(s)\n    w.due_tick = 3"]
GOOD = ["self.fetcher.want(h)", "self.wanted[h].due_tick = 3", "self.slots = {}",
        "x = self.requests.pending", "self.ready.persist.append(op)",
        "w = self.slots.get(h)\n    w.since = 1"]


@pytest.mark.parametrize("line,bad", [(b, True) for b in BAD] + [(g, False) for g in GOOD])
def test_the_check_flags_exactly_the_writes_into_a_collaborator(tmp_path, line, bad):
    (tmp_path / "owner.py").write_text(
        "class Owner:\n"
        "    def __init__(self):\n"
        "        self.fetcher = Fetcher()\n        self.requests = Pool()\n"
        "        self.ready = Ready()\n\n"
        f"def step(self):\n    {line}\n")
    assert bool(violations(tmp_path)) == bad

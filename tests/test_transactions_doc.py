"""docs/transactions.md is what ops/transactions_doc.py generates from the chaincode, and
the generator's own tables (types, events, examples, cross-arg rules) are what the
chaincode does: the page cannot drift."""
from __future__ import annotations

import base64
import hashlib
import re
import sys
from pathlib import Path

import pytest
from nacl.signing import VerifyKey

from chaincode import args as cargs
from chaincode import constitution, v1
from protocol import codec
from node.envelope import open_envelope
from protocol.envelope import TX_TAG, make_body, seal, tx_id_of
from node.keys import Keypair
from ops import transactions_doc as gen

sys.path.insert(0, str(Path(__file__).resolve().parent / "chaincode"))
from chaincode_harness import ADMIN, DAY_MS, STEWARD, Chain, key  # noqa: E402

DOC = gen.DOC


def test_the_committed_page_is_what_the_generator_writes():
    assert DOC.is_file(), f"docs/transactions.md is missing: run `{gen.WRITE_COMMAND}`"
    assert DOC.read_text(encoding="utf-8") == gen.generate(), (
        f"docs/transactions.md differs from what the chaincode's tables give: run "
        f"`{gen.WRITE_COMMAND}` and commit the page")


def test_every_kind_of_the_schemas_has_its_section():
    text = DOC.read_text(encoding="utf-8")
    headings = re.findall(r"^## `([a-z.]+)`$", text, re.M)
    assert headings == list(cargs.SCHEMAS)
    assert set(cargs.SCHEMAS) == set(v1.KINDS) == set(gen.EVENTS) == set(gen.EXAMPLES)
    for kind, schema in cargs.SCHEMAS.items():
        section = text.split(f"## `{kind}`\n", 1)[1].split("\n## ", 1)[0]
        for name in schema:
            assert f"| `{name}` |" in section, (kind, name)


# ---- the types: each described range is the check's, probed at its bounds ----

def _checks():
    return {id(check): (check, kind, name) for kind, schema in cargs.SCHEMAS.items()
            for name, (check, _) in schema.items()}.values()


@pytest.mark.parametrize("check,kind,name", list(_checks()),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_each_described_type_is_what_the_check_accepts(check, kind, name):
    spec = gen.type_of(check)
    if spec[0] == "int":
        _, least, most, _ = spec
        assert check(least) and check(most)
        assert not check(least - 1) and not check(most + 1)
        assert not check(True) and not check(str(least))
    elif spec[0] == "text":
        _, least, most = spec
        assert check("é" * most) and check("x" * max(least, 1))
        assert not check("x" * (most + 1)) and not check(b"x")
        assert check("") == (least == 0)
    elif spec[0] == "choice":
        assert all(check(v) for v in spec[1])
        assert not check("nobody") and not check(spec[1][0].encode())
    elif spec[0] == "bytes":
        assert check(bytes(spec[1])) and not check(bytes(spec[1] - 1))
        assert not check(bytes(spec[1] + 1)) and not check("00" * spec[1])
    elif spec[0] == "id":
        assert check("a") and check("A-z._9" + "x" * 58) and not check("x" * 65)
        assert not check("") and not check("a b") and not check("é")
    elif spec[0] == "hexid":
        assert check("0" * 64) and check("f" * 64) and not check("F" * 64)
        assert not check("0" * 63) and not check("0" * 65)
    elif spec[0] == "thresholds":
        good = {k: constitution.LEAST[k] for k in constitution.CLASSES}
        assert check(good)
        assert check({k: constitution.MAX_ORGANISATIONS for k in constitution.CLASSES})
        assert not check({**good, "constitution.set": 0})
        assert not check({**good, "policy.set": constitution.MAX_ORGANISATIONS + 1})
        assert not check({k: v for k, v in good.items() if k != "policy.set"})
    elif spec[0] == "organisations":
        most = constitution.MAX_ORGANISATIONS
        assert check(["a"]) and check([f"o{i}" for i in range(most)])
        assert not check([]) and not check([f"o{i}" for i in range(most + 1)])
        assert not check(["a", "a"]) and not check(["a b"])
    elif spec[0] == "action_args":
        assert check({}) and not check([])
    elif spec[0] == "validators":
        def one(i, **change):
            return dict({"name": f"v{i}", "key": bytes([i]) * 32, "organisation": "o"},
                        **change)
        most = cargs.MAX_VALIDATORS
        assert check([one(0)]) and check([one(i) for i in range(4)])
        assert check([one(i) for i in range(most)])
        assert not check([]) and not check([one(i) for i in range(most + 1)])
        assert not check([one(i) for i in range(2)]) and not check([one(i) for i in range(3)])
        assert not check([one(0, name="v 0")]) and not check([one(0, organisation="")])
        assert not check([one(0, key=bytes(31))]) and not check([one(0, key="00" * 32)])
        assert not check([one(0), one(1), one(2), one(3, name="v0")])        # a name twice
        assert not check([one(0), one(1), one(2), one(3, key=bytes([0]) * 32)])  # a key twice
        assert not check([{"name": "v0", "key": bytes(32)}])
        assert not check([dict(one(0), port=1)]) and not check({"v0": one(0)})
    else:
        raise AssertionError(spec)


def test_an_unknown_check_is_refused_by_name():
    def novel(v):
        return True
    with pytest.raises(KeyError, match="novel"):
        gen.type_of(novel)


# ---- examples and the rules across args ----

@pytest.mark.parametrize("kind", list(cargs.SCHEMAS))
def test_each_example_is_valid_args(kind):
    assert cargs.valid(kind, gen.EXAMPLE_SIGNER, gen.EXAMPLES[kind])


# args of which each passes its own check, but that break the rule across args
COUNTEREXAMPLES = {
    "member.register": {"key": gen.K_NEW, "role": "merchant", "age_band": "21plus",
                        "area": "GMS"},
    "member.update": {"key": gen.K_CITIZEN},
    "policy.set": {**gen.EXAMPLES["policy.set"], "monthly_cap": 220_001},
    "coin.spend": {"to": gen.EXAMPLE_SIGNER, "amount": 250},
    "gov.propose": {**gen.EXAMPLES["gov.propose"], "args": {"key": gen.K_NEW}},
}


@pytest.mark.parametrize("kind", list(gen.CROSS_RULES))
def test_each_rule_across_args_is_one_the_chaincode_holds(kind):
    assert set(COUNTEREXAMPLES) == set(gen.CROSS_RULES)
    bad = COUNTEREXAMPLES[kind]
    schema = cargs.SCHEMAS[kind]
    assert all(name in schema and schema[name][0](value) for name, value in bad.items())
    assert all(name in bad for name, (_, required) in schema.items() if required)
    assert not cargs.valid(kind, gen.EXAMPLE_SIGNER, bad)


def test_the_governed_classes_are_the_constitutions():
    for role, klass in (("citizen", "member.citizen"), ("merchant", "member.merchant"),
                        ("reviewer", "member.privileged"), ("admin", "member.privileged"),
                        ("auditor", "member.privileged"), ("steward", "member.privileged")):
        assert constitution.class_of(None, "member.register", {"role": role}) == klass
        assert f"`{klass}`" in gen.CLASS_NOTES["member.register"]
    chain = Chain()
    citizen, merchant = chain.citizen("c"), chain.merchant("m")
    state = chain.state
    assert constitution.class_of(state, "member.revoke", {"key": citizen}) is None
    assert constitution.class_of(state, "member.revoke", {"key": merchant}) == "member.merchant"
    assert constitution.class_of(state, "member.revoke", {"key": ADMIN}) == "member.privileged"
    assert constitution.class_of(state, "member.recover", {"old": citizen}) == "member.recover"
    assert constitution.class_of(state, "member.recover", {"old": ADMIN}) == "member.privileged"
    assert set(gen.CLASS_NOTES) == set(constitution.GOVERNABLE_KINDS)


def test_own_codes_reads_the_handlers_in_order():
    assert gen.own_codes(v1.KINDS["coin.spend"][0]) == ["not_a_merchant", "insufficient_funds"]
    assert gen.own_codes(v1.KINDS["gov.withdraw"][0]) == ["not_found", "unauthorized",
                                                          "invalid_state"]
    assert gen.own_codes(v1.KINDS["task.claim"][0]) == [
        "not_found", "exists", "invalid_state", "deadline_passed", "task_full",
        "hourly_rate_exceeded", "cap_exceeded"]


# ---- events: one successful transaction of each kind, against the table ----

def _matches(kind: str, events: list[dict]) -> bool:
    """Whether the event kinds are one of EVENTS[kind]'s outcomes."""
    emitted = [e["kind"] for e in events]
    return any(_fits(pattern, emitted) for _, pattern in gen.EVENTS[kind])


def _fits(pattern: list[str], emitted: list[str]) -> bool:
    if not pattern:
        return not emitted
    head, rest = pattern[0], pattern[1:]
    if head == "ACTION":
        return True                  # the action's events follow; checked on their own
    name = head.rstrip("?*")
    if head.endswith("*"):
        return _fits(rest, emitted) or (emitted[:1] == [name] and _fits(pattern, emitted[1:]))
    if head.endswith("?") and _fits(rest, emitted):
        return True
    return emitted[:1] == [name] and _fits(rest, emitted[1:])


def _run_every_kind():
    """(kind, events) of one successful transaction of each kind, and a few more cases."""
    seen = []
    chain = Chain()
    ok = chain.ok
    citizen = chain.citizen("citizen")
    seen.append(("member.register", ok(ADMIN, "member.register", key=key("merchant"),
                                       role="merchant", name="Bakker").events))
    merchant = key("merchant")
    seen.append(("member.update", ok(ADMIN, "member.update", key=citizen,
                                     area="HRL-Noord").events))
    seen.append(("task.post", chain.post("walk").events))
    seen.append(("task.claim", ok(citizen, "task.claim", task="walk").events))
    seen.append(("task.withdraw", ok(citizen, "task.withdraw", task="walk").events))
    ok(citizen, "task.claim", task="walk")
    seen.append(("task.submit", ok(citizen, "task.submit", task="walk",
                                   proof=bytes(32)).events))
    seen.append(("task.approve", ok(ADMIN, "task.approve", task="walk",
                                    citizen=citizen).events))
    assert chain.post("bench").code == "ok"
    ok(citizen, "task.claim", task="bench")
    ok(citizen, "task.submit", task="bench", proof=bytes(32))
    seen.append(("task.reject", ok(ADMIN, "task.reject", task="bench", citizen=citizen,
                                   reason="No photo").events))
    other = chain.citizen("other")
    assert chain.post("park").code == "ok"
    ok(other, "task.claim", task="park")
    seen.append(("task.cancel", ok(ADMIN, "task.cancel", task="park").events))
    spend = ok(citizen, "coin.spend", to=merchant, amount=300, memo="Koffie")
    seen.append(("coin.spend", spend.events))
    seen.append(("coin.refund", ok(merchant, "coin.refund", spend=spend.tx_id,
                                   amount=50).events))
    redeem = ok(merchant, "coin.redeem", amount=200)
    seen.append(("coin.redeem", redeem.events))
    seen.append(("payout.confirm", ok(ADMIN, "payout.confirm", payout=redeem.tx_id,
                                      reference="NL-1").events))
    # recoveries: an admin's delayed one, cancelled by a steward; another completed
    seen.append(("member.recover", ok(ADMIN, "member.recover", old=other,
                                      new=key("other-2")).events))
    seen.append(("recovery.cancel", ok(STEWARD, "recovery.cancel", old=other).events))
    ok(ADMIN, "member.recover", old=citizen, new=key("citizen-2"))
    chain.time_ms += 3 * DAY_MS
    seen.append(("recovery.complete", ok(ADMIN, "recovery.complete", old=citizen).events))
    seen.append(("member.revoke", ok(ADMIN, "member.revoke", key=key("citizen-2")).events))
    # governance with one organisation (thresholds 1): enacted at once
    policy = dict(gen.EXAMPLES["policy.set"], programme_yearly_cap=100_000)
    seen.append(("gov.propose", chain.propose(STEWARD, "policy.set", **policy).events))
    seen.append(("policy.set", chain.governed_ok("policy.set", **policy).events))
    seen.append(("member.recover", chain.governed_ok("member.recover", old=other,
                                                     new=key("other-3")).events))
    seen.append(("rules.activate", chain.governed_ok("rules.activate", version=2,
                                                     height=chain.height + 1000).events))
    seen.append(("validators.set", chain.governed_ok("validators.set", validators=[
        {"name": "v1", "key": key("v1"), "organisation": "city"}]).events))
    law = constitution.default_thresholds(1)
    seen.append(("constitution.set", chain.governed_ok("constitution.set",
                                                       thresholds=law).events))
    seen.append(("gov.propose", chain.propose(STEWARD, "member.register", key=key("s"),
                                              role="steward",
                                              organisation="nowhere").events))
    # two organisations (thresholds 2): a proposal stays open until the other approves
    second = key("steward-2")
    two = Chain(organisations=({"id": "city", "stewards": [STEWARD]},
                               {"id": "library", "stewards": [second]}))
    opened = two.propose(STEWARD, "policy.set", **policy)
    seen.append(("gov.propose", opened.events))
    seen.append(("gov.approve", two.ok(second, "gov.approve",
                                       proposal=opened.tx_id).events))
    other_proposal = two.propose(STEWARD, "policy.set", **policy)
    seen.append(("gov.withdraw", two.ok(STEWARD, "gov.withdraw",
                                        proposal=other_proposal.tx_id).events))
    return seen


def test_the_events_table_is_what_each_kind_emits():
    seen = _run_every_kind()
    assert {kind for kind, _ in seen} == set(cargs.SCHEMAS)
    event_kinds = set()
    for kind, events in seen:
        assert events and _matches(kind, events), (kind, [e["kind"] for e in events])
        for event in events:
            always, sometimes = gen.EVENT_FIELDS[event["kind"]]
            fields = set(event) - {"kind"}
            assert set(always) <= fields <= set(always) | set(sometimes), (kind, event)
            event_kinds.add(event["kind"])
    assert event_kinds == set(gen.EVENT_FIELDS), set(gen.EVENT_FIELDS) - event_kinds


def test_the_pattern_matcher_refuses_what_the_table_does_not_say():
    assert not _matches("coin.spend", [{"kind": "coin.refunded"}])
    assert not _matches("coin.spend", [{"kind": "coin.spent"}, {"kind": "coin.spent"}])
    assert _matches("member.revoke", [{"kind": "member.revoked"}])
    assert not _matches("member.revoke", [{"kind": "member.recovery_cancelled"}])


# ---- the worked example ----

def test_the_worked_example_is_what_node_envelope_makes_and_verifies():
    ex = gen.worked_example()
    pair = Keypair.from_seed(bytes(range(32)))
    assert ex["public"] == pair.public
    body = make_body(gen.EXAMPLE_CHAIN, gen.EXAMPLE_KIND, pair.public, gen.EXAMPLE_NONCE,
                     gen.EXAMPLE_ARGS)
    assert ex["body"] == body == codec.pack(ex["fields"])
    assert ex["signing_input"] == TX_TAG + body
    envelope = seal(pair, body)
    assert ex["envelope"] == envelope
    assert ex["signature"] == codec.unpack(envelope)[1]
    VerifyKey(pair.public).verify(TX_TAG + body, ex["signature"])    # raises if bad
    assert ex["tx_id"] == tx_id_of(body) == hashlib.sha256(body).hexdigest()
    assert ex["envelope_hash"] == hashlib.sha256(envelope).hexdigest()
    opened = open_envelope(envelope, gen.EXAMPLE_CHAIN)
    assert opened.tx.tx_id == ex["tx_id"] and opened.tx.kind == "coin.spend"
    assert opened.tx.signer == pair.public and opened.tx.args == gen.EXAMPLE_ARGS
    assert cargs.valid("coin.spend", pair.public, opened.tx.args)


def test_the_page_shows_the_example_bytes():
    text = DOC.read_text(encoding="utf-8")
    ex = gen.worked_example()
    flat = "".join(text.split())
    for name in ("body", "signature", "envelope"):
        assert ex[name].hex() in flat, name
    assert base64.b64encode(ex["envelope"]).decode() in flat
    assert f"tx id          {ex['tx_id']}" in text
    assert "public test key" in text


def test_the_pages_python_snippet_makes_the_same_envelope():
    text = DOC.read_text(encoding="utf-8")
    snippet = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    scope: dict = {}
    exec(snippet, scope)  # noqa: S102 - the page's own example, from the repository
    ex = gen.worked_example()
    assert scope["envelope"] == ex["envelope"] and scope["tx_id"] == ex["tx_id"]


def test_the_generator_rewrites_the_page(tmp_path, monkeypatch, capsys):
    target = tmp_path / "transactions.md"
    monkeypatch.setattr(gen, "DOC", target)
    assert gen.main(["--write"]) == 0
    assert target.read_text(encoding="utf-8") == gen.generate()
    assert gen.main([]) == 0
    assert capsys.readouterr().out.endswith(gen.generate())

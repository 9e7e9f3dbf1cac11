"""Argument checking: the schemas, and the unrolled check of the hot kind agreeing with them."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from chaincode import args as a

SIGNER = b"s" * 32


def generic_spend_check(signer: bytes, values) -> bool:
    """valid() as it would be without the unrolled fast path for coin.spend."""
    if type(values) is not dict:
        return False
    schema = a.SCHEMAS["coin.spend"]
    for name, value in values.items():
        entry = schema.get(name)
        if entry is None or not entry[0](value):
            return False
    if any(required and name not in values for name, (_, required) in schema.items()):
        return False
    return values["to"] != signer


scalars = st.one_of(st.none(), st.booleans(), st.integers(-2, 2**53 + 1),
                    st.binary(max_size=33), st.text(max_size=142), st.floats(),
                    st.just(b"s" * 32), st.just(b"m" * 32))
arg_maps = st.dictionaries(st.sampled_from(["to", "amount", "memo", "tip"]), scalars,
                           max_size=4)


@settings(max_examples=400, deadline=None)
@given(st.one_of(arg_maps, st.lists(scalars, max_size=2)))
def test_unrolled_spend_check_agrees_with_the_schema(values):
    assert a.valid("coin.spend", SIGNER, values) == generic_spend_check(SIGNER, values)


def test_text_counts_code_points_not_bytes():
    check = a.text(3)
    assert check("ééé") and not check("éééé") and not check("")
    assert a.text(3, optional=True)("")


def test_ids_are_1_to_64_of_the_allowed_characters():
    assert a.ident("BU09170000") and a.ident("public-space") and a.ident("a.b_c")
    assert not a.ident("") and not a.ident("a/b") and not a.ident("x" * 65)
    assert not a.ident("abc\n")


def test_transaction_ids_are_64_lowercase_hex():
    assert a.tx_id("0f" * 32)
    assert not a.tx_id("0F" * 32) and not a.tx_id("0f" * 31) and not a.tx_id("0f" * 32 + "\n")


def test_booleans_are_not_integers():
    assert not a.amount(True) and not a.cap(False) and not a.year(True)


def test_every_kind_of_the_contract_has_a_schema():
    assert sorted(a.SCHEMAS) == sorted([
        "member.register", "member.update", "member.revoke", "member.recover",
        "policy.set", "task.post", "task.claim", "task.withdraw", "task.submit",
        "task.approve", "task.reject", "task.cancel", "coin.spend", "coin.refund",
        "coin.redeem", "payout.confirm", "recovery.cancel", "recovery.complete",
        "constitution.set", "gov.propose", "gov.approve", "gov.withdraw", "rules.activate",
        "validators.set"])


def test_every_kind_with_a_schema_has_a_handler_and_the_reverse():
    from chaincode.v1 import KINDS
    assert set(KINDS) == set(a.SCHEMAS)

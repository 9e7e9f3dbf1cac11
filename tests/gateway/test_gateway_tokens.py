"""Read tokens: who may read what, and every way a token can be bad (contract: "Reading
personal data")."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as s

from gateway_kit import new_key, now_ms
from gateway.auth import TOKEN_LIFETIME_MS, Tokens
from protocol.token import make_token, token_message
from gateway.problems import Problem


async def test_own_token_reads_own_account_and_not_anothers(chain):
    alice, bob = await chain.member("citizen"), await chain.member("citizen")
    await chain.get(f"/v1/accounts/{alice.public.hex()}", alice)
    await chain.get(f"/v1/accounts/{alice.public.hex()}/history", alice)
    await chain.get(f"/v1/accounts/{alice.public.hex()}/statement", alice, year=2026)
    body = await chain.get(f"/v1/accounts/{alice.public.hex()}", bob, expect=403)
    assert body["code"] == "forbidden"
    await chain.get(f"/v1/accounts/{alice.public.hex()}/history", bob, expect=403)
    await chain.get("/v1/events", bob, expect=403)


async def test_admin_reviewer_auditor_and_validator_tokens_read_everything(chain, node):
    alice = await chain.member("citizen")
    reviewer, auditor = await chain.member("reviewer"), await chain.member("auditor")
    for reader in (chain.admin, reviewer, auditor, node.keypair):
        await chain.get(f"/v1/accounts/{alice.public.hex()}", reader)
        await chain.get("/v1/events", reader)
        await chain.get("/v1/blocks", reader)
        await chain.get("/v1/payouts", reader)


async def test_a_revoked_auditor_reads_nothing_more(chain):
    alice, auditor = await chain.member("citizen"), await chain.member("auditor")
    await chain.govern("member.revoke", {"key": auditor.public})
    await chain.get(f"/v1/accounts/{alice.public.hex()}", auditor, expect=403)


async def test_missing_expired_future_forged_and_malformed_tokens_are_401(chain, client):
    alice = await chain.member("citizen")
    path = f"/v1/accounts/{alice.public.hex()}"
    assert (await chain.get(path, expect=401))["code"] == "unauthenticated"
    old = now_ms() - TOKEN_LIFETIME_MS - 60_000
    for headers in (chain.auth(alice, old), chain.auth(alice, now_ms() + 2 * TOKEN_LIFETIME_MS)):
        response = await client.get(path, headers=headers)
        assert response.status == 401
        assert (await response.json(content_type=None))["code"] == "unauthenticated"
    good = make_token(alice, chain.chain, now_ms())
    key, ms, sig = good.split(".")
    forged = f"{key}.{ms}.{new_key().sign(token_message(chain.chain, ms)).hex()}"
    other_chain = make_token(alice, "another-chain", now_ms())
    for token in (forged, other_chain, "x", f"{key}.{ms}", f"{key}.0{ms}.{sig}",
                  f"{key.upper()}.{ms}.{sig}", f"{key}.-{ms}.{sig}", good + "."):
        response = await client.get(path, headers={"Authorization": f"Stadsmunt {token}"})
        assert response.status == 401, token
        assert response.headers["Content-Type"].startswith("application/problem+json")
    response = await client.get(path, headers={"Authorization": f"Bearer {good}"})
    assert response.status == 401


async def test_token_in_the_query_string_works_like_the_header(chain, client):
    alice = await chain.member("citizen")
    token = make_token(alice, chain.chain, now_ms())
    response = await client.get(f"/v1/accounts/{alice.public.hex()}", params={"auth": token})
    assert response.status == 200
    response = await client.get(f"/v1/accounts/{alice.public.hex()}",
                                params={"auth": token[:-1] + ("1" if token[-1] == "0" else "0")})
    assert response.status == 401


async def test_an_unknown_account_is_404_only_for_who_may_read_it(chain):
    stranger = new_key()
    await chain.get(f"/v1/accounts/{stranger.public.hex()}", expect=401)
    await chain.get(f"/v1/accounts/{stranger.public.hex()}", stranger, expect=404)
    await chain.get(f"/v1/accounts/{stranger.public.hex()}", chain.admin, expect=404)


# ---- the token check itself, as properties ----

CHAIN = "heerlen-test"
KEY = new_key()
NOW = 1_760_000_000_000


def _tokens() -> Tokens:
    return Tokens(CHAIN, None, clock_ms=lambda: NOW)


@given(s.integers(min_value=NOW - TOKEN_LIFETIME_MS, max_value=NOW + TOKEN_LIFETIME_MS))
@settings(max_examples=50, deadline=None)
def test_a_token_within_five_minutes_names_its_key(ms):
    assert _tokens().key_of(make_token(KEY, CHAIN, ms)) == KEY.public


@given(s.integers(min_value=0, max_value=10**15).filter(
    lambda ms: abs(ms - NOW) > TOKEN_LIFETIME_MS))
@settings(max_examples=50, deadline=None)
def test_a_token_outside_five_minutes_is_refused(ms):
    with pytest.raises(Problem) as refused:
        _tokens().key_of(make_token(KEY, CHAIN, ms))
    assert refused.value.status == 401


@given(s.integers(min_value=0, max_value=200), s.characters(codec="ascii"))
@settings(max_examples=200, deadline=None)
def test_changing_any_character_of_a_token_makes_it_401_or_leaves_it_equal(where, char):
    good = make_token(KEY, CHAIN, NOW)
    where %= len(good)
    changed = good[:where] + char + good[where + 1:]
    tokens = _tokens()
    if changed == good:
        assert tokens.key_of(changed) == KEY.public
        return
    with pytest.raises(Problem) as refused:
        tokens.key_of(changed)
    assert refused.value.status == 401


@given(s.text(max_size=300))
@settings(max_examples=200, deadline=None)
def test_any_text_as_a_token_is_refused_with_401(text):
    with pytest.raises(Problem) as refused:
        _tokens().key_of(text)
    assert refused.value.status == 401


def test_a_token_is_verified_once_then_remembered():
    tokens = _tokens()
    token = make_token(KEY, CHAIN, NOW)
    tokens.key_of(token)
    assert token in tokens._verified
    assert tokens.key_of(token) == KEY.public


def test_a_token_checked_once_still_expires_on_time():
    """A verified token is remembered so that paging costs one signature check, but the
    memory never outlives the token: five minutes after its time it is refused."""
    clock = {"ms": 1_790_000_000_000}
    tokens = Tokens("heerlen-test", None, clock_ms=lambda: clock["ms"])
    key = new_key()
    token = make_token(key, "heerlen-test", clock["ms"])
    assert tokens.key_of(token) == key.public
    clock["ms"] += TOKEN_LIFETIME_MS
    assert tokens.key_of(token) == key.public            # the last valid millisecond
    clock["ms"] += 1
    with pytest.raises(Problem) as refused:
        tokens.key_of(token)
    assert refused.value.status == 401

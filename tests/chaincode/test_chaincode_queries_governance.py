"""The read side of governance: the constitution, proposals with their status at a time
and the approvals that count now, and the keys a recovery or a proposal names."""
from __future__ import annotations

from chaincode import queries
from chaincode_harness import ADMIN, DAY_MS, HOUR_MS, Chain, key

A0, A1, B0, C0 = (key(n) for n in ("view-a0", "view-a1", "view-b0", "view-c0"))
THREE = [{"id": "a", "stewards": [A0, A1]}, {"id": "b", "stewards": [B0]},
         {"id": "c", "stewards": [C0]}]


def policy(year: int) -> dict:
    return dict(year=year, hourly_cap_21plus=600, hourly_cap_under21=400, monthly_cap=3000,
                yearly_cap=9000)


def test_the_constitution_names_active_stewards_and_validators_per_organisation():
    chain = Chain(organisations=THREE)
    law = queries.constitution(chain.state)
    assert [(o["id"], o["stewards"], o["validators"]) for o in law["organisations"]] == [
        ("a", sorted([A0, A1]), ["v0"]), ("b", [B0], []), ("c", [C0], [])]
    assert law["thresholds"]["constitution.set"] == 3 and law["recovery_delay_ms"] == 3 * DAY_MS
    assert queries.steward_count(chain.state) == 4


def test_proposals_come_by_height_then_id_with_their_status_at_a_time():
    chain = Chain(organisations=THREE)
    ids = []
    for year in (2026, 2027):
        ids.append(chain.propose(A0, "policy.set", **policy(year)).tx_id)
    soon = chain.propose(B0, "policy.set", expires=chain.time_ms + HOUR_MS,
                         **policy(2028)).tx_id
    block = chain.run([chain.tx(C0, "gov.propose", action="policy.set", args=policy(2029),
                                expires=chain.time_ms + DAY_MS),
                       chain.tx(A1, "gov.propose", action="policy.set", args=policy(2030),
                                expires=chain.time_ms + DAY_MS)])
    same = sorted(r.tx_id for r in block.results)
    now = chain.time_ms
    every, more = queries.proposals(chain.state, now)
    assert [p["id"] for p in every] == ids + [soon] + same and more is None
    first, after = queries.proposals(chain.state, now, limit=2)
    assert [p["id"] for p in first] == ids and after == (2, bytes.fromhex(ids[1]))
    rest, _ = queries.proposals(chain.state, now, after=after)
    assert [p["id"] for p in rest] == [soon] + same
    later = now + HOUR_MS
    assert [p["id"] for p in queries.proposals(chain.state, later, "expired")[0]] == [soon]
    assert soon not in [p["id"] for p in queries.proposals(chain.state, later, "open")[0]]
    assert queries.proposal(chain.state, bytes.fromhex(soon), now)["status"] == "open"
    assert queries.proposal(chain.state, bytes(32), now) is None


def test_approvals_count_while_their_stewards_are_active():
    chain = Chain(organisations=THREE)
    law = queries.constitution(chain.state)["thresholds"]        # constitution.set: all 3
    proposal = chain.propose(A1, "constitution.set", thresholds=law).tx_id
    chain.ok(B0, "gov.approve", proposal=proposal)
    found = queries.proposal(chain.state, bytes.fromhex(proposal), chain.time_ms)
    assert (found["status"], found["approvals"], found["threshold"]) == ("open", 2, 3)
    # A1 revoked by governance (a among the approvers): its approval stops counting
    revoking = chain.propose(A0, "member.revoke", key=A1).tx_id
    chain.ok(C0, "gov.approve", proposal=revoking)
    found = queries.proposal(chain.state, bytes.fromhex(proposal), chain.time_ms)
    assert [(a["organisation"], a["counts"]) for a in found["approved_by"]] == [
        ("a", False), ("b", True)]
    assert found["approvals"] == 1 and found["closed_height"] is None


def test_keys_named_by_open_recoveries_and_open_proposals():
    chain = Chain(organisations=THREE)
    alice, bob, carol = chain.citizen("alice"), chain.citizen("bob"), chain.citizen("carol")
    new, other = key("alice-new"), key("bob-new")
    now = chain.time_ms
    assert not queries.named_in_governance(chain.state, alice, now)
    chain.ok(ADMIN, "member.recover", old=alice, new=new)
    assert queries.frozen(chain.state, alice) and not queries.frozen(chain.state, bob)
    assert queries.recovery(chain.state, alice)["new"] == new
    assert queries.named_in_governance(chain.state, alice, now)
    assert queries.named_in_governance(chain.state, new, now)
    chain.propose(A0, "member.recover", expires=now + HOUR_MS, old=bob, new=other)
    assert queries.named_in_governance(chain.state, other, now)
    assert not queries.named_in_governance(chain.state, other, now + HOUR_MS)   # expired
    assert not queries.named_in_governance(chain.state, carol, now)

"""Stateful property tests: long random sequences of every kind by many members, across
month and year boundaries, the summer-time switches and policy changes.

Every block runs twice: as one batch on one chain, and one transaction per block (same
block time and height) on a second chain. The invariants are checked on the second chain after every
single transaction; the two chains must end every block with the same state root.

Set CHAINCODE_EXAMPLES (and CHAINCODE_STEPS) for a longer hunt than the default run, and
CHAINCODE_SHRINK=0 to report a failure at once instead of shrinking it.
"""
from __future__ import annotations

import hashlib
import os

import pytest

from hypothesis import HealthCheck, Phase, event, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import chaincode
from chaincode import caps, views
from chaincode import state as keys
from chaincode.api import BlockContext, Tx
from chaincode.periods import periods
from chaincode_harness import ADMIN, DAY_MS, HOUR_MS, STEWARD, Chain, key

EXAMPLES = int(os.environ.get("CHAINCODE_EXAMPLES", "25"))
STEPS = int(os.environ.get("CHAINCODE_STEPS", "40"))

# Starts just before the boundaries that matter: end of month before the March switch,
# the October switch, New Year, and an end of a 31-day month in summer.
STARTS = [1_743_289_200_000 - 3 * HOUR_MS,     # 2025-03-29T23:00Z - 3h
          1_761_433_200_000 - 5 * HOUR_MS,     # 2025-10-25T23:00Z - 5h
          1_767_222_000_000 - 2 * DAY_MS,      # 2025-12-31T23:00Z - 2 days
          1_753_912_800_000 - HOUR_MS]         # 2025-07-30T22:00Z - 1h
POLICY_2025 = dict(year=2025, hourly_cap_21plus=600, hourly_cap_under21=400,
                   monthly_cap=3000, yearly_cap=9000, programme_yearly_cap=7000)

CITIZENS = [key(f"citizen-{i}") for i in range(6)]
MERCHANTS = [key(f"merchant-{i}") for i in range(3)]
REVIEWER = key("reviewer")
NEW_KEYS = [key(f"new-{i}") for i in range(4)]
TASKS = [f"t{i}" for i in range(5)]
ALL_KEYS = [ADMIN, REVIEWER] + CITIZENS + MERCHANTS + NEW_KEYS


class Ledger(RuleBasedStateMachine):
    @initialize(start=st.sampled_from(STARTS))
    def setup(self, start):
        self.batch = Chain(policies=[POLICY_2025], time_ms=start, check_root=False)
        self.single = Chain(policies=[POLICY_2025], time_ms=start, check_root=True)
        self.count = 0
        self.spends: list[str] = []
        self.payouts: list[str] = []
        self._acc_before = self.batch.acc
        self.active: dict[bytes, str] = {ADMIN: "admin"}
        self.posted: list[str] = []
        self.claims: dict[str, set] = {}
        setup = [self._governed("member.register", key=REVIEWER, role="reviewer")]
        for i, k in enumerate(CITIZENS):
            setup.append(self._tx(ADMIN, "member.register", key=k, role="citizen",
                                  age_band="under21" if i % 3 == 0 else "21plus",
                                  area="GMS" if i % 2 else "HLN"))
        for i, k in enumerate(MERCHANTS):
            setup.append(self._tx(ADMIN, "member.register", key=k, role="merchant",
                                  name=f"shop {i}"))
        self._block(setup)

    def _tx(self, signer: bytes, kind: str, **args) -> Tx:
        self.count += 1
        return Tx(hashlib.sha256(b"prop/%d" % self.count).hexdigest(), signer, kind, args)

    def _governed(self, action: str, **args) -> Tx:
        """The chain's one organisation has thresholds of 1: its steward's proposal is
        enacted in the same transaction."""
        return self._tx(STEWARD, "gov.propose", action=action, args=args,
                        expires=self.single.time_ms + DAY_MS)

    # ------------------------------------------------------------------ generating txs
    # The draws lean towards transactions that can succeed (active members, posted
    # tasks, claims in the right state), tracked from the events, so that long histories
    # reach caps and full tasks; one draw in five picks from everything instead.
    def _pick(self, d, likely: list, anything: list):
        if likely and d(st.integers(0, 4)) > 0:
            return d(st.sampled_from(likely))
        return d(st.sampled_from(anything))

    def _draw_tx(self, data) -> Tx:
        d = data.draw
        kind = d(st.sampled_from(KINDS))
        citizens = [k for k, role in self.active.items() if role == "citizen"]
        merchants = [k for k, role in self.active.items() if role == "merchant"]
        citizen = self._pick(d, citizens, CITIZENS + NEW_KEYS)
        merchant = self._pick(d, merchants, MERCHANTS + NEW_KEYS)
        task = self._pick(d, self.posted, TASKS)
        staff = d(st.sampled_from([ADMIN, ADMIN, REVIEWER, citizen]))
        now = self.single.time_ms
        if kind == "task.post":
            minutes = d(st.integers(30, 600))
            return self._tx(ADMIN, kind, task=f"t{self.count}", title="t", area="GMS",
                            domain="care", reward=d(st.integers(50, minutes * 7)),
                            minutes=minutes, slots=d(st.integers(1, 3)),
                            deadline=now + d(st.sampled_from([HOUR_MS, DAY_MS, 20 * DAY_MS,
                                                              40 * DAY_MS])))
        if kind == "task.claim":
            return self._tx(citizen, kind, task=task)
        if kind in ("task.withdraw", "task.submit", "task.approve", "task.reject"):
            wanted = "open" if kind in ("task.withdraw", "task.submit") else "submitted"
            pairs = sorted(self.claims.get(wanted, ()))
            if pairs and d(st.integers(0, 4)) > 0:
                task, citizen = d(st.sampled_from(pairs))
            if kind == "task.withdraw":
                return self._tx(citizen, kind, task=task)
            if kind == "task.submit":
                return self._tx(citizen, kind, task=task, proof=bytes(32))
            if kind == "task.approve":
                return self._tx(staff, kind, task=task, citizen=citizen)
            return self._tx(staff, kind, task=task, citizen=citizen, reason="no")
        if kind == "task.cancel":
            return self._tx(ADMIN, kind, task=task)
        funded = {k: m["balance"] for k, m in ((k, views.member(self.single.state, k))
                                                for k in sorted(self.active))
                  if m["balance"] > 0 and m["role"] in ("citizen", "merchant")}
        if kind == "coin.spend":
            payer = self._pick(d, sorted(funded), CITIZENS + MERCHANTS + NEW_KEYS)
            top = max(1, funded.get(payer, 1500) + d(st.sampled_from([0, 0, 0, 1])))
            return self._tx(payer, kind, to=merchant, amount=d(st.integers(1, top)))
        if kind == "coin.refund":
            spend = self._pick(d, self.spends, ["00" * 32])
            found = views.spend(self.single.state, spend)
            if found is not None and d(st.integers(0, 4)) > 0:
                merchant = keys.current_key(self.single.state, found["to"])
                top = max(1, found["amount"] - found["refunded"] + d(st.sampled_from([0, 0, 1])))
                return self._tx(merchant, kind, spend=spend, amount=d(st.integers(1, top)))
            return self._tx(merchant, kind, spend=spend, amount=d(st.integers(1, 800)))
        if kind == "coin.redeem":
            sellers = sorted(k for k in funded if self.active.get(k) == "merchant")
            merchant = self._pick(d, sellers, MERCHANTS + NEW_KEYS)
            top = max(1, funded.get(merchant, 2000))
            return self._tx(merchant, kind, amount=d(st.integers(1, top)))
        if kind == "payout.confirm":
            payout = self._pick(d, self.payouts, ["11" * 32])
            return self._tx(ADMIN, kind, payout=payout, reference="bank")
        if kind == "member.recover":
            # by an admin: a delayed recovery that freezes `old`; by governance: at once
            old = d(st.sampled_from(CITIZENS + MERCHANTS + NEW_KEYS))
            new = d(st.sampled_from(NEW_KEYS))
            if d(st.booleans()):
                return self._tx(ADMIN, kind, old=old, new=new)
            return self._governed(kind, old=old, new=new)
        if kind in ("recovery.complete", "recovery.cancel"):
            old = d(st.sampled_from(CITIZENS + MERCHANTS + NEW_KEYS))
            return self._tx(d(st.sampled_from([ADMIN, STEWARD])), kind, old=old)
        if kind == "member.revoke":
            return self._tx(ADMIN, kind, key=d(st.sampled_from(ALL_KEYS)))
        if kind == "member.update":
            return self._tx(ADMIN, kind, key=citizen, age_band=d(st.sampled_from(
                ["21plus", "under21"])))
        if kind == "policy.set":
            year = periods(now)[0]
            monthly = d(st.integers(0, 4000))
            yearly = d(st.integers(monthly, 12_000))
            args = dict(year=d(st.sampled_from([year, year + 1])),
                        hourly_cap_21plus=d(st.integers(100, 800)),
                        hourly_cap_under21=d(st.integers(100, 600)),
                        monthly_cap=monthly, yearly_cap=yearly)
            if d(st.booleans()):
                args["programme_yearly_cap"] = d(st.integers(0, yearly))
            return self._governed(kind, **args)
        assert kind == "junk"
        return self._tx(citizen, "coin.spend", to=merchant, amount=0)

    def _track(self, tx: Tx, result) -> None:
        """Keep the pools the draws lean on in step with the events."""
        if result.code != "ok":
            return
        for ev in result.events:
            kind = ev["kind"]
            if kind == "member.registered":
                self.active[ev["key"]] = ev["role"]
            elif kind == "member.revoked":
                self.active.pop(ev["key"], None)
            elif kind == "member.recovered":
                role = self.active.pop(ev["old"], None) or views.member(
                    self.single.state, ev["new"])["role"]
                self.active[ev["new"]] = role
                for pairs in self.claims.values():
                    for task, who in sorted(pairs):
                        if who == ev["old"]:
                            pairs.discard((task, who))
                            pairs.add((task, ev["new"]))
            elif kind == "task.posted":
                self.posted.append(ev["task"])
            elif kind == "task.claimed":
                self.claims.setdefault("open", set()).add((ev["task"], ev["citizen"]))
            elif kind == "task.submitted":
                self.claims["open"].discard((ev["task"], ev["citizen"]))
                self.claims.setdefault("submitted", set()).add((ev["task"], ev["citizen"]))
            elif kind in ("task.approved", "task.rejected"):
                self.claims["submitted"].discard((ev["task"], ev["citizen"]))
            elif kind == "task.withdrawn":
                self.claims["open"].discard((ev["task"], ev["citizen"]))
            elif kind == "coin.spent":
                self.spends.append(tx.tx_id)
            elif kind == "coin.redeemed":
                self.payouts.append(tx.tx_id)

    # ------------------------------------------------------------------ rules
    @rule(data=st.data(), size=st.integers(1, 6))
    def block(self, data, size):
        self._block([self._draw_tx(data) for _ in range(size)])

    @rule(step=st.sampled_from([1, 59_000, HOUR_MS, 7 * HOUR_MS, DAY_MS, 9 * DAY_MS,
                                33 * DAY_MS, 120 * DAY_MS]))
    def time_passes(self, step):
        for chain in (self.batch, self.single):
            chain.time_ms += step

    def _block(self, txs: list[Tx]) -> None:
        state_before = dict(self.batch.state.data)
        outcome = self.batch.run(txs)
        # Determinism: the same block on the same state gives the same everything.
        again = chaincode.execute_block(1, views.InMemoryState(state_before),
                                        BlockContext(self.batch.height, self.batch.time_ms),
                                        txs, self._acc_before)
        assert again.state_acc == outcome.state_acc and again.writes == outcome.writes
        assert [chaincode.encode_result(r) for r in again.results] == \
               [chaincode.encode_result(r) for r in outcome.results]
        singles = []
        for tx in txs:
            before = dict(self.single.state.data)
            one = self.single.run([tx], height=self.batch.height)
            result = one.results[0]
            singles.append(result)
            event(f"{tx.kind} {result.code}")
            self._check_transaction(tx, result, one.writes, before)
        assert [chaincode.encode_result(r) for r in singles] == \
               [chaincode.encode_result(r) for r in outcome.results]
        # One batch or one transaction at a time: the same state, so the same root.
        assert self.batch.acc == self.single.acc
        assert self.batch.state.data == self.single.state.data
        self._acc_before = self.batch.acc
        for tx, result in zip(txs, outcome.results):
            self._track(tx, result)

    # ------------------------------------------------------------------ invariants
    def _check_transaction(self, tx: Tx, result, writes: dict, before: dict) -> None:
        state, now = self.single.state, self.single.time_ms
        if result.code != "ok":
            # A rejection changes nothing but its id (a duplicate not even that).
            expected = [] if result.code == "duplicate" else [keys.EXECUTED + bytes.fromhex(tx.tx_id)]
            assert list(writes) == expected and result.events == []
        check_supply(state)
        check_slots_and_reservations(state, now)
        if result.code == "ok" and tx.kind == "task.approve":
            citizen = tx.args["citizen"]
            year, month, year_period = periods(now)
            policy = views.policy_for_year(state, year)["policy"]
            assert caps.earned(state, citizen, month) <= policy["monthly_cap"]
            assert caps.earned(state, citizen, year_period) <= caps.yearly_limit(policy)

    @invariant()
    def roots_agree(self):
        if hasattr(self, "batch"):
            assert chaincode.state_root(self.batch.acc) == chaincode.state_root(self.single.acc)


# Every kind, the busy ones twice, and "junk" (a transaction with invalid args).
KINDS = (["task.post"] * 3 + ["task.claim"] * 4 + ["task.submit"] * 3 +
         ["task.approve"] * 3 + ["coin.spend"] * 3 + ["task.withdraw"] * 2 +
         ["task.reject", "task.cancel", "coin.refund", "coin.redeem",
          "payout.confirm", "member.recover", "member.recover", "recovery.complete",
          "recovery.cancel", "member.revoke", "member.update", "policy.set", "junk"])


def check_supply(state) -> None:
    """No negative balance; sum of balances = minted - redeemed; refunds within spends;
    every mint is in the earnings of a year."""
    members = views.members(state)
    assert all(m["balance"] >= 0 for m in members)
    totals = views.totals(state)
    assert sum(m["balance"] for m in members) == totals["circulating"]
    for _, raw in state.scan(keys.EXECUTED):
        if raw:
            _, _, amount, refunded = keys.unpack(raw)
            assert 0 <= refunded <= amount
    yearly = sum(keys.unpack(raw) for k, raw in state.scan(keys.EARNED) if len(k) == 2 + 32 + 4)
    assert yearly == totals["minted"]


def check_slots_and_reservations(state, now: int) -> None:
    """Slots never over-taken; the task's count and each citizen's reservation record
    agree with the claims themselves."""
    reserved: dict[bytes, int] = {}
    for task in views.tasks(state, now):
        claims = views.task_claims(state, task["task"], task["deadline"], now)
        live = [c for c in claims if c["state"] in ("open", "submitted", "approved")]
        holding = live + [c for c in claims if c["state"] == "expired"]
        assert len(live) <= task["slots"]
        assert task["taken"] == len(holding) <= task["slots"]
        for c in claims:
            if c["state"] in ("open", "submitted"):
                reserved[c["citizen"]] = reserved.get(c["citizen"], 0) + task["reward"]
    for m in views.members(state):
        record = caps.load_reservations(state, m["key"])
        assert caps.reserved_at(record, now) == reserved.get(m["key"], 0)


PHASES = (tuple(Phase) if os.environ.get("CHAINCODE_SHRINK", "1") != "0"
          else (Phase.explicit, Phase.reuse, Phase.generate))
Ledger.TestCase.settings = settings(max_examples=EXAMPLES, stateful_step_count=STEPS,
                                    deadline=None, phases=PHASES,
                                    suppress_health_check=[HealthCheck.too_slow])
test_ledger_invariants_hold_over_random_histories = Ledger.TestCase


class LongLedger(Ledger):
    """The same machine, hunting longer: run with --slow."""


LongLedger.TestCase.settings = settings(max_examples=max(EXAMPLES, 400),
                                        stateful_step_count=max(STEPS, 80), deadline=None,
                                        phases=PHASES,
                                        suppress_health_check=[HealthCheck.too_slow])
test_ledger_invariants_hold_over_long_random_histories = pytest.mark.slow(LongLedger.TestCase)

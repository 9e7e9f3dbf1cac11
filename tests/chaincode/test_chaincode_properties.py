"""Stateful property test of the day-to-day rules against a model of its own.

The machine registers citizens of both age bands and merchants, posts tasks, claims,
submits, withdraws, approves, rejects and cancels them, spends, refunds, redeems and
confirms payouts, changes age bands and cap policies, revokes members and recovers keys
(an admin's delayed recovery, and governance's at once), replays transactions, and lets
time pass: across month and year ends, the summer-time switches, and to a task's
deadline or a recovery's `effective` exactly, one millisecond before and one after.

`Model` (chaincode_model.py) is written from docs/chaincode.md alone: it keeps members,
tasks, claims, earnings, spends and payouts, and predicts every transaction's code, info
and events. It never calls the chaincode's helpers (no caps.earned, caps.reserved_at,
queries or periods; Amsterdam's calendar comes from zoneinfo), and the state is read back
with plain msgpack at the keys the state layout names (chaincode_checks.py).

Every block runs twice: as one batch on one chain, and one transaction per block (same
height and time) on a second chain. After each transaction of the second chain its
invariants are checked, judged by the model as it was before it, then the model's
prediction; after each block (each step), the state's invariants. A transaction that
would break one of the rules below must be refused by that rule's check or by one that
comes before it in the order of checks (a refusal for want of funds does not do).

The invariants, from docs/chaincode.md (section: rule -> the check's name here):

- Entry points: each transaction sees the writes of the ones before it -> the batch and
  the one-at-a-time chain give the same results and the same state ("one at a time as
  in a batch").
- Entry points: a refused transaction changes nothing but its executed-id entry, a
  duplicate writes nothing, an id is used once -> "a refusal writes only its id", and
  the `replays` rule; the block's writes leave out unchanged keys -> "net writes".
- The chaincode is pure -> the same block on the same state again gives the same
  results, writes and accumulator ("determinism").
- Order of checks, who signs what, the kinds' checks, results and events (info of
  cap_exceeded and hourly_rate_exceeded), the policy in force (fallback) -> "model":
  code, info and events as predicted.
- Caps and reservations, hourly: reward * 60 <= hourly_cap[band] * minutes, 21plus at
  post, the citizen's band at claim -> "hourly rate by age band".
- Caps and reservations, claim: earned + reserved + reward <= each cap -> "caps at a
  claim"; approval: earned + reward <= each cap -> "caps at an approval"; no citizen's
  earnings in a month or year above the cap in force when they were last minted ->
  "earnings within the caps" (state, read back and compared with the model's).
- Caps and reservations, reserved(t): submitted rewards + open claims whose deadline is
  after t -> "reservations" (the r/ record read back and summed here).
- Caps and reservations, an open claim expires when the block time reaches its
  deadline; cases decided: claiming or submitting at or after it is deadline_passed,
  withdrawing it not_found, posting a deadline not after the block time
  deadline_passed; approving does not depend on it -> "deadlines", "model" (and the
  `at_a_deadline` rule: exactly at, 1 ms before and after).
- Caps and reservations, slots: `taken` counts open, submitted and approved claims and
  never exceeds `slots` -> "slots" (state); each claim's state -> "claims".
- Supply: the sum of balances is minted - redeemed, no balance below 0 -> "supply",
  and each balance, minted and redeemed as the model's.
- not_a_merchant: a spend goes to an active merchant only -> "only merchants receive
  spends" (per spend, and every x/ spend record's payee is a merchant).
- A refund follows recovered_to from the spend's payee (to authorise) and payer (to
  pay); refunds of a spend never exceed it -> "refunds only by the payee", "refunds
  never above the spend" (per refund, and every x/ record: 0 <= refunded <= amount).
- State layout, o/ and q/: payouts pending or paid, the pending ones indexed by their
  merchant's current key, amounts adding up to g/redeemed -> "payouts".
- State layout, m/, g/admins, y/, z/, and recovery: roles, attributes, frozen while a
  recovery is open, recovered_to, steward_cancelled, the admins' count, the open
  recoveries -> "members", "recoveries"; a frozen key signs nothing -> "model"; a
  recovery completes only at or after `effective` -> "recoveries complete on time".
- State root: AdHash of the live entries -> "state root", the accumulator computed here
  from the bytes of the state.

The budget (examples, steps, derandomized or not) is the Hypothesis profile that
tests/conftest.py loads: "ci" by default, "deep" with --slow or HYPOTHESIS_PROFILE=deep.
docs/chaincode.md, "How the rules are tested", lists the planted bugs it finds.
"""
from __future__ import annotations
from __future__ import annotations

import hashlib

from hypothesis import HealthCheck, event, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

import chaincode
from chaincode.api import BlockContext, Tx
from chaincode.queries import InMemoryState
from chaincode_checks import check_state, rules_broken
from chaincode_harness import (ADMIN, CHECKPOINT_INTERVAL, DAY_MS, HOUR_MS, STEWARD,
                               SWITCH_MARGIN, Chain)
from chaincode_model import (ALL_KEYS, BANDS, CHECKS, CITIZENS, FRESH, MERCHANTS, POLICY, REVIEWER,
                             SIGNERS, STARTS, STRANGER, Model, check, name, one, periods,
                             show, shuffled, some)


# ----------------------------------------------------------------------- the machine
class Ledger(RuleBasedStateMachine):
    @initialize(start=st.sampled_from(STARTS), data=st.data())
    def setup(self, start, data):
        self.now = start
        self.batch = Chain(policies=[POLICY], time_ms=start, check_root=False)
        self.single = Chain(policies=[POLICY], time_ms=start, check_root=False)
        self.model = Model()
        self.count = 0
        self.sent: list[Tx] = []
        setup = [self._governed("member.register", key=REVIEWER, role="reviewer")]
        for i, k in enumerate(CITIZENS):
            setup.append(self._tx(ADMIN, "member.register", key=k, role="citizen",
                                  age_band=BANDS[k], area="GMS" if i % 2 else "HLN"))
        for i, k in enumerate(MERCHANTS):
            setup.append(self._tx(ADMIN, "member.register", key=k, role="merchant",
                                  name=f"shop {i}"))
        self._block(setup)
        # Money from the start: some citizens are paid for a task, and pay merchants.
        earners = some(data.draw, CITIZENS, 2, 6, label="earners")
        self._block(self._paid_work(data.draw, earners))
        self._block([self._tx(c, "coin.spend", to=MERCHANTS[i % len(MERCHANTS)],
                              amount=max(1, self.model.members[c].balance // 3))
                     for i, c in enumerate(earners)])

    # ------------------------------------------------------------------ building txs
    def _tx(self, signer: bytes, kind: str, **args) -> Tx:
        self.count += 1
        return Tx(hashlib.sha256(b"ledger/%d" % self.count).hexdigest(), signer, kind, args)

    def _governed(self, action: str, **args) -> Tx:
        """The one organisation's steward proposes: enacted in the same transaction."""
        return self._tx(STEWARD, "gov.propose", action=action, args=args,
                        expires=self.now + DAY_MS)

    def _task_id(self) -> str:
        self.count += 1
        return f"t{self.count}"

    def _members(self, *roles, usable=False, funded=False) -> list[bytes]:
        return [k for k, m in self.model.members.items()
                if m.role in roles and (not usable or (m.active and not m.frozen))
                and (not funded or m.balance > 0)]

    @staticmethod
    def _pick(d, likely: list, anything: list):
        """Mostly from `likely` (transactions that can succeed), sometimes from anything."""
        if likely and d(st.integers(0, 4)) > 0:
            return one(d, likely)
        return one(d, anything)

    def _policy_now(self) -> dict:
        return self.model.policy(periods(self.now)[0])

    def _post(self, task: str, reward: int, minutes: int, slots: int, deadline: int) -> Tx:
        return self._tx(ADMIN, "task.post", task=task, title="Litter walk", area="GMS",
                        domain="public-space", reward=reward, minutes=minutes, slots=slots,
                        deadline=deadline)

    def _paid_work(self, d, citizens: list[bytes]) -> list[Tx]:
        """One task, claimed, submitted and approved by each citizen, in one block."""
        minutes = one(d, [30, 60, 120, 600], label="minutes")
        top = self._policy_now()["hourly_cap_under21"] * minutes // 60
        task = self._task_id()
        txs = [self._post(task, d(st.integers(1, max(1, top)), label="reward"), minutes,
                          len(citizens) + d(st.integers(0, 1)),
                          self.now + one(d, [HOUR_MS, DAY_MS, 20 * DAY_MS]))]
        txs += [self._tx(c, "task.claim", task=task) for c in citizens]
        txs += [self._tx(c, "task.submit", task=task, proof=bytes(32)) for c in citizens]
        txs += [self._tx(one(d, [ADMIN, REVIEWER]), "task.approve", task=task,
                         citizen=c) for c in citizens]
        return txs

    def _spend_to(self, d, payer: bytes) -> bytes:
        """A payee: mostly a merchant, else a citizen, staff, the payer, a stranger."""
        target = one(d, ["merchant"] * 4 + ["citizen"] * 2 + ["admin", "reviewer",
                                                              "steward", "self", "stranger"],
                     label="spend to")
        merchants = self._members("merchant")               # revoked ones too
        if target == "merchant" and merchants:
            return one(d, merchants)
        if target == "citizen":
            return one(d, self._members("citizen"))
        return {"admin": ADMIN, "reviewer": REVIEWER, "steward": STEWARD, "self": payer,
                "stranger": STRANGER}.get(target, MERCHANTS[0])

    def _amount(self, d, balance: int) -> int:
        how = one(d, ["one", "all", "more", "some", "some"], label="amount")
        if how == "one":
            return 1
        if how == "all":
            return max(1, balance)
        if how == "more":
            return balance + 1
        return d(st.integers(1, max(1, balance)))

    def _any_tx(self, d) -> Tx:
        """Any kind from a loose pool of signers and args: the refusals' breadth."""
        kind = one(d, ANY_KINDS, label="kind")
        m = self.model
        signer = self._pick(d, self._members(*SIGNERS.get(kind, {"citizen"}), usable=True),
                            ALL_KEYS)
        task = self._pick(d, list(m.tasks), ["t0", "t1"])
        citizen = self._pick(d, self._members("citizen"), CITIZENS + FRESH)
        if kind == "task.post":
            minutes = d(st.integers(1, 600))
            return self._post(self._pick(d, [self._task_id()], list(m.tasks) or ["t0"]),
                              d(st.integers(1, minutes * 11)), minutes, d(st.integers(1, 3)),
                              self.now + one(d, [-1, 0, 1, HOUR_MS, 9 * DAY_MS]))
        if kind in ("task.claim", "task.withdraw", "task.cancel"):
            return self._tx(signer, kind, task=task)
        if kind == "task.submit":
            return self._tx(signer, kind, task=task, proof=bytes(32))
        if kind == "task.approve":
            return self._tx(signer, kind, task=task, citizen=citizen)
        if kind == "task.reject":
            return self._tx(signer, kind, task=task, citizen=citizen, reason="no")
        if kind == "coin.spend":
            return self._tx(signer, kind, to=self._spend_to(d, signer),
                            amount=d(st.integers(0, 900)))
        if kind == "coin.refund":
            spend = self._pick(d, list(m.spends), [s.tx_id for s in self.sent[:3]] or ["0" * 64])
            return self._tx(signer, kind, spend=spend, amount=d(st.integers(1, 900)))
        if kind == "coin.redeem":
            return self._tx(signer, kind, amount=d(st.integers(1, 900)))
        if kind == "payout.confirm":
            payout = self._pick(d, list(m.payouts), ["1" * 64])
            return self._tx(signer, kind, payout=payout, reference="bank")
        if kind == "member.update":
            return self._tx(signer, kind, key=citizen,
                            age_band=one(d, ["21plus", "under21"]))
        if kind == "policy.set":
            return self._tx(signer, kind, **POLICY)
        if kind in ("recovery.cancel", "recovery.complete"):
            return self._tx(signer, kind, old=self._pick(d, list(m.recoveries), ALL_KEYS))
        return self._tx(signer, "stake.claim", amount=1)        # not a kind of rules 1

    # ------------------------------------------------------------------ rules
    @rule(data=st.data(), size=st.integers(1, 5))
    def anything(self, data, size):
        self._block([self._any_tx(data.draw) for _ in range(size)])

    @rule(data=st.data())
    def work_is_paid(self, data):
        d = data.draw
        citizens = self._members("citizen", usable=True)
        if citizens:
            who = some(d, citizens, 1, 3)
            self._block(self._paid_work(d, who))

    @rule(data=st.data(), band=st.sampled_from(["under21", "21plus"]),
          delta=st.sampled_from([-1, 0, 1]),
          minutes=st.sampled_from([1, 7, 30, 45, 60, 90, 125]))
    def claims_around_an_hourly_cap(self, data, band, delta, minutes):
        """A task paying one cent under, at or over a band's hourly cap for its minutes,
        claimed by citizens of both bands."""
        d = data.draw
        exact = self._policy_now()["hourly_cap_" + band] * minutes // 60
        task = self._task_id()
        txs = [self._post(task, max(1, exact + delta), minutes, 3,
                          self.now + one(d, [HOUR_MS, DAY_MS, 20 * DAY_MS]))]
        for wanted in ("under21", "21plus"):
            mine = [k for k in self._members("citizen", usable=True)
                    if self.model.members[k].attrs["age_band"] == wanted]
            if mine:
                txs.append(self._tx(one(d, mine), "task.claim", task=task))
        self._block(txs)

    @rule(data=st.data(), delta=st.sampled_from([-1, 0, 1]),
          cap=st.sampled_from(["monthly", "yearly", "programme"]))
    def claims_around_a_cap(self, data, delta, cap):
        """A task whose reward is a citizen's room under a cap, one cent less or more."""
        d = data.draw
        citizens = self._members("citizen", usable=True)
        if not citizens:
            return
        self._block(self._claim_at_room(d, one(d, citizens), cap, delta))

    def _claim_at_room(self, d, citizen: bytes, cap: str, delta: int) -> list[Tx]:
        """A new task paying the citizen's room under a cap (what the model says is
        left: the cap less earnings and reservations), plus delta; and the claim."""
        limits = {n: c - e for n, _, c, e in self.model.caps(self._policy_now(), citizen,
                                                              self.now)}
        room = limits.get(cap, limits["yearly"]) - self.model.reserved(citizen, self.now)
        task = self._task_id()
        return [self._post(task, max(1, room + delta), 600, 2,
                           self.now + one(d, [HOUR_MS, 9 * DAY_MS])),
                self._tx(citizen, "task.claim", task=task)]

    @rule(data=st.data(), offset=st.sampled_from([-1, 0, 1]))
    def at_a_deadline(self, data, offset):
        """Time goes to a task's deadline, one millisecond before or after; then its
        claims are submitted, withdrawn, made again, approved and rejected."""
        d = data.draw
        m = self.model
        busy = [t for t, task in m.tasks.items()
                if task.deadline + offset >= self.now and not task.cancelled
                and any(s in ("open", "submitted") for _, s in m.claimants(t))]
        if busy and d(st.booleans()):
            task_id = one(d, busy)
        else:
            citizens = self._members("citizen", usable=True)
            if not citizens:
                return
            who = some(d, citizens, 1, 3)
            task_id = self._task_id()
            minutes = 60
            top = self._policy_now()["hourly_cap_under21"]
            txs = [self._post(task_id, d(st.integers(1, top)), minutes, 3,
                              self.now + one(d, [2, 60_000, HOUR_MS, DAY_MS]))]
            txs += [self._tx(c, "task.claim", task=task_id) for c in who]
            txs += [self._tx(c, "task.submit", task=task_id, proof=bytes(32))
                    for c in who if d(st.booleans())]
            self._block(txs)
            if task_id not in m.tasks:
                return
        self._advance_to(max(self.now, m.tasks[task_id].deadline + offset))
        txs = []
        for citizen, state in m.claimants(task_id):
            if state == "open":
                what = one(d, ["task.submit", "task.submit", "task.withdraw", "task.claim"])
                txs.append(self._tx(citizen, what, task=task_id, proof=bytes(32))
                           if what == "task.submit" else self._tx(citizen, what, task=task_id))
            elif state == "submitted":
                staff = one(d, [ADMIN, REVIEWER])
                if d(st.booleans()):
                    txs.append(self._tx(staff, "task.approve", task=task_id, citizen=citizen))
                else:
                    txs.append(self._tx(staff, "task.reject", task=task_id, citizen=citizen,
                                        reason="late"))
        others = [k for k in self._members("citizen", usable=True)
                  if m.claims.get((task_id, k)) not in ("open", "submitted")]
        if others:
            txs.append(self._tx(one(d, others), "task.claim", task=task_id))
        self._block(shuffled(d, txs))
        # A claimant claims another task paying its room under a cap, which counts the
        # claim on this task only before the deadline.
        holders = [k for k, s in m.claimants(task_id) if s == "open"
                   and m.members[k].active and not m.members[k].frozen]
        if holders:
            self._block(self._claim_at_room(d, one(d, holders), "monthly",
                                            one(d, [-1, 0, 1])))

    @rule(data=st.data(), count=st.integers(1, 4))
    def spends(self, data, count):
        """Payers with money pay merchants, citizens, staff, themselves, strangers."""
        d = data.draw
        payers = self._members("citizen", "merchant", usable=True, funded=True)
        if not payers:
            return
        txs = []
        for _ in range(count):
            payer = one(d, payers)
            balance = self.model.members[payer].balance
            args = dict(to=self._spend_to(d, payer), amount=self._amount(d, balance))
            if d(st.booleans()):
                args["memo"] = one(d, ["", "coffee"])
            txs.append(self._tx(payer, "coin.spend", **args))
        self._block(txs)

    @rule(data=st.data())
    def refunds(self, data):
        """A spend is refunded by its payee (its current key), by another merchant, by
        the payee's old key after a recovery, by the payer; up to, at and over what is
        left of it."""
        d = data.draw
        m = self.model
        if not m.spends or d(st.integers(0, 3)) == 0:
            payers = self._members("citizen", usable=True, funded=True)
            merchants = self._members("merchant", usable=True)
            if not payers or not merchants:
                return
            payer = one(d, payers)
            half = max(1, m.members[payer].balance // 2)
            self._block([self._tx(payer, "coin.spend", to=one(d, merchants),
                                  amount=d(st.integers(1, half))) for _ in range(2)])
            if not m.spends:
                return
        spend_id = one(d, list(m.spends))
        spend = m.spends[spend_id]
        payee = m.current(spend.payee)
        others = [k for k in self._members("merchant", usable=True) if k != payee]
        funded = [k for k in others if m.members[k].balance > 0]
        who = one(d, ["payee", "payee", "other merchant", "other merchant", "old payee key",
                      "payer"], label="refunded by")
        if who == "other merchant":
            signer = one(d, funded or others or [payee])
        else:
            signer = {"payee": payee, "old payee key": spend.payee, "payer": spend.payer}[who]
        left = spend.amount - spend.refunded
        how = one(d, ["one", "left", "over", "some"], label="refund")
        if how == "some":
            amount = d(st.integers(1, max(1, min(left, m.members[signer].balance))))
        else:
            amount = {"one": 1, "left": max(1, left), "over": left + 1}[how]
        txs = [self._tx(signer, "coin.refund", spend=spend_id, amount=amount)]
        if d(st.integers(0, 3)) == 0:                 # an id that is not a spend
            not_spends = [t.tx_id for t in self.sent if t.tx_id not in m.spends]
            txs.append(self._tx(payee, "coin.refund", amount=1,
                                spend=one(d, not_spends or ["2" * 64])))
        self._block(txs)

    @rule(data=st.data())
    def redeem_and_confirm(self, data):
        d = data.draw
        m = self.model
        txs = []
        for merchant in self._members("merchant", usable=True, funded=True)[:2]:
            txs.append(self._tx(merchant, "coin.redeem",
                                amount=self._amount(d, m.members[merchant].balance)))
        if m.payouts:
            signer = one(d, [ADMIN, ADMIN, REVIEWER])
            txs.append(self._tx(signer, "payout.confirm", reference="bank",
                                payout=one(d, list(m.payouts))))
        self._block(txs)

    @rule(data=st.data())
    def members_change(self, data):
        """Age bands change; members are registered, revoked, recovered by an admin (at
        `effective`, a millisecond before or after) or by governance; recoveries are
        cancelled."""
        d = data.draw
        m = self.model
        what = one(d, ["update", "update", "register", "revoke", "revoke", "open recovery",
                       "governed recovery", "complete", "cancel"], label="members")
        # anyone but the admin and the steward, who keep the machine going
        old = self._pick(d, self._members("citizen", "merchant"), ALL_KEYS[2:])
        unused = [k for k in FRESH if not m.used(k)]
        new = self._pick(d, unused, ALL_KEYS)
        if what == "update":
            citizen = self._pick(d, self._members("citizen"), ALL_KEYS)
            band = m.members[citizen].attrs.get("age_band") if citizen in m.members else None
            flipped = "21plus" if band == "under21" else "under21"
            tx = self._tx(ADMIN, "member.update", key=citizen, age_band=flipped)
        elif what == "register":
            role = one(d, ["citizen", "merchant"])
            extra = (dict(age_band=one(d, ["under21", "21plus"]), area="GMS")
                     if role == "citizen" else dict(name="new shop"))
            tx = self._tx(ADMIN, "member.register", key=new, role=role, **extra)
        elif what == "revoke":
            tx = self._tx(ADMIN, "member.revoke", key=self._pick(d, [old], ALL_KEYS))
        elif what == "open recovery":
            tx = self._tx(ADMIN, "member.recover", old=old, new=new)
        elif what == "governed recovery":
            tx = self._governed("member.recover", old=old, new=new)
        elif what == "complete":
            tx = self._tx(one(d, [ADMIN, ADMIN, STEWARD]), "recovery.complete",
                          old=self._pick(d, list(m.recoveries), ALL_KEYS))
        else:
            if m.recoveries:
                old = self._pick(d, list(m.recoveries), ALL_KEYS)
            tx = self._tx(one(d, [ADMIN, STEWARD, old]), "recovery.cancel", old=old)
        self._block([tx])

    @rule(data=st.data(), offset=st.sampled_from([-1, 0, 1]))
    def a_recovery_comes_due(self, data, offset):
        """An admin opens a recovery (unless one is open); time goes to its `effective`,
        a millisecond before or after; the frozen key tries to sign, the admin completes
        the recovery, and the new key acts on what the old one had: a claim, a refund of
        a spend paid to the old key."""
        d = data.draw
        m = self.model
        if not m.recoveries:
            holders = self._members("citizen", "merchant", usable=True)
            unused = [k for k in FRESH if not m.used(k)]
            if not holders or not unused:
                return
            self._block([self._tx(ADMIN, "member.recover", old=one(d, holders),
                                  new=one(d, unused))])
            if not m.recoveries:
                return
        old = one(d, list(m.recoveries))
        recovery = m.recoveries[old]
        self._advance_to(max(self.now, recovery.effective + offset))
        citizen = m.members[old].role == "citizen"
        frozen = (self._tx(old, "coin.spend", to=MERCHANTS[0], amount=1) if citizen
                  else self._tx(old, "coin.redeem", amount=1))
        txs = [frozen, self._tx(ADMIN, "recovery.complete", old=old)]
        if citizen:
            mine = [t for (t, k), s in m.claims.items() if k == old and s == "open"]
            txs.append(self._tx(recovery.new, "task.submit", proof=bytes(32),
                                task=self._pick(d, mine, list(m.tasks) or ["t0"])))
        else:
            paid = [i for i, spend in m.spends.items()
                    if spend.payee == old and spend.refunded < spend.amount]
            txs.append(self._tx(recovery.new, "coin.refund", amount=1,
                                spend=self._pick(d, paid, list(m.spends) or ["3" * 64])))
        self._block(txs)

    @rule(data=st.data())
    def policy_changes(self, data):
        d = data.draw
        year = periods(self.now)[0]
        monthly = d(st.integers(0, 4000))
        yearly = d(st.integers(max(0, monthly - 100), 12_000))
        args = dict(year=one(d, [year - 1, year, year, year + 1]),
                    hourly_cap_21plus=d(st.integers(100, 800)),
                    hourly_cap_under21=d(st.integers(100, 600)),
                    monthly_cap=monthly, yearly_cap=yearly)
        if d(st.booleans()):
            args["programme_yearly_cap"] = d(st.integers(0, yearly + 50))
        self._block([self._governed("policy.set", **args)])

    @rule(data=st.data())
    def cancels(self, data):
        d = data.draw
        tasks = [t for t, task in self.model.tasks.items() if not task.cancelled]
        if tasks:
            self._block([self._tx(one(d, [ADMIN, ADMIN, REVIEWER]), "task.cancel",
                                  task=self._pick(d, tasks, list(self.model.tasks)))])

    @rule(data=st.data())
    def replays(self, data):
        """An executed transaction again, and a new one twice in the same block."""
        d = data.draw
        if self.sent:
            fresh = self._any_tx(d)
            again = self.sent[d(st.integers(0, len(self.sent) - 1), label="sent before")]
            self._block(shuffled(d, [again, fresh, fresh]))

    @rule(step=st.sampled_from([1, 59_000, HOUR_MS, 7 * HOUR_MS, DAY_MS, 9 * DAY_MS,
                                33 * DAY_MS, 120 * DAY_MS]))
    def time_passes(self, step):
        self._advance_to(self.now + step)

    # ------------------------------------------------------------------ running blocks
    def _advance_to(self, time_ms: int) -> None:
        assert time_ms >= self.now, "block times never go back"
        self.now = self.batch.time_ms = self.single.time_ms = time_ms

    def _block(self, txs: list[Tx]) -> None:
        if not txs:
            return
        state_before, acc_before = dict(self.batch.state.data), self.batch.acc
        outcome = self.batch.run(txs)
        height = self.batch.height
        again = chaincode.execute_block(1, InMemoryState(state_before),
                                        BlockContext(height, self.now, SWITCH_MARGIN,
                                                     CHECKPOINT_INTERVAL), txs, acc_before)
        check("determinism", again.state_acc == outcome.state_acc
              and again.writes == outcome.writes
              and [chaincode.encode_result(r) for r in again.results]
              == [chaincode.encode_result(r) for r in outcome.results],
              "the same block on the same state gave another outcome")
        for tx, in_batch in zip(txs, outcome.results):
            before = dict(self.single.state.data)
            one = self.single.run([tx], height=height)
            result = one.results[0]
            event(f"{tx.kind} {result.code}")
            self._check_transaction(tx, result, one.writes, before)
            check("one at a time as in a batch",
                  chaincode.encode_result(result) == chaincode.encode_result(in_batch),
                  lambda: f"{tx.kind}: {result.code} alone, {in_batch.code} in the batch")
        self.sent.extend(txs)
        check("one at a time as in a batch", self.batch.state.data == self.single.state.data
              and self.batch.acc == self.single.acc, "the two chains' states differ")
        check_state(self.single.state, self.single.acc, self.model, self.now)

    # ------------------------------------------------------------------ invariants
    def _check_transaction(self, tx: Tx, result, writes: dict, before: dict) -> None:
        """The transaction's invariants (the model as it was before it), then the model's
        prediction, which it then takes over."""
        m, now = self.model, self.now
        what = f"{tx.kind} by {name(tx.signer)} {show(tx.args)} at {now}"
        if result.code == "duplicate":
            check("a refusal writes only its id", writes == {}, what)
        elif result.code != "ok":
            check("a refusal writes only its id",
                  writes == {b"x/" + bytes.fromhex(tx.tx_id): b""},
                  lambda: f"{what} -> {result.code} wrote {sorted(writes)}")
        check("net writes", all(before.get(k) != v for k, v in writes.items()),
              lambda: f"{what} wrote a key with the value it had")
        # A transaction that breaks a rule is refused: by the rule's check, or by one
        # that comes before it in the order of checks.
        for invariant, code, why in rules_broken(self.model, self.now, tx):
            check(invariant, result.code != "ok" and CHECKS.index(result.code)
                  <= CHECKS.index(code),
                  lambda: f"{what} -> {result.code}, though {why}")
        code, info, events = m.execute(tx, now)
        check("model", (result.code, result.info) == (code, info),
              lambda: f"{what} -> {result.code} {result.info}, expected {code} {info}")
        check("model", result.events == events,
              lambda: f"{what} -> events {result.events}, expected {events}")


# Every kind of rules 1 the machine sends, the busy ones twice, and one that is not a kind.
ANY_KINDS = (["task.post", "task.claim", "task.submit", "task.approve", "coin.spend"] * 2
             + ["task.withdraw", "task.reject", "task.cancel", "coin.refund", "coin.redeem",
                "payout.confirm", "member.update", "policy.set", "recovery.cancel",
                "recovery.complete", "stake.claim"])

# Examples, steps and derandomization come from the profile (tests/conftest.py); one
# failure is shrunk and reported, not every distinct one.
Ledger.TestCase.settings = settings(report_multiple_bugs=False,
                                    suppress_health_check=[HealthCheck.too_slow,
                                                           HealthCheck.filter_too_much])
test_ledger_matches_its_model_over_random_histories = Ledger.TestCase

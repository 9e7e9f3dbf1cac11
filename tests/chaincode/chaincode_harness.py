"""A small chain over the in-memory state, for the chaincode's tests.

It runs real blocks through chaincode.execute_block, each under the rules version in
force at its height (genesis's is 1), and applies their writes, and after
every block checks that the incremental state accumulator equals the one computed from
scratch over the whole state (the root is a function of the state).
"""
from __future__ import annotations

import hashlib

import chaincode
from chaincode import queries
from chaincode.api import BlockContext, Tx
from chaincode.root import acc_of
from chaincode.queries import InMemoryState

# 2025-06-02T10:00:00Z, a Monday in June (Amsterdam summer time).
T_JUNE_2025 = 1_748_858_400_000
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
# the switch margin of the chains here: a rules.activate names a height this far ahead
SWITCH_MARGIN = 64
# their checkpoint interval K: a validators.set enacted at h orders from c + M + 1, c the
# first multiple of K at or above h (M = 64 is what node/genesis.py gives for K = 16)
CHECKPOINT_INTERVAL = 16


def key(name: str) -> bytes:
    return hashlib.sha256(b"chaincode-test/" + name.encode()).digest()


ADMIN = key("admin")
# The default chain's one organisation and its steward: thresholds of 1, so one
# steward's proposal is enacted at once (a development network's governance).
STEWARD = key("steward")
ORGANISATIONS = ({"id": "city", "stewards": [STEWARD]},)


class Chain:
    def __init__(self, admins=(ADMIN,), policies=None, time_ms: int = T_JUNE_2025,
                 check_root: bool = True, organisations=ORGANISATIONS, law=None,
                 validators=None, checkpoint_interval: int = CHECKPOINT_INTERVAL,
                 switch_margin: int = SWITCH_MARGIN):
        if policies is None:
            policies = chaincode.DEFAULT_POLICIES
        organisations = [dict(o) for o in organisations]
        if validators is None:
            validators = [{"name": "v0", "key": key("validator"),
                           "organisation": organisations[0]["id"]}]
        self.validators = tuple((v["name"], v["key"], v["organisation"]) for v in validators)
        self.checkpoint_interval, self.switch_margin = checkpoint_interval, switch_margin
        writes, self.acc = chaincode.genesis_state(1, list(admins), list(policies),
                                                   organisations, validators, law)
        self.state = InMemoryState(writes)
        self.height = 0
        self.time_ms = time_ms
        self.count = 0
        self.check_root = check_root

    def tx(self, signer: bytes, kind: str, **args) -> Tx:
        self.count += 1
        return Tx(hashlib.sha256(b"tx/%d" % self.count).hexdigest(), signer, kind, args)

    def run(self, txs: list[Tx], time_ms: int | None = None, height: int | None = None):
        """One block; `height` repeats a height on purpose (the same block context for
        one transaction at a time as for a whole batch)."""
        if time_ms is not None:
            assert time_ms >= self.time_ms, "block times never go back"
            self.time_ms = time_ms
        self.height = self.height + 1 if height is None else height
        version, _ = chaincode.rules_in_force(self.state, self.height, 1)
        outcome = chaincode.execute_block(
            version, self.state, BlockContext(self.height, self.time_ms, self.switch_margin,
                                              self.checkpoint_interval), txs, self.acc)
        self.state.apply(outcome.writes)
        self.acc = outcome.state_acc
        if self.check_root:
            assert self.acc == acc_of(self.state.items())
        return outcome

    def do(self, signer: bytes, kind: str, **args):
        """One transaction in a block of its own; returns its result."""
        return self.run([self.tx(signer, kind, **args)]).results[0]

    def ok(self, signer: bytes, kind: str, **args):
        result = self.do(signer, kind, **args)
        assert result.code == "ok", (kind, result.code, result.info)
        return result

    # Setting the scene in few words.
    def citizen(self, name: str, band: str = "21plus", area: str = "GMS") -> bytes:
        k = key(name)
        self.ok(ADMIN, "member.register", key=k, role="citizen", age_band=band, area=area)
        return k

    def merchant(self, name: str) -> bytes:
        k = key(name)
        self.ok(ADMIN, "member.register", key=k, role="merchant", name=name)
        return k

    def member(self, name: str, role: str) -> bytes:
        """A reviewer, auditor or admin: a privileged role, so registered by governance."""
        k = key(name)
        self.govern("member.register", key=k, role=role)
        return k

    def propose(self, steward: bytes, action: str, expires: int | None = None, **args):
        if expires is None:
            expires = self.time_ms + 7 * DAY_MS
        return self.do(steward, "gov.propose", action=action, args=args, expires=expires)

    def governed(self, action: str, steward: bytes = STEWARD, **args):
        """The action as one steward's proposal (threshold 1), answered as if signed
        directly: the refusal of the proposal or of the enacted action, or `ok` with the
        action's own events."""
        result = self.propose(steward, action, **args)
        if result.code != "ok":
            return result
        decided = result.events[1]
        if decided["kind"] == "gov.failed":
            return chaincode.Result(result.tx_id, decided["code"], decided["info"])
        assert decided["kind"] == "gov.enacted", result.events
        return chaincode.Result(result.tx_id, "ok", {}, result.events[2:])

    def governed_ok(self, action: str, **args):
        result = self.governed(action, **args)
        assert result.code == "ok", (action, result.code, result.info)
        return result

    def govern(self, action: str, steward: bytes = STEWARD, **args):
        """A proposal by one steward, which must be enacted at once (threshold 1)."""
        result = self.propose(steward, action, **args)
        kinds = [e["kind"] for e in result.events]
        assert result.code == "ok" and kinds[:2] == ["gov.proposed", "gov.enacted"], \
            (action, result.code, result.info, result.events)
        return result

    def post(self, task: str, reward: int = 1000, minutes: int = 120, slots: int = 5,
             deadline: int | None = None, **extra):
        if deadline is None:
            deadline = self.time_ms + 7 * DAY_MS
        return self.do(ADMIN, "task.post", task=task, title=extra.get("title", "Litter walk"),
                       area=extra.get("area", "GMS"), domain=extra.get("domain", "public-space"),
                       reward=reward, minutes=minutes, slots=slots, deadline=deadline)

    def earn(self, citizen: bytes, task: str, reward: int = 1000, minutes: int = 120) -> None:
        """Post a task, claim, submit and approve it: the citizen earns the reward."""
        assert self.post(task, reward=reward, minutes=minutes).code == "ok"
        self.ok(citizen, "task.claim", task=task)
        self.ok(citizen, "task.submit", task=task, proof=bytes(32))
        self.ok(ADMIN, "task.approve", task=task, citizen=citizen)

    def balance(self, k: bytes) -> int:
        return queries.member(self.state, k)["balance"]

    def snapshot(self) -> dict:
        return dict(self.state.data)

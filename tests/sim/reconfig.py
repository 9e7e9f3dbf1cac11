"""Validator set changes in the simulator: the world of tests/sim/world.py over a pool of
identities (say 8), of which genesis's set is some (say 4), and a plan of set changes
that the chain carries out while the world loses, delays and duplicates messages, cuts
the network, crashes replicas (also right across a switch height) and breaks their
storage, and f Byzantine identities of every set lie.

A change is a governance request (tests/sim/fakes.py `SET_PREFIX`) that the simulated
ledger executes: it schedules the set from F = c + M + 1 (c the first multiple of K at or
above its block), replacing a pending one (`Schedule`). The plan is a list of kinds of
change - add validators, remove some, rotate a key (same place, another identity), swap
(one leaves, another joins elsewhere) - resolved one at a time, each once the one before
is in force, against the set in force then: half of the time it removes or rotates the
primary of the moment; sizes go from 4 up to 7 and back down. Before a planned change
the world may submit a decoy (another set) that the planned one then replaces, or that
takes over for a while: either way the planned set must follow. Every set, the decoys'
too, has at most f Byzantine members. Identities outside genesis start empty, as
Followers, and catch up by fetching once a set that names them is pending.

Byzantine identities run the usual filters (tests/sim/byzantine.py) while they serve a
set; with the extra behaviour `stale`, one that a change removed keeps sending votes,
checkpoints and statuses (new ones it signs and old ones it replays) to everyone, which
the world delivers under the place it last had (`Harness.receive(stale=True)`): the
replica now at that place is not accused for them (they are counted as `stale_faults`),
and they must do no harm.

The harness (tests/sim/harness.py) checks, besides agreement and the rest, that every
block a correct ledger keeps carries a commit certificate of a quorum of the set in
force at its height on the canonical chain, and every kept checkpoint a certificate of
that set naming the newest set scheduled after its block. This module checks the plan:
the run fails unless every planned change took over on the chain, in order, and the
correct members of the last set run it, past its first height, with every request
committed.
"""
from __future__ import annotations

from consensus import wire
from consensus.digest import checkpoint_bytes, commit_bytes, max_faulty, prepare_bytes
from consensus.messages import Checkpoint, Commit, Prepare, Status
from consensus.replica import Replica
from tests.sim.byzantine import BEHAVIOURS
from tests.sim.fakes import CRASH_AFTER_EXECUTE, CRASH_IN_PERSIST
from tests.sim.harness import Violation
from tests.sim.world import Settings, World

RECONFIG_BEHAVIOURS = BEHAVIOURS + ("stale",)
KINDS = ("add", "remove", "rotate", "swap")
MAX_SET = 7


def reconfig_settings(seed: int, **overrides) -> Settings:
    """The settings of a reconfiguration run: 8 identities, genesis 4 of them, 2
    Byzantine, 4 planned changes."""
    values = dict(seed=seed, pool=8, replicas=4, byzantine=2, switches=4,
                  safety_ms=5_000, requests=0, window=8, checkpoint_interval=4)
    values.update(overrides)
    return Settings(**values)


class ReconfigWorld(World):

    # ---- who is who -------------------------------------------------------------------

    def draw_identities(self, rng, s: Settings):
        assert s.pool > s.replicas >= 4
        secrets = [rng.randbytes(32 if s.ed25519 else 16) for _ in range(s.pool)]
        self.byzantine_ids = set(rng.sample(range(s.pool), s.byzantine))
        for _ in range(1000):
            members = rng.sample(range(s.pool), s.replicas)
            if self.bounded(members):
                return secrets, members
        raise AssertionError("no genesis set with at most f Byzantine members")

    def more_settings(self, rng, s: Settings) -> dict:
        k = s.checkpoint_interval
        margin = s.switch_margin
        if margin is None:
            margin = -(-s.window // k) * k + rng.choice((0, k))
        return {"switch_margin": margin}

    def draw_byzantine(self, rng, s: Settings) -> list[int]:
        return sorted(self.byzantine_ids)

    def draw_behaviours(self, rng) -> tuple[str, ...]:
        behaviours = set(rng.sample(BEHAVIOURS, rng.randint(1, 3)))
        if rng.random() < 0.5:
            behaviours.add("stale")
        if rng.random() < 0.5:
            behaviours.add("equivocate")
        return tuple(sorted(behaviours))

    def bounded(self, members) -> bool:
        """At most f of a set's members are Byzantine."""
        return sum(m in self.byzantine_ids for m in members) <= max_faulty(len(members))

    # ---- the plan ---------------------------------------------------------------------

    def draw_plan(self) -> list[tuple[str, int]]:
        """The kinds of the planned changes, with how many validators each adds or
        removes: sizes within [4, 7], at least one rotation and one change of size."""
        rng, s = self.rng, self.s
        size, plan = s.replicas, []
        for _ in range(s.switches):
            kinds = ["rotate", "swap"]
            if size < min(MAX_SET, s.pool - 1):
                kinds.append("add")
            if size > 4:
                kinds.append("remove")
            kind = rng.choice(kinds)
            count = 1
            if kind == "add":
                count = rng.randint(1, min(MAX_SET, s.pool - 1) - size)
                size += count
            elif kind == "remove":
                count = rng.randint(1, size - 4)
                size -= count
            plan.append((kind, count))
        if s.switches >= 2 and not any(k == "rotate" for k, _ in plan):
            j = rng.randrange(len(plan))
            if plan[j][0] in ("swap", "rotate"):
                plan[j] = ("rotate", 1)
            else:
                plan.append(("rotate", 1))
        return plan

    def resolve(self, kind: str, count: int, current: list[int], primary: int | None,
                avoid: list[int] | None = None) -> list[int]:
        """The identities of the set a change of `kind` makes of `current` (identities
        in place order); `primary`: a place to remove or rotate, if it may."""
        rng = self.rng
        outside = [i for i in range(len(self.nodes)) if i not in current]
        for attempt in range(200):
            members = list(current)
            target = primary if primary is not None and attempt < 100 else None
            if kind == "rotate":
                place = target if target is not None else rng.randrange(len(members))
                members[place] = rng.choice(outside)
            elif kind == "remove":
                places = set(rng.sample(range(len(members)), count))
                if target is not None and target not in places:
                    places.pop()
                    places.add(target)
                members = [m for p, m in enumerate(members) if p not in places]
            elif kind == "add":
                for joiner in rng.sample(outside, count):
                    members.insert(rng.randint(0, len(members)), joiner)
            else:  # swap: one leaves, another joins elsewhere (everyone renumbered)
                place = target if target is not None else rng.randrange(len(members))
                del members[place]
                members.insert(rng.randint(0, len(members)), rng.choice(outside))
            if self.bounded(members) and members != current and members != avoid:
                return members
        # the bound leaves no such change: rotate within it
        for place in range(len(current)):
            for joiner in outside:
                members = list(current)
                members[place] = joiner
                if self.bounded(members) and members != avoid:
                    return members
        raise AssertionError("no change keeps the Byzantine bound")

    # ---- the reference, from the harness ------------------------------------------------

    @property
    def reference_height(self) -> int:
        return len(self.in_force_at)

    def members_of(self, keys) -> list[int]:
        return [self.keys.identity[k] for k in keys]

    def now_in_force(self) -> list[int]:
        return self.members_of(self.reference.in_force(self.reference_height + 1).keys)

    def primary_place(self, members: list[int]) -> int | None:
        """The place of the primary of the moment of the set `members`, as its correct
        members up now see it (the highest view among them)."""
        keys = tuple(self.keys.public[i] for i in members)
        views = [self.nodes[i].driver.replica.view for i in members
                 if self.nodes[i].up and self.nodes[i].byzantine is None
                 and self.nodes[i].driver.replica.config.validators == keys]
        return max(views) % len(members) if views else None

    # ---- submitting changes and load ----------------------------------------------------

    def submit_to(self, members: list[int], requests, copies: int = 2) -> None:
        up = [i for i in members if self.nodes[i].up] or members
        for i in self.rng.sample(up, min(copies, len(up))):
            self.at(self.now + 1, "submit", i, list(requests))

    def change_request(self, members: list[int]):
        self.changes += 1
        keys = tuple(self.keys.public[i] for i in members)
        return self.registry.make_set_change(self.changes, keys)

    def next_change(self) -> None:
        """Resolves and submits the next planned change, maybe after a decoy: submitted
        with it (they may run in one block, or one checkpoint interval, and then have
        the same first height), or before it, the planned one following once the decoy
        ran and a checkpoint height passed (so that it replaces the decoy while that is
        pending, from a later first height, or follows it)."""
        rng = self.rng
        kind, count = self.plan[self.stage]
        current = self.now_in_force()
        primary = self.primary_place(current) if rng.random() < 0.5 else None
        members = self.resolve(kind, count, current, primary)
        self.step_members = members
        if rng.random() < self.s.decoys:
            decoy = self.resolve(rng.choice(("rotate", "swap")), 1, current, None,
                                 avoid=members)
            decoy_request = self.change_request(decoy)
            self.decoys_sent += 1
            if self.s.replace_in_interval and rng.random() < 0.5:
                self.step_request = self.change_request(members)
                self.step_sent = self.now
                self.submit_to(current, [decoy_request, self.step_request])
                return
            self.decoy_request, self.decoy_sent = decoy_request, self.now
            self.submit_to(current, [decoy_request])
            return
        self.submit_planned(current)

    def submit_planned(self, members: list[int]) -> None:
        self.step_request = self.change_request(self.step_members)
        self.step_sent = self.now
        self.submit_to(members, [self.step_request])

    def watch_decoy(self) -> None:
        request = self.decoy_request
        height = self.reference_keys.get(request.key)
        members = self.now_in_force()
        if height is None:
            if self.now - self.decoy_sent > 1_500:
                self.decoy_sent = self.now
                self.submit_to(members, [request])
            return
        k = self.config.checkpoint_interval
        if self.reference_height > -(-height // k) * k + self.rng.randint(0, 2 * k):
            self.decoy_request = None
            self.submit_planned(members)

    def watch(self) -> None:
        """Every 50 ms: carries the plan forward, and crashes a replica right across a
        switch height once per switch, in the safety phase."""
        rng, s = self.rng, self.s
        height = self.reference_height
        pending = self.reference.pending(height)
        if pending is not None and not self.liveness and pending.first_height not in \
                self.crashed_across and height >= pending.first_height - 3:
            self.crashed_across.add(pending.first_height)
            if rng.random() < s.switch_crash:
                around = set(self.members_of(pending.keys)) | set(self.now_in_force())
                up = [i for i in sorted(around) if i in self.correct and self.nodes[i].up]
                if up:
                    # the process dies now, or while it runs the set's last block (before
                    # its replica hears of it), or while the next set's replica first
                    # writes its store
                    victim = rng.choice(up)
                    how = rng.choice(("crash", CRASH_AFTER_EXECUTE, CRASH_IN_PERSIST))
                    if how == "crash":
                        self.nodes[victim].crash()
                        self.at(self.now + rng.randint(50, 1_500), "restart", victim)
                    else:
                        self.nodes[victim].disk.armed.add(how)
                    self.result.switch_crashes += 1
        if self.stage >= len(self.plan):
            return
        if self.decoy_request is not None:
            self.watch_decoy()
            return
        if self.step_request is None:
            if self.now >= self.next_change_at:
                self.next_change()
            return
        in_force = self.reference.in_force(height + 1)
        members = self.members_of(in_force.keys)
        if pending is None and members == self.step_members and \
                in_force.first_height > self.firsts[-1]:
            # the planned set took over on the chain
            self.firsts.append(in_force.first_height)
            self.stage += 1
            self.step_request = None
            self.next_change_at = self.now + rng.randint(0, 500)
            if self.stage == len(self.plan):
                final = self.new_requests(5)
                self.submit_to(members, final, copies=len(members))
            return
        executed = self.step_request.key in self.reference_keys
        if executed and pending is None:
            # a decoy that came later replaced it: the plan asks for its set again
            self.submit_planned(members)
        elif not executed and self.now - self.step_sent > 1_500:
            self.step_sent = self.now
            self.submit_to(members, [self.step_request])

    def load(self) -> None:
        """A few new requests at one member of the set in force, until the plan is done."""
        if self.stage >= len(self.plan):
            return
        members = self.now_in_force()
        self.submit_to(members, self.new_requests(self.rng.randint(1, 3)), copies=1)
        self.at(self.now + self.rng.randint(20, 80), "load")

    def resubmit(self) -> None:
        """In the liveness phase, the requests not yet on the chain go again to the
        members of the set in force (a pool is not durable, and a replica that leaves
        hands over what waits to a follower that orders nothing)."""
        waiting = [r for r in self.created if r.key not in self.reference_keys]
        if waiting:
            members = [i for i in self.now_in_force() if i in self.correct]
            for i in members:
                for k in range(0, len(waiting), 50):
                    self.at(self.now + 1, "submit", i, waiting[k:k + 50])
        self.at(self.now + 1_000, "resubmit")

    def stale_votes(self, node) -> None:
        """A removed Byzantine validator keeps voting: new prepares, commits and
        checkpoints it signs for the heights now being ordered, statuses that claim it
        is ahead, and replays of what it sent while it served, to every identity, under
        the place it last had."""
        rng, config = self.rng, self.config
        crypto = self.keys.signer(node.index)
        height = self.reference_height + rng.randint(1, 3)
        view = rng.randint(0, 2)
        digest = rng.randbytes(32)
        messages = [
            Prepare(view, height, digest, crypto.sign(
                prepare_bytes(config.domain, view, height, digest))),
            Commit(view, height, digest, crypto.sign(
                commit_bytes(config.domain, view, height, digest))),
            Status(view, True, height + 50, height)]
        k = config.checkpoint_interval
        at = -(-height // k) * k
        block, set_hash = rng.randbytes(32), rng.randbytes(32)
        messages.append(Checkpoint(at, block, set_hash, crypto.sign(
            checkpoint_bytes(config.domain, at, block, set_hash))))
        history = node.byzantine.history
        if history:
            messages.append(history[rng.randrange(len(history))][1])
        for peer in range(len(self.nodes)):
            if peer != node.index:
                for message in rng.sample(messages, rng.randint(1, len(messages))):
                    self.transmit(node.index, peer, "deliver_stale", wire.encode(message))
        self.result.stale_votes += 1

    # ---- the world's events, with the ones above ----------------------------------------

    @staticmethod
    def target(event) -> int | None:
        if event[0] == "deliver_stale":
            return event[1]
        return World.target(event)

    def _step(self, event) -> None:
        kind = event[0]
        if kind == "watch":
            self.watch()
            if not self.finished:
                self.at(self.now + 50, "watch")
        elif kind == "load":
            self.load()
        elif kind == "resubmit":
            self.resubmit()
        elif kind == "deliver_stale":
            _, to, sender, data = event
            if self.nodes[to].up:
                self.receive(to, sender, self.decode(data), stale=True)
        else:
            super()._step(event)
            if kind == "tick":
                node = self.nodes[event[1]]
                if node.up and node.byzantine is not None and \
                        "stale" in node.byzantine.behaviours and \
                        node.last_index is not None and \
                        node.driver.replica.me is None and self.rng.random() < 0.3:
                    self.stale_votes(node)

    # ---- the run ----------------------------------------------------------------------

    def _run(self) -> None:
        rng, s, n = self.rng, self.s, len(self.nodes)
        self.plan = self.draw_plan()
        self.stage = 0
        self.step_request = None
        self.decoy_request = None
        self.decoy_sent = 0
        self.step_members: list[int] = []
        self.step_sent = 0
        self.next_change_at = rng.randint(200, 800)
        self.firsts = [1]           # first heights of the planned sets as they took over
        self.changes = 0
        self.decoys_sent = 0
        self.crashed_across: set[int] = set()
        self.finished = False
        for i in range(n):
            self.start(i)
        self.at(0, "watch")
        self.at(0, "load")
        # the safety phase: loss, delay, duplicates, crashes, storage faults, a partition
        self.schedule_failures(rng, s, n)
        self.run_until(s.safety_ms)
        # the liveness phase: every correct identity up, the network connected and
        # reliable; the plan goes on to its end, and every request commits
        self.begin_liveness()
        for i in self.correct:
            self.start(i)
        self.at(self.now + 1, "resubmit")
        deadline = self.now + s.liveness_ms
        done = self.run_until(deadline, self.plan_done)
        self.finished = True
        if not done:
            raise Violation(self.why_not_done(s.liveness_ms))

    def final_core(self) -> list[int]:
        """The correct members of the set in force."""
        return [i for i in self.now_in_force() if i in self.correct]

    def plan_done(self) -> bool:
        if self.stage < len(self.plan):
            return False
        keys = self.reference.in_force(self.reference_height + 1).keys
        for i in self.final_core():
            node = self.nodes[i]
            if not node.up or node.ledger.height < self.firsts[-1]:
                return False
            replica = node.driver.replica
            if type(replica) is not Replica or replica.config.validators != keys:
                return False
            executed = node.ledger.executed_keys
            if len(executed) < len(self.created) or \
                    any(r.key not in executed for r in self.created[-5:]):
                return False
        return all(r.key in self.nodes[i].ledger.executed_keys
                   for i in self.final_core() for r in self.created)

    def why_not_done(self, liveness_ms: int) -> str:
        if self.stage < len(self.plan):
            return (f"reconfiguration: {self.stage} of {len(self.plan)} planned set changes "
                    f"took over within the liveness bound ({liveness_ms} ms); the chain "
                    f"is at {self.reference_height}, its sets "
                    f"{[(v.first_height, len(v.keys)) for v in self.reference.sets]}, "
                    f"heights {self.heights()}")
        core = self.final_core()
        missing = sum(1 for r in self.created
                      if any(r.key not in self.nodes[i].ledger.executed_keys for i in core))
        kinds = {i: type(self.nodes[i].driver.replica).__name__ if self.nodes[i].up
                 else "down" for i in core}
        return (f"liveness: {missing} requests not committed at every correct member of "
                f"the last set within {liveness_ms} ms (heights "
                f"{ {i: self.nodes[i].ledger.height for i in core} }, first height "
                f"{self.firsts[-1]}, running {kinds})")

    def run(self):
        result = super().run()
        if hasattr(self, "plan"):
            self.tally()
        return result

    def tally(self) -> None:
        result = self.result
        result.switches = len(self.reference.sets) - 1
        result.planned = self.stage
        result.plan = len(self.plan)
        result.replaced = self.reference.replaced
        result.sizes = tuple(len(v.keys) for v in self.reference.sets)

"""The one wiring of replicas that both test drivers share: the seeded simulator
(tests/sim/world.py, a random network that decides every delivery) and the scripted
cluster of the scenario tests (tests/consensus/cluster.py, where the test decides).

A `Harness` builds the network: keys, the config, the request registry, and per replica
a `Node` with its disk, consensus store and ledger (tests/sim/fakes.py), the production
`Driver`, and a `Link` that hands what the driver sends back to the harness. It owns:
- the send path: what a correct replica sends is checked against its disk
  (`check_persisted`) and goes to one peer or to every other, a Byzantine replica's
  through its filter, and each message crosses as wire bytes;
- the receive path: bytes decoded as a replica's transport decodes them, handed to the
  driver, and what a correct replica then records about its peers checked
  (`check_faults`, where the driver knows who is Byzantine);
- catch-up: an answer checked by consensus/fetched.py, as node/runtime.py checks it,
  and the run that passes applied (`take_fetched`);
- the checkers on every block and checkpoint a ledger keeps (`check_block`,
  `check_checkpoint`).
A driver of the harness decides the rest: when replicas tick, start and crash, how a
message is carried (`carry`), and how a catch-up request reaches a peer (`fetch`).
"""
from __future__ import annotations

import dataclasses

import msgpack

from consensus import durable, handover, wire
from consensus.api import ValidatorSet
from consensus.certificates import batch_is_certified, stable_is_certified
from consensus.config import Config
from consensus.digest import ZERO_HASH, validator_set_hash
from consensus.driver import Driver
from consensus.fetched import DUE, Refusal, check_fetched
from consensus.follower import Follower
from consensus.messages import Commit, NewView, PrePrepare, Prepare, ViewChange
from consensus.replica import Replica
from tests.sim.fakes import (DictStorage, Disk, Ed25519Keys, HashChainLedger, KeyedHashKeys,
                             Registry, Schedule, header_hash, set_change_keys)

# the base hash of a set whose first height lies beyond the blocks run here: unknown, and
# not needed to check a certificate under that set (Config only insists it is not zero)
UNKNOWN_BASE = b"\xff" * 32


class Violation(Exception):
    pass


def keys_and_config(secrets: list[bytes], chain: str, ed25519: bool = False,
                    members: list[int] | None = None,
                    **settings) -> tuple[KeyedHashKeys | Ed25519Keys, Config]:
    """The identities' keys from one secret each (keyed BLAKE2b, or Ed25519 seeds) and
    the network's genesis config over the validators `members` (identities, in the
    set's order; None: every identity, in order)."""
    keys = Ed25519Keys(secrets) if ed25519 else KeyedHashKeys(secrets)
    order = range(len(secrets)) if members is None else members
    validators = tuple(keys.public[i] for i in order)
    return keys, Config(chain=chain, validators=validators, **settings)


class Node:
    """One validator process: its disk outlives the process, its driver does not."""

    def __init__(self, harness: "Harness", index: int):
        self.harness, self.index = harness, index
        self.key = harness.keys.public[index]
        self.disk = Disk()
        self.storage = DictStorage(self.disk)
        self.ledger = HashChainLedger(harness.check_block, harness.check_checkpoint, self.disk,
                                      Schedule(harness.genesis_set,
                                               harness.config.checkpoint_interval,
                                               harness.config.switch_margin))
        self.ledger.owner = self
        # signs as this identity and verifies by identity: genesis's numbering when every
        # identity is a validator of genesis (the scenario tests' case)
        self.crypto = harness.keys.signer(index)
        self.byzantine = None           # tests/sim/byzantine.py's filter, for a liar
        self.up = False
        self.incarnation = 0
        self.driver: Driver | None = None
        self.last_index: int | None = None  # its place in the last set it served

    def start(self) -> None:
        """Starts the process: the replica of the set in force at the next height (a
        Follower if that set leaves this validator out), from what the store and the
        ledger hold, as the validator starts. The first flush may hit a storage fault;
        then the node is down again (`fail`)."""
        self.incarnation += 1
        self.up = True
        harness, ledger = self.harness, self.ledger
        height = ledger.height
        in_force = ledger.schedule.in_force(height + 1)
        config = harness.config_for(in_force, ledger.hashes[in_force.first_height - 2]
                                    if in_force.first_height > 1 else ZERO_HASH)
        crypto = harness.crypto_for(self.index, config.validators)
        next_set = ledger.schedule.pending(height + 1)
        if self.key in config.validators:
            me = config.validators.index(self.key)
            replica = Replica(config, me, crypto, harness.registry.inspect,
                              self.storage.items(), height, ledger.head_hash,
                              ledger.last_time_ms, list(ledger.executed_keys),
                              next_set=next_set)
        else:
            replica = Follower(config, crypto, height, ledger.head_hash, ledger.last_time_ms,
                               next_set=next_set)
        self.driver = Driver(replica, self.storage, Link(harness, self), ledger,
                             on_failure=self.fail, successor=self.successor)
        self.driver.flush()

    def successor(self, old):
        """The driver's successor: the next set's replica (or a Follower), as the
        validator makes it (consensus/handover.py)."""
        crypto = self.harness.crypto_for(self.index, tuple(old.next_set.keys))
        self.harness.switches += 1
        return handover.successor(old, self.key, crypto, self.harness.registry.inspect,
                                  self.storage.items())

    def fail(self, error: BaseException) -> None:
        """The driver's on_failure: fail-stop at once, as the validator does (`fail`):
        no input reaches this replica any more. The error propagates to whoever fed the
        driver; the simulator restarts the node later if it was a storage fault."""
        self.crash()

    def crash(self) -> None:
        """The process dies: what it had not persisted is gone."""
        if self.driver is not None:
            self.harness.refused_batches += getattr(self.driver.replica, "refused_batches", 0)
        self.up = False
        self.driver = None


class Link:
    """The driver's Network: hands messages and fetches to the harness."""

    def __init__(self, harness: "Harness", node: Node):
        self.harness, self.node = harness, node

    def send(self, to, message) -> None:
        self.harness.send(self.node, to, message)

    def fetch(self, request) -> None:
        self.harness.fetch(self.node, request)


class Harness:
    node_type = Node
    # whether a correct replica's accusations are checked on every delivery; a driver
    # whose tests take a replica's faults themselves leaves them to the test
    check_accusations = True
    # whether a correct peer's answer may be refused as not due (delayed, or raced by a
    # restart); where answers arrive at once, that too is a violation
    answers_may_be_stale = True

    def __init__(self, secrets: list[bytes], chain: str, ed25519: bool = False,
                 members: list[int] | None = None, **settings):
        """One node per secret (an identity); genesis's validators are the identities
        `members`, in that order (None: all of them, replica i being identity i)."""
        self.keys, self.config = keys_and_config(secrets, chain, ed25519, members, **settings)
        self.genesis_set = ValidatorSet(1, self.config.validators)
        self.registry = Registry()
        self._configs: dict[tuple, Config] = {}
        self._cryptos: dict[tuple, object] = {}
        self._places: dict[tuple[bytes, ...], dict[bytes, int]] = {}
        # the reference: the schedule of validator sets the canonical chain makes, and
        # per height the set in force there and the newest set scheduled after it
        self.reference = Schedule(self.genesis_set, self.config.checkpoint_interval,
                                  self.config.switch_margin)
        self.reference_keys: dict[bytes, int] = {}  # key -> height, on the canonical chain
        self.in_force_at: dict[int, ValidatorSet] = {}
        self.reference_base: dict[int, bytes] = {}  # first height -> base block's hash
        self.newest_after: dict[int, ValidatorSet] = {}
        self.nodes = [self.node_type(self, i) for i in range(len(secrets))]
        self.canonical: dict[int, bytes] = {}       # height -> batch digest, first seen
        self.canonical_hash: dict[int, bytes] = {}  # height -> checkpointed block hash
        # tallies of the whole run
        self.refused_batches = 0    # batch answers refused by drivers since stopped
        self.faults_seen = 0        # faults correct replicas recorded (all Byzantine ones')
        self.stale_faults = 0       # faults recorded on a removed validator's stale index
        self.caught_up = 0          # fetched blocks correct replicas applied
        self.stale_answers = 0      # correct answers refused as not due
        self.switches = 0           # replicas handed over to the next set's
        # catch-up answers of peers that may lie, refused: (requester, server, Refusal)
        self.refused_fetched: list[tuple[int, int, Refusal]] = []

    # ---- for the driver of the harness ------------------------------------------------

    def carry(self, sender: int, to: int, data: bytes) -> None:
        """Carries one message's bytes from `sender` to `to` (or loses them)."""
        raise NotImplementedError

    def fetch(self, node: Node, request) -> None:
        """The driver's catch-up request (consensus.api.FetchRequest) leaves `node`."""
        raise NotImplementedError

    def may_lie(self, server: int) -> bool:
        """Whether `server`'s catch-up answers may be refused without a violation."""
        return self.nodes[server].byzantine is not None

    # ---- validator sets -----------------------------------------------------------------

    def config_for(self, vset: ValidatorSet, base_hash: bytes) -> Config:
        """The config of validator set `vset`, whose base block (the one before its
        first height) has hash `base_hash`."""
        if vset.first_height == 1:
            assert tuple(vset.keys) == self.config.validators
            return self.config
        key = (vset.first_height, tuple(vset.keys), base_hash)
        config = self._configs.get(key)
        if config is None:
            config = self._configs[key] = dataclasses.replace(
                self.config, validators=tuple(vset.keys), first_height=vset.first_height,
                base_hash=base_hash)
        return config

    def crypto_for(self, identity: int, validators: tuple[bytes, ...]):
        """Identity `identity`'s Crypto under a set's numbering (the validator's key,
        verifying each replica index by the key at that place of the set)."""
        key = (identity, validators)
        crypto = self._cryptos.get(key)
        if crypto is None:
            crypto = self._cryptos[key] = self.keys.signer(identity, validators)
        return crypto

    def place(self, validators: tuple[bytes, ...], identity: int) -> int | None:
        """Identity `identity`'s replica index in the set `validators`, if a member."""
        places = self._places.get(validators)
        if places is None:
            places = self._places[validators] = {k: i for i, k in enumerate(validators)}
        return places.get(self.keys.public[identity])

    def identity(self, validators: tuple[bytes, ...], index: int) -> int | None:
        """The identity at place `index` of the set `validators`."""
        if not 0 <= index < len(validators):
            return None
        return self.keys.identity.get(validators[index])

    def set_at(self, node: Node):
        """consensus.fetched.SetAt for `node`: the config and crypto of the set in force
        at a height, by what its ledger ran, or None where those blocks do not decide it
        yet. A change enacted in a block not run yet takes over above that block + M + 1
        at the earliest, and replaces a pending set until the block before that set's
        first height has run: so with a set pending from F, the heights from F on are
        unknown until F - 1 has run (it may never take over); with none, those up to
        the head + M + 1 are known."""
        ledger = node.ledger

        def set_at(height: int):
            head = ledger.height
            pending = ledger.schedule.pending(head)
            if pending is not None and pending.first_height > head + 1:
                if height >= pending.first_height:
                    return None
            elif height > head + self.config.switch_margin + 1:
                return None
            vset = ledger.schedule.in_force(height)
            first = vset.first_height
            base = ZERO_HASH if first == 1 else (ledger.hashes[first - 2]
                                                 if first - 1 <= head else UNKNOWN_BASE)
            return self.config_for(vset, base), self.crypto_for(node.index, tuple(vset.keys))
        return set_at

    # ---- replicas ---------------------------------------------------------------------

    def start(self, i: int) -> bool:
        """Starts replica i unless it is up; whether it started."""
        node = self.nodes[i]
        if node.up:
            return False
        node.start()
        return True

    def replica(self, i: int) -> Replica:
        return self.nodes[i].driver.replica

    def heights(self) -> list[int]:
        return [node.ledger.height for node in self.nodes]

    # ---- sending and receiving ----------------------------------------------------------

    def send(self, node: Node, to: int | None, message) -> None:
        """What a replica's driver sends: a correct replica's only once its disk holds
        what the message shows, a Byzantine one's through its filter."""
        replica = node.driver.replica
        if replica.me is not None:
            node.last_index = replica.me
        if node.byzantine is not None:
            byzantine = node.byzantine
            if replica.me is not None:      # a follower's filter keeps its last place
                byzantine.config, byzantine.me = replica.config, replica.me
                byzantine.crypto = self.crypto_for(node.index, replica.config.validators)
            peers = [peer for peer, _ in self.address(node.index, to, message)]
            self.emit(node.index, byzantine.outgoing(to, message, peers))
            return
        self.check_persisted(node, message)
        self.post(node.index, to, message)

    def post(self, sender: int, to: int | None, message) -> None:
        """`message` leaves `sender` for `to`, or (None) for every other replica."""
        self.emit(sender, self.address(sender, to, message))

    def address(self, sender: int, to: int | None, message) -> list[tuple[int, object]]:
        """Where a message of `sender` goes: to the identity at place `to` of its set, or
        (None) to every other member of its set and of the set pending after it."""
        node = self.nodes[sender]
        replica = node.driver.replica if node.driver is not None else None
        validators = self.config.validators if replica is None else replica.config.validators
        if to is not None:
            peer = self.identity(validators, to)
            return [] if peer is None else [(peer, message)]
        keys = list(validators)
        if replica is not None and replica.next_set is not None:
            keys += [k for k in replica.next_set.keys if k not in validators]
        identity = self.keys.identity
        return [(identity[k], message) for k in keys if identity[k] != sender]

    def emit(self, sender: int, pairs) -> None:
        encoded: dict[int, bytes] = {}
        for peer, message in pairs:
            data = encoded.get(id(message))
            if data is None:
                data = encoded[id(message)] = wire.encode(message)
            self.carry(sender, peer, data)

    def decode(self, data: bytes):
        return wire.decode(data, self.config.max_message_bytes)

    def receive(self, to: int, sender: int, message, stale: bool = False) -> None:
        """A message of identity `sender` reaches identity `to`, if it is up: handed to
        its driver with the sender's place in the set `to` serves, and dropped if the
        sender is not in it (the validator's links are its set's). `stale`: a removed
        validator's message delivered even so, under the place it last had."""
        node = self.nodes[to]
        if not node.up:
            return
        index = self.place(node.driver.replica.config.validators, sender)
        if index is None:
            index = self.nodes[sender].last_index if stale else None
            if index is None:
                return
            node.driver.receive(index, message)
            if node.up and node.byzantine is None:
                # whatever it records is against the replica that holds that place now:
                # the simulator, not that replica, made the lie
                self.stale_faults += len(node.driver.replica.take_faults())
            return
        node.driver.receive(index, message)
        if self.check_accusations and node.byzantine is None and node.up:
            self.check_faults(node)

    # ---- catch-up -----------------------------------------------------------------------

    def fetch_peers(self, node: Node, request) -> list[int]:
        """The identities a catch-up request names (replica indices of the set the
        requester serves)."""
        validators = node.driver.replica.config.validators
        out = []
        for index in request.peers:
            peer = self.identity(validators, index)
            if peer is not None and peer != node.index:
                out.append(peer)
        return out

    def take_fetched(self, node: Node, server: int, blocks) -> Refusal | None:
        """A catch-up answer from `server` reaches `node`: checked by consensus/fetched.py
        as the validator checks it (node/runtime.py `_apply_blocks`), each block against
        the set in force at its height by what the node's ledger ran (`set_at`), the run
        that passes applied. A correct replica that refuses it records the refusal if the
        server may lie, counts it if it is a stale answer where answers may be stale,
        and else reports a violation. Returns the refusal."""
        replica = node.driver.replica
        committed = replica.committed_height
        ledger = node.ledger
        checked = check_fetched(self.set_at(node), self.registry.inspect, header_hash,
                                committed,
                                ledger.head_hash if ledger.height == committed else None,
                                blocks)
        if checked.batches:
            node.driver.apply_fetched(list(checked.batches))
        refusal = checked.refused
        if node.byzantine is not None:
            return refusal
        self.caught_up += len(checked.batches)
        if refusal is None:
            return None
        if self.may_lie(server):
            self.refused_fetched.append((node.index, server, refusal))
        elif refusal.kind == DUE and self.answers_may_be_stale:
            self.stale_answers += 1
        else:
            raise Violation(f"replica {node.index} refused correct replica {server}'s "
                            f"block {refusal.height}: {refusal.reason}")
        return refusal

    # ---- checkers (outside the replicas) -----------------------------------------------

    def check_faults(self, node: Node) -> None:
        """A correct replica accuses only Byzantine ones: a false accusation would make a
        node drop a correct partner's link."""
        replica = node.driver.replica
        for fault in replica.take_faults():
            peer = self.identity(replica.config.validators, fault.peer)
            if peer is None or self.nodes[peer].byzantine is None:
                raise Violation(f"replica {node.index} accused correct replica "
                                f"{peer} (place {fault.peer} of the set from "
                                f"{replica.config.first_height}) of {fault.kind}")
            self.faults_seen += 1

    def check_persisted(self, node: Node, message) -> None:
        """What a correct replica votes is on its disk before the vote leaves (the
        driver's persist, then send): a pre-prepare or prepare needs its vote there, a
        commit its prepared certificate, a view change its view and every certificate it
        shows, a new view its view - or a later view's, or a stable checkpoint at or
        above the height, which dropped them."""
        data, t = node.storage.data, type(message)
        if t is PrePrepare or t is Prepare or t is Commit:
            height = message.height
            held = self._held(data, height, t is Commit)
            if held is None or held[0] < message.view or \
                    (held[0] == message.view and held[1] != message.digest):
                raise Violation(f"replica {node.index} sent a {t.__name__} for height "
                                f"{height} of view {message.view} that its disk does not "
                                f"hold (it holds {held})")
        elif t is ViewChange or t is NewView:
            view = message.new_view if t is ViewChange else message.view
            stored = data.get(durable.VIEW_KEY)
            if stored is None or msgpack.unpackb(stored)[0] < view:
                raise Violation(f"replica {node.index} sent a {t.__name__} for view {view} "
                                f"before its disk held that view")
            me = node.index if node.driver is None else node.driver.replica.me
            if t is ViewChange and message.replica == me:
                for proof in message.prepared:
                    held = self._held(data, proof.height, True)
                    if held is None or held[0] < proof.view:
                        raise Violation(f"replica {node.index} showed a prepared "
                                        f"certificate for height {proof.height} that its "
                                        f"disk does not hold")

    @staticmethod
    def _held(data: dict, height: int, proof: bool) -> tuple[int, bytes] | None:
        """(view, digest) of the vote or prepared certificate the disk holds at
        `height`; a view beyond any when a stable checkpoint covers the height."""
        stable = data.get(durable.STABLE_KEY)
        if stable is not None and msgpack.unpackb(stable)[0] >= height:
            return (1 << 64, b"")
        if proof:
            raw = data.get(durable.proof_key(height))
            if raw is None:
                return None
            certificate = wire.decode_proof(raw)
            return certificate.view, certificate.digest
        raw = data.get(durable.vote_key(height))
        return None if raw is None else tuple(msgpack.unpackb(raw))

    def check_block(self, ledger: HashChainLedger, batch) -> None:
        """A ledger is about to keep a block: heights in order, only submitted requests,
        and at a correct replica the canonical batch at that height, under the set in
        force there (the reference schedule, which this call extends when the block is
        the first at its height), with a commit certificate of a quorum of that set by
        its numbering and keys."""
        owner = ledger.owner
        height = batch.height
        if height != ledger.height + 1:
            raise Violation(f"replica {owner.index} executed height {height} "
                            f"after {ledger.height}: commits regress or skip")
        for request in batch.requests:
            if request.key not in self.registry.by_key:
                raise Violation(f"height {height} holds a request nobody submitted")
        if owner.byzantine is not None:
            return
        known = self.canonical.setdefault(height, batch.digest)
        if known != batch.digest:
            raise Violation(f"fork: correct replicas committed different batches at "
                            f"height {height}")
        if height not in self.in_force_at:
            self._extend_reference(ledger, batch)
        in_force = self.in_force_at.get(height) or self.reference.in_force(height)
        if ledger.schedule is not None and ledger.schedule.in_force(height) != in_force:
            raise Violation(f"replica {owner.index} runs height {height} under another "
                            f"validator set than the chain's")
        config = self.reference_config(height)
        if not batch_is_certified(config, self.crypto_for(owner.index, config.validators),
                                  batch):
            raise Violation(f"height {height} committed without a valid certificate of "
                            f"the validator set in force there")

    def _extend_reference(self, ledger: HashChainLedger, batch) -> None:
        height = batch.height
        if height in self.in_force_at:
            return
        in_force = self.in_force_at[height] = self.reference.in_force(height)
        if in_force.first_height == height and height > 1:
            self.reference_base[height] = ledger.head_hash
        for request in batch.requests:
            if request.key in self.reference_keys:
                continue
            self.reference_keys[request.key] = height
            keys = set_change_keys(request.payload)
            if keys is not None:
                self.reference.enact(height, keys)
        self.newest_after[height] = self.reference.newest(height)

    @staticmethod
    def only_set(config: Config, crypto):
        """A consensus.fetched.SetAt that answers one config and crypto at every height
        (a test that checks blocks of a network that never changes its set)."""
        return lambda height: (config, crypto)

    def reference_config(self, height: int) -> Config:
        """The config of the set in force at `height` on the canonical chain."""
        vset = self.in_force_at.get(height) or self.reference.in_force(height)
        first = vset.first_height
        base = ZERO_HASH if first == 1 else self.reference_base.get(first, UNKNOWN_BASE)
        return self.config_for(vset, base)

    def check_checkpoint(self, ledger: HashChainLedger, checkpoint) -> None:
        """A correct ledger keeps a stable checkpoint: of its own block, the same at
        every correct replica, naming the newest set scheduled after that block, and
        certified by a quorum of the set in force at its height."""
        owner = ledger.owner
        if owner.byzantine is not None:
            return
        height = checkpoint.height
        if height > ledger.height or ledger.hashes[height - 1] != checkpoint.block_hash:
            raise Violation(f"replica {owner.index} kept a checkpoint at {height} that "
                            f"disagrees with its block")
        known = self.canonical_hash.setdefault(height, checkpoint.block_hash)
        if known != checkpoint.block_hash:
            raise Violation(f"checkpoints disagree at height {height}")
        config = self.reference_config(height)
        newest = self.newest_after.get(height)
        if newest is not None and checkpoint.set_hash != validator_set_hash(
                config.domain, newest.first_height, tuple(newest.keys)):
            raise Violation(f"replica {owner.index} kept a checkpoint at {height} that "
                            f"names another validator set than the newest scheduled")
        if not stable_is_certified(config, self.crypto_for(owner.index, config.validators),
                                   checkpoint):
            raise Violation(f"replica {owner.index} kept a checkpoint at {height} without "
                            f"a certificate of a quorum of the set in force there")

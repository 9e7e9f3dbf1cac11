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

import hashlib

import msgpack

from consensus import durable, wire
from consensus.certificates import batch_is_certified
from consensus.config import Config
from consensus.driver import Driver
from consensus.fetched import DUE, Refusal, check_fetched
from consensus.messages import Commit, NewView, PrePrepare, Prepare, ViewChange
from consensus.replica import Replica
from tests.sim.fakes import (DictStorage, Disk, Ed25519Keys, HashChainLedger, KeyedHashKeys,
                             Registry, header_hash)


class Violation(Exception):
    pass


def keys_and_config(secrets: list[bytes], chain: str, ed25519: bool = False,
                    **settings) -> tuple[KeyedHashKeys | Ed25519Keys, Config]:
    """The validators' keys from one secret each (keyed BLAKE2b, or Ed25519 seeds) and
    the network's config over them."""
    if ed25519:
        keys = Ed25519Keys(secrets)
        validators = tuple(keys.public)
    else:
        keys = KeyedHashKeys(secrets)
        validators = tuple(hashlib.sha256(s).digest() for s in secrets)
    return keys, Config(chain=chain, validators=validators, **settings)


class Node:
    """One validator process: its disk outlives the process, its driver does not."""

    def __init__(self, harness: "Harness", index: int):
        self.harness, self.index = harness, index
        self.disk = Disk()
        self.storage = DictStorage(self.disk)
        self.ledger = HashChainLedger(harness.check_block, harness.check_checkpoint, self.disk)
        self.crypto = harness.keys.signer(index)
        self.byzantine = None           # tests/sim/byzantine.py's filter, for a liar
        self.up = False
        self.incarnation = 0
        self.driver: Driver | None = None

    def start(self) -> None:
        """Starts the process: a replica from what the store and the ledger hold. The
        first flush may hit a storage fault; then the node is down again (`fail`)."""
        self.incarnation += 1
        self.up = True
        harness, ledger = self.harness, self.ledger
        replica = Replica(harness.config, self.index, self.crypto, harness.registry.inspect,
                          self.storage.items(), ledger.height, ledger.head_hash,
                          ledger.last_time_ms, list(ledger.executed_keys))
        self.driver = Driver(replica, self.storage, Link(harness, self), ledger,
                             on_failure=self.fail)
        self.driver.flush()

    def fail(self, error: BaseException) -> None:
        """The driver's on_failure: fail-stop at once, as the validator does (`fail`):
        no input reaches this replica any more. The error propagates to whoever fed the
        driver; the simulator restarts the node later if it was a storage fault."""
        self.crash()

    def crash(self) -> None:
        """The process dies: what it had not persisted is gone."""
        if self.driver is not None:
            self.harness.refused_batches += self.driver.replica.refused_batches
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

    def __init__(self, secrets: list[bytes], chain: str, ed25519: bool = False, **settings):
        self.keys, self.config = keys_and_config(secrets, chain, ed25519, **settings)
        self.registry = Registry()
        self.nodes = [self.node_type(self, i) for i in range(len(secrets))]
        self.canonical: dict[int, bytes] = {}       # height -> batch digest, first seen
        self.canonical_hash: dict[int, bytes] = {}  # height -> checkpointed block hash
        # tallies of the whole run
        self.refused_batches = 0    # batch answers refused by drivers since stopped
        self.faults_seen = 0        # faults correct replicas recorded (all Byzantine ones')
        self.caught_up = 0          # fetched blocks correct replicas applied
        self.stale_answers = 0      # correct answers refused as not due
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
        if node.byzantine is not None:
            self.emit(node.index, node.byzantine.outgoing(to, message))
            return
        self.check_persisted(node, message)
        self.post(node.index, to, message)

    def post(self, sender: int, to: int | None, message) -> None:
        """`message` leaves `sender` for `to`, or (None) for every other replica."""
        self.emit(sender, self.address(sender, to, message))

    def address(self, sender: int, to: int | None, message) -> list[tuple[int, object]]:
        if to is not None:
            return [(to, message)]
        return [(i, message) for i in range(len(self.nodes)) if i != sender]

    def emit(self, sender: int, pairs) -> None:
        encoded: dict[int, bytes] = {}
        for peer, message in pairs:
            data = encoded.get(id(message))
            if data is None:
                data = encoded[id(message)] = wire.encode(message)
            self.carry(sender, peer, data)

    def decode(self, data: bytes):
        return wire.decode(data, self.config.max_message_bytes)

    def receive(self, to: int, sender: int, message) -> None:
        """A message reaches replica `to`, if it is up."""
        node = self.nodes[to]
        if not node.up:
            return
        node.driver.receive(sender, message)
        if self.check_accusations and node.byzantine is None:
            self.check_faults(node)

    # ---- catch-up -----------------------------------------------------------------------

    def take_fetched(self, node: Node, server: int, blocks) -> Refusal | None:
        """A catch-up answer from `server` reaches `node`: checked by consensus/fetched.py
        as the validator checks it (node/runtime.py `_apply_blocks`), the run that passes
        applied. A correct replica that refuses it records the refusal if the server may
        lie, counts it if it is a stale answer where answers may be stale, and else
        reports a violation. Returns the refusal."""
        replica = node.driver.replica
        committed = replica.committed_height
        ledger = node.ledger
        checked = check_fetched(self.config, node.crypto, self.registry.inspect, header_hash,
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
        for fault in node.driver.replica.take_faults():
            if self.nodes[fault.peer].byzantine is None:
                raise Violation(f"replica {node.index} accused correct replica "
                                f"{fault.peer} of {fault.kind}")
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
            if t is ViewChange and message.replica == node.index:
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
        owner = next(n for n in self.nodes if n.ledger is ledger)
        if batch.height != ledger.height + 1:
            raise Violation(f"replica {owner.index} executed height {batch.height} "
                            f"after {ledger.height}: commits regress or skip")
        for request in batch.requests:
            if request.key not in self.registry.by_key:
                raise Violation(f"height {batch.height} holds a request nobody submitted")
        if owner.byzantine is not None:
            return
        known = self.canonical.setdefault(batch.height, batch.digest)
        if known != batch.digest:
            raise Violation(f"fork: correct replicas committed different batches at "
                            f"height {batch.height}")
        if not batch_is_certified(self.config, owner.crypto, batch):
            raise Violation(f"height {batch.height} committed without a valid certificate")

    def check_checkpoint(self, ledger: HashChainLedger, checkpoint) -> None:
        owner = next(n for n in self.nodes if n.ledger is ledger)
        if owner.byzantine is not None:
            return
        height = checkpoint.height
        if height > ledger.height or ledger.hashes[height - 1] != checkpoint.block_hash:
            raise Violation(f"replica {owner.index} kept a checkpoint at {height} that "
                            f"disagrees with its block")
        known = self.canonical_hash.setdefault(height, checkpoint.block_hash)
        if known != checkpoint.block_hash:
            raise Violation(f"checkpoints disagree at height {height}")

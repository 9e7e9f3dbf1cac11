"""The joiner's choice of a snapshot and its fetching of the chunks (node/statesync.py,
docs/statesync.md "The joiner's steps" 1 and 3), with fake links in place of the
transport: what counts is a checkpoint that f + 1 members of the set in force offer with
a quorum's certificate, and a chunk from a peer that is not the manifest's drops it."""
from __future__ import annotations

import asyncio
import dataclasses
import hashlib

import pytest

from consensus.digest import ZERO_HASH, commit_bytes, validator_set_hash
from node.block import BlockRecord
from node import peering, setproof, snapshots, syncwire
from node.setproof import Hop
from node.snapshots import Snapshot
from node.stateload import BadChunk, Loader
from node.statesync import StateSync
from node.store import Store
from sync_kit import VALIDATORS, build_chain, checkpoint_certificate, key, open_chain, table

OUTSIDER = 9
NEXT = tuple(f"next{i}" for i in range(4))


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chain")
    return folder, build_chain(folder)


@pytest.fixture
def source(chain):
    with Store(chain[0]) as store:
        yield store


class Links:
    """StateSync's links: peers 0-3 are genesis's validators, 10-13 those of NEXT,
    OUTSIDER is linked but no member. `answer(peer, ask)` answers an ask."""

    def __init__(self, answer=None):
        self.keys = {i: key(n).public for i, n in enumerate(VALIDATORS)}
        self.keys.update({10 + i: key(n).public for i, n in enumerate(NEXT)})
        self.keys[OUTSIDER] = key("outsider").public
        self.answer, self.sent, self.met = answer, [], []

    def key_of(self, peer: int) -> bytes:
        return self.keys[peer]

    def linked(self) -> list[int]:
        return sorted(self.keys)

    def send(self, peer: int, frame: bytes) -> None:
        kind, ask = peering.parse(frame, 1 << 20)
        assert kind == peering.SYNC_ASK
        self.sent.append((peer, ask))
        if self.answer is not None:
            self.answer(peer, ask)

    def meet(self, members) -> None:
        self.met.append(members)


def through_the_wire(offers: list[tuple], hops: list[Hop]) -> tuple[list, list]:
    """(offers, proof) as the validator's frame handler hands them on."""
    frame = syncwire.answer("offers", [[h, b, [list(s) for s in c], s_]
                                       for h, b, c, s_ in offers], setproof.encode(hops))
    kind, (what, parsed, proof) = peering.parse(frame, 1 << 20)
    assert kind == peering.SYNC_ANSWER and what == "offers"
    return parsed, proof


def crafted(genesis, source, height: int, signers=(0, 1, 2), names=VALIDATORS,
            signed_height=None) -> tuple:
    """A checkpoint offer at `height` (above the store's head) certified by `signers`."""
    block_hash = hashlib.sha256(b"block %d" % height).digest()
    set_hash = source.checkpoint(64)[2]
    certificate = checkpoint_certificate(
        genesis.domain(), height if signed_height is None else signed_height, block_hash,
        set_hash, signers, names)
    return height, block_hash, certificate, set_hash


def real(source) -> tuple:
    return (64, *source.checkpoint(64))


def choose(genesis, source, answers: dict[int, tuple[list, list]]):
    sync = StateSync(genesis, source, Links(), behind=0)
    return sync.choose({peer: through_the_wire(offers, hops)
                        for peer, (offers, hops) in answers.items()})


def genesis_members(genesis):
    return tuple((v.name, v.key) for v in genesis.validators)


# ---- choose ---------------------------------------------------------------------------

def test_the_highest_snapshot_f_plus_1_members_offer_is_chosen(chain, source):
    genesis = chain[1]
    high = crafted(genesis, source, 128)
    chosen = choose(genesis, source, {0: ([high, real(source)], []),
                                      1: ([high, real(source)], []),
                                      2: ([real(source)], []), 3: ([], [])})
    assert chosen is not None
    height, checkpoint, members, hops, sets, peers = chosen
    assert height == 128 and checkpoint == high[1:]
    assert members == genesis_members(genesis)
    assert hops == [] and sets == [(1, genesis_members(genesis))]
    assert peers == [0, 1]


def test_a_height_one_member_offers_is_passed_over(chain, source):
    genesis = chain[1]
    chosen = choose(genesis, source, {0: ([crafted(genesis, source, 128), real(source)], []),
                                      1: ([real(source)], []), 2: ([real(source)], [])})
    assert chosen[0] == 64 and chosen[1] == source.checkpoint(64)
    assert chosen[5] == [0, 1, 2]


def test_one_member_alone_is_not_enough(chain, source):
    genesis = chain[1]
    assert choose(genesis, source, {0: ([real(source)], [])}) is None
    assert choose(genesis, source, {0: ([real(source)], []), 1: ([], [])}) is None
    assert choose(genesis, source, {}) is None


def test_an_offer_of_a_non_member_is_not_counted(chain, source):
    genesis = chain[1]
    high = crafted(genesis, source, 128)
    chosen = choose(genesis, source, {0: ([high, real(source)], []),
                                      OUTSIDER: ([high, real(source)], []),
                                      1: ([real(source)], [])})
    assert chosen[0] == 64 and chosen[5] == [0, 1]
    assert choose(genesis, source, {0: ([high], []), OUTSIDER: ([high], [])}) is None


@pytest.mark.parametrize("wrong", [
    {"signers": (0, 1)},                    # below a quorum
    {"signers": (0, 1, 2), "names": NEXT},  # by keys that are not the set's
    {"signed_height": 192},                 # signatures over another checkpoint
])
def test_an_offer_with_a_bad_certificate_is_not_counted(chain, source, wrong):
    genesis = chain[1]
    good, bad = crafted(genesis, source, 128), crafted(genesis, source, 128, **wrong)
    chosen = choose(genesis, source, {0: ([good, real(source)], []),
                                      1: ([bad, real(source)], []),
                                      2: ([real(source)], [])})
    assert chosen[0] == 64 and chosen[5] == [0, 1, 2]
    # the same offer with a good certificate would have counted
    assert choose(genesis, source, {0: ([good], []), 1: ([good], [])})[0] == 128


def test_an_offer_with_a_proof_that_does_not_hold_is_not_counted(chain, source):
    genesis = chain[1]
    domain = genesis.domain()
    members = tuple((n, key(n).public) for n in NEXT)
    set_hash = validator_set_hash(domain, 100, tuple(k for _, k in members))
    forged = Hop(64, hashlib.sha256(b"x").digest(),
                 checkpoint_certificate(domain, 64, hashlib.sha256(b"x").digest(), set_hash,
                                        (0, 1, 2), NEXT), set_hash, 100, members)
    assert choose(genesis, source, {0: ([real(source)], []),
                                    1: ([real(source)], [forged])}) is None


def test_offers_above_a_set_change_count_for_the_next_set(chain, source):
    """A proof leads to the set from 100: an offer at 128 counts from its members with
    its quorum's certificate, not from genesis's set."""
    genesis = chain[1]
    domain = genesis.domain()
    members = tuple((n, key(n).public) for n in NEXT)
    set_hash = validator_set_hash(domain, 100, tuple(k for _, k in members))
    block_hash = hashlib.sha256(b"block 64").digest()
    change = Hop(64, block_hash, checkpoint_certificate(domain, 64, block_hash, set_hash),
                 set_hash, 100, members)
    by_next = crafted(genesis, source, 128, signers=(1, 2, 3), names=NEXT)
    by_genesis = crafted(genesis, source, 128)
    chosen = choose(genesis, source, {10: ([by_next], [change]), 11: ([by_next], [change])})
    assert chosen[0] == 128 and chosen[2] == members and chosen[5] == [10, 11]
    assert chosen[4] == [(1, genesis_members(genesis)), (100, members)]
    assert len(chosen[3]) == 1 and chosen[3][0] == change
    # genesis's validators no longer order 128, whatever they sign
    assert choose(genesis, source, {0: ([by_genesis], [change]),
                                    1: ([by_genesis], [change])}) is None


# ---- chunks ---------------------------------------------------------------------------

def corrupt(raw: bytes) -> bytes:
    return raw[:-1] + bytes([raw[-1] ^ 1])


class Peers:
    """Answers chunk asks from a snapshot: `bad` peers corrupt their first `corrupting`
    answers (all when None); answers go out on the loop's next turn, in the order asked
    or the reverse."""

    def __init__(self, sync_of, snapshot, bad=(), corrupting=None, reverse=False):
        self.sync_of, self.snapshot = sync_of, snapshot
        self.bad, self.corrupting, self.reverse = set(bad), corrupting, reverse
        self.pending, self.events, self.corrupted = [], [], []

    def __call__(self, peer: int, ask: tuple) -> None:
        what, height, index = ask
        assert what == "chunk"
        self.events.append(("ask", peer, index))
        if not self.pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self.pending.append((peer, height, index))

    def flush(self) -> None:
        answers, self.pending = self.pending, []
        for peer, height, index in (answers[::-1] if self.reverse else answers):
            raw = self.snapshot.chunk(index)
            if peer in self.bad and (self.corrupting is None or
                                     len(self.corrupted) < self.corrupting):
                raw = corrupt(raw)
                self.corrupted.append(index)
            self.sync_of().on_answer(peer, ("chunk", height, index, raw))


async def fetch(chain, tmp_path, monkeypatch, peers: list[int], **behaviour):
    """Fetches every chunk of a snapshot of the chain into a fresh store; returns
    (whether it did, the Peers, the loader, the source store, the target store)."""
    monkeypatch.setattr(snapshots, "CHUNK_BYTES", 16_384)
    folder, genesis = chain
    source = Store(folder)
    target = open_chain(tmp_path / "target", genesis).store
    snapshot = Snapshot(source, 64, bytes(32))
    try:
        manifest = await snapshot.manifest()
        assert len(manifest.chunks) >= 8
        loader = Loader(target, manifest, source.checkpoint(64), [], 0)
        loader.begin()
        holder = []
        answering = Peers(lambda: holder[0], snapshot, **behaviour)
        sync = StateSync(genesis, target, Links(answering), behind=0)
        holder.append(sync)
        add = loader.add

        def logged_add(index, raw):
            try:
                add(index, raw)
            except BadChunk:
                answering.events.append(("bad", index))
                raise
            answering.events.append(("added", index))
        monkeypatch.setattr(loader, "add", logged_add)
        done = await asyncio.wait_for(sync._chunks(loader, peers), 60)
        return done, answering, loader, source, target
    except BaseException:
        source.close()
        target.close()
        raise
    finally:
        snapshot.close()


@pytest.mark.parametrize("reverse", [False, True], ids=["in-order", "reversed"])
async def test_a_peer_that_sends_a_corrupted_chunk_is_dropped(chain, tmp_path, monkeypatch,
                                                              reverse):
    done, peers, loader, source, target = await fetch(
        chain, tmp_path, monkeypatch, [0, 1], bad=[0], corrupting=1, reverse=reverse)
    try:
        assert done and loader.done
        events = peers.events
        assert len(peers.corrupted) == 1
        index = peers.corrupted[0]
        assert ("bad", index) in events
        dropped = events.index(("bad", index))
        assert [e for e in events[dropped:] if e[0] == "ask" and e[1] == 0] == []
        assert ("ask", 1, index) in events[dropped:]    # that chunk from the other peer
        assert [e[1] for e in events if e[0] == "added"] == \
            list(range(len(loader.manifest.chunks)))
        loader.finish()
        assert table(target, "state") == table(source, "state")
        assert target.head() == source.head()
    finally:
        source.close()
        target.close()


@pytest.mark.parametrize("reverse", [False, True], ids=["in-order", "reversed"])
async def test_the_chunks_come_from_the_good_peer_whatever_the_bad_one_sends(
        chain, tmp_path, monkeypatch, reverse):
    """Every chunk the bad peer sends is corrupt: it, and only it, is dropped, however
    the answers interleave (a chunk added on another peer's answer is still its
    sender's fault)."""
    done, peers, loader, source, target = await fetch(
        chain, tmp_path, monkeypatch, [0, 1], bad=[0], reverse=reverse)
    try:
        assert done and loader.done
        loader.finish()
        assert table(target, "state") == table(source, "state")
    finally:
        source.close()
        target.close()


async def test_no_peer_left_is_a_failure(chain, tmp_path, monkeypatch):
    done, peers, loader, source, target = await fetch(
        chain, tmp_path, monkeypatch, [0, 1], bad=[0, 1])
    try:
        assert done is False and not loader.done
        assert {e[1] for e in peers.events if e[0] == "bad"} <= {0, 1}
    finally:
        source.close()
        target.close()


# ---- the manifest ---------------------------------------------------------------------

def recertified(domain: bytes, record_bytes: bytes, signers) -> bytes:
    """The same block record with the commit certificate of other signers: what another
    correct validator may hold (each keeps the first quorum of commits it received)."""
    record = BlockRecord.decode(record_bytes)
    message = commit_bytes(domain, record.view, record.height, record.batch_digest)
    return dataclasses.replace(record, certificate=tuple(
        (i, key(VALIDATORS[i]).sign(message)) for i in signers)).encode()


async def agree_on(genesis, source, records: dict[int, bytes]):
    """What StateSync._manifest returns when peer p answers the manifest of height 64
    with the record records[p] (and the snapshot's other fields)."""
    snapshot = Snapshot(source, 64, ZERO_HASH)
    try:
        manifest = await snapshot.manifest()
    finally:
        snapshot.close()
    sync = StateSync(genesis, source, None, behind=0)

    def answer(peer, ask):
        if ask[0] == "manifest" and peer in records:
            own = snapshots.Manifest(64, records[peer], manifest.clock_ms,
                                     manifest.base_hash, manifest.chunks)
            _, payload = peering.parse(syncwire.answer("manifest", 64, own.encode()), 1 << 22)
            asyncio.get_running_loop().call_soon(sync.on_answer, peer, payload)
    sync.links = Links(answer)
    found = await sync._manifest(64, source.block(64).hash, sorted(records),
                                 genesis_members(genesis))
    return found, manifest


async def test_manifests_whose_records_differ_only_in_their_certificates_agree(
        chain, source, monkeypatch):
    monkeypatch.setattr("node.statesync.GIVE_UP_S", 2.0)       # they agree at once
    genesis = chain[1]
    raw = source.block(64).encode()
    records = {0: recertified(genesis.domain(), raw, (0, 1, 2)),
               1: recertified(genesis.domain(), raw, (1, 2, 3))}
    assert records[0] != records[1]
    found, manifest = await agree_on(genesis, source, records)
    assert found is not None
    agreed, holders = found
    assert sorted(holders) == [0, 1] and agreed.chunks == manifest.chunks


async def test_a_manifest_whose_record_lacks_a_quorums_commits_is_not_counted(
        chain, source, monkeypatch):
    genesis = chain[1]
    raw = source.block(64).encode()
    # peer 1's record carries the commits of two validators: below a quorum of 4
    records = {0: recertified(genesis.domain(), raw, (0, 1, 2)),
               1: recertified(genesis.domain(), raw, (1, 2))}
    monkeypatch.setattr("node.statesync.GIVE_UP_S", 0.3)
    monkeypatch.setattr("node.statesync.ASK_EVERY_S", 0.1)
    found, _ = await agree_on(genesis, source, records)
    assert found is None        # one good manifest is not f + 1 = 2

"""Byzantine behaviour: a real replica whose outgoing messages pass through a filter that
lies. It signs only with its own key, as a real attacker would. It answers catch-up
requests with altered blocks half of the time (`answer_fetch`: one lie per answer, each
of them one the checks of consensus/fetched.py must refuse), and with `fetch_flood` it
sends every peer a stream of catch-up requests."""
from __future__ import annotations

import hashlib
import random
from dataclasses import replace

from consensus.config import Config
from consensus.digest import (batch_digest, commit_bytes, prepare_bytes, preprepare_bytes)
from consensus.fetched import FetchedBlock
from consensus.messages import (BatchPayloads, Commit, Forward, PreparedProof, PrePrepare,
                                Prepare, ViewChange)
from consensus.viewchange import signed_bytes
from tests.sim.fakes import block_hash

BEHAVIOURS = ("equivocate", "wrong_digest", "bad_signature", "bad_envelope", "replay",
              "withhold", "censor", "forge_view_change", "silent", "wrong_batch",
              "withhold_batch", "fetch_flood")
# how a Byzantine peer alters a catch-up answer; the check of consensus/fetched.py that
# must refuse each is in the comment
CATCH_UP_LIES = (
    "time",               # the block time moved: digest
    "envelopes",          # envelopes reordered, one left out or one added: digest
    "foreign_envelope",   # an envelope nobody submitted: envelope (the door)
    "unlinked",           # another previous hash: chain (or hash, for a first block)
    "hash",               # another block hash: hash
    "skip",               # a block left out: due
    "short_certificate",  # one commit signature short of a quorum: certificate
    "other_view",         # the certificate's view changed: certificate
    "forged",             # a null batch in the block's place, the chain and hash made
                          # to fit, signed by this replica and made-up signatures:
                          # certificate
    "malformed",          # a field of the wrong type or range: form
)


class Byzantine:
    def __init__(self, config: Config, me: int, crypto, rng: random.Random,
                 behaviours: tuple[str, ...]):
        self.config, self.me, self.crypto, self.rng = config, me, crypto, rng
        self.behaviours = set(behaviours)
        self.history: list[tuple[int | None, object]] = []
        self.splits: dict[int, set[int]] = {}
        # the identities an equivocation splits (the harness sets it to its nodes' count
        # where identities outnumber the set); the filter's config, place and crypto are
        # those of the set its replica serves, which the harness sets before each send
        self.pool = config.n

    def _resign_pp(self, pp: PrePrepare, payloads: tuple[bytes, ...], time_ms: int):
        digest = batch_digest(self.config.domain, pp.height, time_ms,
                              [hashlib.sha256(p).digest() for p in payloads])
        signature = self.crypto.sign(preprepare_bytes(self.config.domain, pp.view,
                                                      pp.height, digest))
        return PrePrepare(pp.view, pp.height, time_ms, digest, payloads, signature)

    def outgoing(self, to: int | None, message,
                 peers: list[int] | None = None) -> list[tuple[int, object]]:
        """What this replica really sends, per destination: `peers` (the harness's
        identities the message is addressed to), by default `to` or every other
        replica of its set."""
        rng, b = self.rng, self.behaviours
        if peers is None:
            peers = [to] if to is not None else [i for i in range(self.config.n)
                                                 if i != self.me]
        if "silent" in b:
            return []
        out = []
        if len(self.history) < 200:
            self.history.append((to, message))
        elif rng.random() < 0.1:
            self.history[rng.randrange(200)] = (to, message)
        for peer in peers:
            m = message
            if "censor" in b and isinstance(m, (PrePrepare, Forward)) and m.payloads:
                continue
            if isinstance(m, BatchPayloads):
                if "withhold_batch" in b:
                    continue
                if "wrong_batch" in b and rng.random() < 0.8:
                    m = self._wrong_batch(m)
            if "withhold" in b and rng.random() < 0.4:
                continue
            if isinstance(m, PrePrepare) and m.payloads:
                if "equivocate" in b and self._gets_variant(m.height, peer):
                    m = self._resign_pp(m, m.payloads[:-1] or m.payloads, m.time_ms + 1)
                elif "bad_envelope" in b and rng.random() < 0.5:
                    m = self._resign_pp(m, m.payloads + (b"bad" + rng.randbytes(8),),
                                        m.time_ms)
            if isinstance(m, (Prepare, Commit)) and "wrong_digest" in b and rng.random() < 0.5:
                digest = rng.randbytes(32)
                make = prepare_bytes if isinstance(m, Prepare) else commit_bytes
                m = replace(m, digest=digest, signature=self.crypto.sign(
                    make(self.config.domain, m.view, m.height, digest)))
            if isinstance(m, ViewChange) and "forge_view_change" in b:
                m = self._forge(m)
            if "bad_signature" in b and rng.random() < 0.3 and hasattr(m, "signature"):
                m = replace(m, signature=rng.randbytes(len(m.signature)))
            out.append((peer, m))
            if "replay" in b and self.history and rng.random() < 0.3:
                old_to, old = self.history[rng.randrange(len(self.history))]
                out.append((peer, old))
        return out

    def _wrong_batch(self, answer: BatchPayloads) -> BatchPayloads:
        """An answer to a batch fetch with envelopes that all pass the door but are not
        the batch: in another order, one left out, or another batch's."""
        payloads = answer.payloads
        choice = self.rng.randrange(3)
        if choice == 0 and len(payloads) > 1:
            payloads = payloads[::-1]
        elif choice == 1 and len(payloads) > 1:
            payloads = payloads[:-1]
        else:
            others = [m.payloads for _, m in self.history
                      if isinstance(m, (PrePrepare, Forward)) and m.payloads
                      and m.payloads != payloads]
            payloads = self.rng.choice(others) if others else payloads + payloads[:1]
        return BatchPayloads(answer.height, answer.digest, payloads)

    def _gets_variant(self, height: int, peer: int) -> bool:
        """Which peers an equivocating primary shows its second batch: a split drawn once
        per height, so each peer sees one story and the stories differ between peers."""
        split = self.splits.get(height)
        if split is None:
            split = self.splits[height] = {p for p in range(self.pool)
                                           if self.rng.random() < 0.5}
            if len(self.splits) > 1000:
                del self.splits[next(iter(self.splits))]
        return peer in split

    def _forge(self, vc: ViewChange) -> ViewChange:
        """Either hides its prepared certificates or invents one with made-up prepares."""
        rng = self.rng
        if rng.random() < 0.5 or not vc.prepared:
            height = vc.stable_height + 1
            digest = rng.randbytes(32)
            fake = PreparedProof(max(vc.new_view - 1, 0), height, 1, digest,
                                 rng.randbytes(16),
                                 tuple((i, rng.randbytes(16))
                                       for i in range(self.config.quorum - 1)))
            prepared = (fake,) + tuple(p for p in vc.prepared if p.height != height)
            prepared = tuple(sorted(prepared, key=lambda p: p.height))
        else:
            prepared = ()
        forged = replace(vc, prepared=prepared, signature=b"")
        return replace(forged, signature=self.crypto.sign(signed_bytes(self.config, forged)))

    # ---- catch-up ---------------------------------------------------------------------

    def answer_fetch(self, blocks: list[FetchedBlock]) -> list:
        """What this replica answers to a catch-up request whose true answer is
        `blocks`: nothing (silent, or withholding), the truth, or one lie."""
        rng, b = self.rng, self.behaviours
        if "silent" in b or ("withhold" in b and rng.random() < 0.4):
            return []
        if not blocks or rng.random() < 0.5:
            return blocks
        lie = rng.choice(CATCH_UP_LIES)
        j = rng.randrange(len(blocks))
        block = blocks[j]
        out = list(blocks)
        if lie == "time":
            out[j] = replace(block, time_ms=block.time_ms + 1)
        elif lie == "envelopes":
            envelopes = block.envelopes
            if len(envelopes) > 1 and rng.random() < 0.5:
                envelopes = envelopes[::-1]
            elif envelopes:
                envelopes = envelopes[:-1]
            else:
                others = [e for other in blocks for e in other.envelopes]
                if not others:
                    return self._lie_hash(out, j)
                envelopes = (rng.choice(others),)
            out[j] = replace(block, envelopes=envelopes)
        elif lie == "foreign_envelope":
            out[j] = replace(block, envelopes=block.envelopes + (b"bad" + rng.randbytes(8),))
        elif lie == "unlinked":
            out[j] = replace(block, prev_hash=rng.randbytes(32))
        elif lie == "hash":
            return self._lie_hash(out, j)
        elif lie == "skip":
            if len(out) < 2:
                return self._lie_hash(out, j)
            # among the first blocks: a check stops at the heights whose validator set
            # the requester cannot know yet (its head + M + 1), before a gap beyond
            del out[min(j % 8, len(out) - 2)]
        elif lie == "short_certificate":
            out[j] = replace(block, certificate=block.certificate[:self.config.quorum - 1])
        elif lie == "other_view":
            out[j] = replace(block, view=block.view + 1)
        elif lie == "forged":
            out[j:] = [self._forged(block)]
        else:
            out[j] = self._malformed(block)
        return out

    def _lie_hash(self, out: list, j: int) -> list:
        out[j] = replace(out[j], hash=self.rng.randbytes(32))
        return out

    def _forged(self, block: FetchedBlock) -> FetchedBlock:
        """A null batch at the block's height (or, where it is one, a batch time later),
        chained and hashed like the real one, its certificate this replica's signature
        and made-up ones."""
        config, height = self.config, block.height
        time_ms = 0 if block.envelopes else block.time_ms + 1
        digest = batch_digest(config.domain, height, time_ms, [])
        message = commit_bytes(config.domain, block.view, height, digest)
        others = [i for i in range(config.n) if i != self.me][:config.quorum - 1]
        certificate = tuple(sorted(
            [(self.me, self.crypto.sign(message))]
            + [(i, self.rng.randbytes(len(block.certificate[0][1])
                                      if block.certificate else 16)) for i in others]))
        return FetchedBlock(height, block.view, time_ms, block.prev_hash,
                            block_hash(block.prev_hash, height, digest), digest, (),
                            certificate)

    def _malformed(self, block: FetchedBlock) -> FetchedBlock:
        choice = self.rng.randrange(5)
        if choice == 0:
            return replace(block, height=str(block.height).encode())
        if choice == 1:
            return replace(block, view=-1)
        if choice == 2:
            return replace(block, prev_hash=block.prev_hash[:31])
        if choice == 3:
            return replace(block, envelopes=list(block.envelopes))
        return replace(block, certificate=tuple((str(i).encode(), s)
                                                for i, s in block.certificate))

    def flood(self, height: int, count: int) -> list[tuple[int, int]]:
        """`count` catch-up requests for one peer, each for as many blocks as a peer
        answers at once, from successive heights of the chain so far (so no two are
        the same range), starting anywhere."""
        top = max(height, 1)
        span = self.config.fetch_max_blocks
        first = self.rng.randrange(top)
        starts = [(first + k) % top + 1 for k in range(count)]
        return [(start, start + span - 1) for start in starts]

"""Byzantine behaviour: a real replica whose outgoing messages pass through a filter that
lies. It signs only with its own key, as a real attacker would."""
from __future__ import annotations

import hashlib
import random
from dataclasses import replace

from consensus.config import Config
from consensus.digest import (batch_digest, commit_bytes, prepare_bytes, preprepare_bytes)
from consensus.messages import (BatchPayloads, Commit, Forward, PreparedProof, PrePrepare,
                                Prepare, ViewChange)
from consensus.viewchange import signed_bytes

BEHAVIOURS = ("equivocate", "wrong_digest", "bad_signature", "bad_envelope", "replay",
              "withhold", "censor", "forge_view_change", "silent", "wrong_batch",
              "withhold_batch")


class Byzantine:
    def __init__(self, config: Config, me: int, crypto, rng: random.Random,
                 behaviours: tuple[str, ...]):
        self.config, self.me, self.crypto, self.rng = config, me, crypto, rng
        self.behaviours = set(behaviours)
        self.history: list[tuple[int | None, object]] = []
        self.splits: dict[int, set[int]] = {}

    def _resign_pp(self, pp: PrePrepare, payloads: tuple[bytes, ...], time_ms: int):
        digest = batch_digest(self.config.domain, pp.height, time_ms,
                              [hashlib.sha256(p).digest() for p in payloads])
        signature = self.crypto.sign(preprepare_bytes(self.config.domain, pp.view,
                                                      pp.height, digest))
        return PrePrepare(pp.view, pp.height, time_ms, digest, payloads, signature)

    def outgoing(self, to: int | None, message) -> list[tuple[int, object]]:
        """What this replica really sends, per destination."""
        rng, b = self.rng, self.behaviours
        peers = [to] if to is not None else [i for i in range(self.config.n) if i != self.me]
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
            split = self.splits[height] = {p for p in range(self.config.n)
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

"""What a replica can show about a peer that no correct validator does.

- `bad_signature`: a pre-prepare, prepare, commit or view-change whose own signature
  (the sender's, on the link the sender authenticated) does not verify. A correct
  validator signs what it sends; this is a faulty one, or a faulty machine under it.
- `equivocation`: two messages signed by the same validator for the same view and
  height with different batch digests (two pre-prepares of a primary, two prepares or two
  commits of one backup). Both signatures verify: anyone with the validators' keys can
  check this evidence, not only the replica that saw it.
- `bad_catch_up`: a catch-up answer whose next block fails a check of
  consensus/fetched.py (not due, malformed, not chained, a wrong hash, digest or
  certificate, an envelope the door refuses): a correct validator serves the blocks it
  executed, which pass them all. The evidence is the block as received, and `detail`
  the check's reason. The sender signed the link it came on, not the block, so this is
  what this replica received, not proof for others (the node records it; the replica
  never sees catch-up answers).

A replica records what it sees in `Replica.faults` (at most MAX_FAULTS until the node
takes them) and goes on exactly as before: the protocol already tolerates these; the
record is for the operators (node/evidence.py keeps, counts and logs them by name, and
drops the link). Pure data, no IO.
"""
from __future__ import annotations

from dataclasses import dataclass

BAD_SIGNATURE, EQUIVOCATION, BAD_CATCH_UP = "bad_signature", "equivocation", "bad_catch_up"
MAX_FAULTS = 64         # recorded and not yet taken; more are counted in `faults_lost`


@dataclass(frozen=True, slots=True)
class Fault:
    peer: int               # the validator at fault (its index)
    kind: str               # BAD_SIGNATURE, EQUIVOCATION or BAD_CATCH_UP
    evidence: tuple         # the messages that show it, as received (or their bytes)
    detail: str = ""        # what is wrong with them, where the kind does not say

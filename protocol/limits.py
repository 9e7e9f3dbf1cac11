"""The protocol's sizes and limits, the same for the client and the server."""
from __future__ import annotations

KEY_BYTES = 32                  # an Ed25519 public key
SIGNATURE_BYTES = 64            # an Ed25519 signature
MAX_ENVELOPE_BYTES = 16 * 1024  # a whole envelope; more is `malformed` at the door
MAX_BATCH = 1000                # envelopes in one POST /v1/txs
MAX_BATCH_BODY = 8 * 1024 * 1024    # the body of one POST /v1/txs
TOKEN_LIFETIME_MS = 5 * 60 * 1000   # a read token is good this long either side of its time

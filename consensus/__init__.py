"""PBFT as a pure state machine: no IO, no clock, no randomness (docs/consensus.md)."""

# Invariants here are assertions, checked after every step: under `python -O` they would
# vanish and a broken replica would limp on. Crash rather than limp: refuse to run.
if not __debug__:
    raise SystemExit("stadsmunt: consensus refuses to run under python -O or PYTHONOPTIMIZE: "
                     "its invariant checks are assertions")

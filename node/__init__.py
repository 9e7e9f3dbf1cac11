"""The IO shell around the pure cores: codec, keys, store, executor, transport, runtime."""

# Invariants here are assertions, checked after every step: under `python -O` they would
# vanish and a broken validator would limp on. Crash rather than limp: refuse to run.
if not __debug__:
    raise SystemExit("stadsmunt: node refuses to run under python -O or PYTHONOPTIMIZE: "
                     "its invariant checks are assertions")

"""The benchmarks: what a local network, and each part of a validator alone, achieves on
this machine (docs/performance.md). Measurements only: nothing here is part of a
running validator, and tests never assert a timing.

- network.py: `stadsmunt bench`, a local network driven by signed load from a process
  of its own (load.py), funded the way coins exist (funding.py), measured from /proc
  (proc.py) against the machine's bare Ed25519 verify rate;
- executor_blocks.py, chaincode_blocks.py, audit_replay.py, transport_link.py: one part
  alone (`python -m bench.executor_blocks`, ...): the executor, the chaincode, the
  audit's replay, one validator link.
"""

"""python -m tests.faultnet.skew OFFSET_FILE node run DIR: a validator whose wall clock
is off by the milliseconds written in OFFSET_FILE.

The validator takes block times from `time.time_ns()` (node/runtime.py); this launcher
moves `time.time` and `time.time_ns` of its own process by the offset and then runs the
ordinary command line (`ops.cli`), so the product has no test hook. SIGUSR1 reads the
file again: the clock steps, as when NTP corrects a clock or an operator sets it. Each
reading is logged as one JSON line (`faultnet_clock_offset`) in the validator's log, so
a test can wait for it. Monotonic clocks (timers, the event loop) are not moved, as a
wrong wall clock does not move them either. Gateway processes that the validator starts
keep the machine's clock: only consensus reads the validator's.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

_real_time_ns = time.time_ns
_offset_ns = 0


def _read(path: Path) -> None:
    global _offset_ns
    _offset_ns = int(path.read_text().strip() or "0") * 1_000_000
    line = json.dumps({"event": "faultnet_clock_offset", "offset_ms": _offset_ns // 1_000_000,
                       "level": "info"})
    # one raw write: this runs in a signal handler, where a buffered stream may be busy
    os.write(2, line.encode() + b"\n")


def _time_ns() -> int:
    return _real_time_ns() + _offset_ns


def _time() -> float:
    return _time_ns() / 1e9


def main() -> int:
    path = Path(sys.argv[1])
    _read(path)
    time.time_ns = _time_ns
    time.time = _time
    signal.signal(signal.SIGUSR1, lambda *_: _read(path))
    from ops.cli import main as cli_main
    return cli_main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())

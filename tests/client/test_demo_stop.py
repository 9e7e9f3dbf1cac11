"""The demo's Ctrl-C while its story runs in the event loop: the signal cancels the story
at its next await (its sessions closed on the way out) instead of raising in the middle
of whatever code runs when it lands, and the demo then stops as on any Ctrl-C."""
from __future__ import annotations

import asyncio
import signal

import pytest

from ops.demo import Stopper


@pytest.fixture
def handlers():
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_story_cancels_it_at_its_next_await(handlers, sig):
    stop = Stopper()
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    seen = []

    async def story():
        signal.raise_signal(sig)
        seen.append("went on to the end of the step")     # not cut off mid-code
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append("cancelled at the await")
            raise
        finally:
            await asyncio.sleep(0)      # its clean-up may still await
            seen.append("cleaned up")

    with pytest.raises(KeyboardInterrupt):
        stop.run(story())
    assert seen == ["went on to the end of the step", "cancelled at the await", "cleaned up"]
    # a second signal while the validators stop is ignored, as before
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN


def test_a_signal_after_the_story_ended_still_stops_the_demo(handlers):
    stop = Stopper()
    signal.signal(signal.SIGINT, stop)

    async def story():
        return "done"

    assert stop.run(story()) == "done"
    with pytest.raises(KeyboardInterrupt):      # outside the loop: at once
        signal.raise_signal(signal.SIGINT)


def test_a_story_that_ends_before_the_cancel_lands_still_reports_the_stop(handlers):
    stop = Stopper()
    signal.signal(signal.SIGINT, stop)

    async def story():
        signal.raise_signal(signal.SIGINT)
        return "done"           # returns before the loop runs the cancel

    with pytest.raises(KeyboardInterrupt):
        stop.run(story())

"""Ableton Link with a real second peer (another Link instance, as Live would be)."""
import time

import pytest

link = pytest.importorskip("link")  # the link extra; the test extra pulls it in

from conftest import wait_until as _until  # noqa: E402
from plugin_host.link_clock import LinkClock  # noqa: E402


def test_follows_a_link_session():
    daw = link.Link(97.0)
    daw.startStopSyncEnabled = True
    daw.enabled = True
    ours = LinkClock(bpm=120.0)
    try:
        assert _until(lambda: ours.peers >= 1 and daw.numPeers() >= 1), "the two Link peers never met"

        def joined():  # the join itself settles one shared timeline first
            ours.update()
            return abs(ours.bpm - daw.captureAppSessionState().tempo()) < 1e-3

        assert _until(joined)
        time.sleep(0.5)
        # the DAW changes tempo and starts playing: we follow both
        state = daw.captureAppSessionState()
        now = daw.clock().micros()
        state.setTempo(93.0, now)
        state.setIsPlaying(True, now)
        daw.commitAppSessionState(state)

        def following():
            ours.update()
            return abs(ours.bpm - 93.0) < 1e-3 and ours.running

        assert _until(following)
        # beats agree with the DAW's timeline (same quantum), to well under a millisecond
        t = ours.now() + 0.25
        daw_beat = daw.captureAppSessionState().beatAtTime(int(t * 1e6), 4.0)
        assert abs(ours.beat_at(t) - daw_beat) * 60 / 93.0 < 0.001
        # and our tempo proposals reach the DAW
        ours.set_bpm(101.0)
        assert _until(lambda: abs(daw.captureAppSessionState().tempo() - 101.0) < 1e-3)
    finally:
        ours.close()
        daw.enabled = False

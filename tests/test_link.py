"""Ableton Link with a real second peer (another Link instance, as Live would be)."""
import time

import pytest

link = pytest.importorskip("link")  # the link extra; the test extra pulls it in

from conftest import wait_until as _until  # noqa: E402
from plugin_host.jack_rig import have_jack_tools  # noqa: E402
from plugin_host.link_clock import LinkClock  # noqa: E402

needs_jack = pytest.mark.skipif(not have_jack_tools(), reason="needs jackd")


def _daw_plays(daw, bpm: float, playing: bool = True) -> None:
    """The DAW peer sets the session's tempo and play state, as Live's transport would."""
    state = daw.captureAppSessionState()
    now = daw.clock().micros()
    state.setTempo(bpm, now)
    state.setIsPlaying(playing, now)
    daw.commitAppSessionState(state)


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
        _daw_plays(daw, 93.0)

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


@needs_jack
def test_link_beats_on_jack_frames():
    """The live engine's view: Link's timeline read on JACK's frame time (`cypher serve --clock link`)."""
    from plugin_host.audio_io import JackAudio
    from plugin_host.jack_rig import JackServer

    daw = link.Link(97.0)
    daw.startStopSyncEnabled = True
    daw.enabled = True
    with JackServer("cypher-link", sr=48000, period=512):
        audio = JackAudio("cypher", midi=False, ring_s=1.0)
        ours = LinkClock(bpm=120.0, host_now=lambda: audio.now_frame() / audio.sr)
        try:
            assert _until(lambda: ours.peers >= 1 and daw.numPeers() >= 1), "the two Link peers never met"
            time.sleep(0.5)  # the join settles one shared timeline first
            _daw_plays(daw, 97.0)

            def following():
                ours.poll()
                return abs(ours.bpm - 97.0) < 1e-3 and ours.running

            assert _until(following)
            time.sleep(0.3)
            ours.poll()
            for _ in range(5):  # a beat asked in frames agrees with the DAW's beat at the same moment
                frame = audio.now_frame()
                daw_beat = daw.captureAppSessionState().beatAtTime(daw.clock().micros(), 4.0)
                assert abs(ours.beat_at(frame / audio.sr) - daw_beat) * 60 / 97.0 < 0.001
                time.sleep(0.2)
                ours.poll()
            _daw_plays(daw, 97.0, playing=False)

            def stopped():
                ours.poll()
                return not ours.running

            assert _until(stopped)  # the DAW's stop reaches the engine (which then stops or finishes the bar)
        finally:
            ours.close()
            audio.close()
            daw.enabled = False


@needs_jack
def test_serve_joins_the_link_session():
    import os
    import subprocess
    import sys

    from plugin_host.jack_rig import JackServer

    daw = link.Link(104.0)
    daw.enabled = True
    try:
        with JackServer("cypher-link-serve", sr=48000, period=512) as server:
            env = dict(os.environ, JACK_DEFAULT_SERVER=server.name)
            r = subprocess.run([sys.executable, "-m", "plugin_host.cli", "serve", "--clock", "link", "--osc-port", "0",
                                "--seconds", "6"], capture_output=True, text=True, env=env, timeout=120)
    finally:
        daw.enabled = False
    assert r.returncode == 0 and "Traceback" not in r.stderr
    assert "104.0 BPM" in r.stderr  # the session's tempo, not --bpm's 90

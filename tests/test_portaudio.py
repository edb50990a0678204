"""The portaudio backend, driven in a real dummy JACK graph through PortAudio's JACK host API."""
import ctypes.util
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from plugin_host.jack_rig import JackServer, have_jack_tools

pytestmark = pytest.mark.skipif(not have_jack_tools() or not ctypes.util.find_library("portaudio"),
                                reason="needs jackd and PortAudio (Debian: jackd2 libportaudio2)")


def test_a_device_by_name_plays_and_hears_clips_whole():
    from plugin_host.audio_io import JackAudio
    from plugin_host.portaudio_io import PortAudioDuplex

    with JackServer("cypher-pa", sr=48000, period=512):
        pa = PortAudioDuplex("syst", blocksize=512)  # part of the name is enough
        peer = JackAudio("peer", midi=False, ring_s=10.0)
        try:
            peer.connect("PortAudio:out_0", peer.inport.name)
            peer.connect(peer.outport.name, "PortAudio:in_0")
            clip = ((np.arange(4800) % 97) / 194 + 0.01).astype(np.float32)  # never zero: its ends are exact
            offset0 = pa.now_frame() - peer.now_frame()
            pa.schedule.add(pa.now_frame() + 4800, clip)
            peer.schedule.add(peer.now_frame() + 4800, clip)
            time.sleep(0.8)
            offset1 = pa.now_frame() - peer.now_frame()
            played, _ = peer.ring.read(0)
            heard, _ = pa.ring.read(0)
        finally:
            pa.close()
            peer.close()
    assert pa.sr == 48000 and pa.xruns == 0
    assert abs(offset1 - offset0) <= 512  # the stream's frames run with JACK's, a period apart at most
    for got in (played, heard):  # what PortAudio played (as recorded) and what it heard: whole, in order
        i = int(np.flatnonzero(got)[0])
        np.testing.assert_array_equal(got[i : i + len(clip)], clip)
        assert not got[i + len(clip) :].any()


def _serve(server, *args):
    env = dict(os.environ, JACK_DEFAULT_SERVER=server.name)
    return subprocess.run([sys.executable, "-m", "plugin_host.cli", "serve", "--backend", "portaudio",
                           "--osc-port", "0", *args], capture_output=True, text=True, env=env, timeout=120)


def test_serve_on_a_device_and_names_the_devices_when_one_is_missing():
    with JackServer("cypher-pa-serve", sr=48000, period=512) as server:
        missing = _serve(server, "--device", "no such card", "--seconds", "1")
        runs = _serve(server, "--device", "system", "--sample-rate", "48000", "--seconds", "3")
        midi = _serve(server, "--device", "system", "--clock", "midi", "--midi-api", "jack", "--seconds", "3")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "no audio input device matches 'no such card'" in missing.stderr
    assert "system (JACK Audio Connection Kit" in missing.stderr  # the list of devices there are
    assert runs.returncode == 0 and "cypher serve: idle" in runs.stderr and "misses 0" in runs.stderr
    assert midi.returncode == 0 and "bar stopped" in midi.stderr  # a virtual MIDI port, no clock sent: stopped


def test_serve_refuses_jack_flags_with_portaudio(cli):
    r = cli("serve", "--backend", "portaudio", "--audio-out", "system:playback_1", "--osc-port", "0")
    assert r.returncode == 2 and "--audio-out name JACK ports" in r.stderr and "--device" in r.stderr


def test_a_midi_clock_beside_a_device():
    """--backend portaudio --clock midi: the clock through python-rtmidi (its JACK API here),
    stamped on the stream's frames as it arrives."""
    import jack

    from plugin_host.clock import ARRIVAL_LOST_AFTER_TICKS, MidiClockFollower
    from plugin_host.jack_rig import GridClockMaster
    from plugin_host.midi_parse import drive_clock
    from plugin_host.portaudio_io import PortAudioDuplex

    clock = MidiClockFollower(lost_after_ticks=ARRIVAL_LOST_AFTER_TICKS)
    with JackServer("cypher-pa-midi", sr=48000, period=512):
        pa = PortAudioDuplex("system", on_midi=lambda m: drive_clock(clock, m), midi_api="jack")
        look = jack.Client("look", no_start_server=True)
        master = None
        try:
            port = next(p.name for p in look.get_ports(is_midi=True, is_input=True) if "cypher clock" in p.name)
            master = GridClockMaster(port, 120.0, jitter_percent=5.0)
            look.transport_stop()
            look.transport_frame = 0
            look.transport_start()
            time.sleep(3.0)
            # one beat later by the follower, one beat later by the stream's frames
            t = pa.now_frame() / pa.sr
            beats = clock.beat_at(t + 0.5) - clock.beat_at(t)
        finally:
            if master is not None:
                master.close()
            look.close()
            pa.close()
    assert clock.running and abs(clock.bpm - 120.0) < 0.5
    assert abs(beats - 1.0) < 0.01

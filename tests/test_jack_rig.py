"""The real JACK path: jackd (dummy backend) -> jack_midi_clock -> our JACK MIDI input -> clock."""
import time

import pytest
from conftest import wait_until

from plugin_host.clock import MidiClockFollower
from plugin_host.jack_rig import JackServer, MidiClockMaster, have_jack_tools
from plugin_host.midi_parse import drive_clock

pytestmark = pytest.mark.skipif(not have_jack_tools(), reason="needs jackd2 and jack-midi-clock (.ci/run installs them)")


@pytest.fixture(scope="module")
def jack_in():
    from plugin_host.jack_midi import JackMidiIn

    with JackServer(name=f"cypher-test-{int(time.time() * 1000) % 100000}"):
        inp = JackMidiIn(lambda m: None, client_name="cypher-test", track_transport=True)
        yield inp
        inp.close()


def _wait_ticks(seen, n, timeout=15.0):
    """Wait for n clock ticks: the dummy backend keeps wall time only roughly under load."""
    wait_until(lambda: sum(m.kind == "clock" for m in list(seen)) >= n, timeout)


def _follow(inp):
    """A fresh follower listening to `inp`, the transport stopped at frame 0."""
    inp.client.transport_stop()
    inp.client.transport_frame = 0
    time.sleep(0.1)
    f = MidiClockFollower()
    seen = []

    def on(msg):
        seen.append(msg)
        drive_clock(f, msg)

    inp.on_message = on
    return f, seen


def test_follows_jack_midi_clock_to_the_sample(jack_in):
    f, seen = _follow(jack_in)
    c = jack_in.client
    with MidiClockMaster(jack_in.port_name, 120.0):
        time.sleep(0.2)
        c.transport_start()
        _wait_ticks(seen, 110)  # a bit over one bar at 120 BPM
        zero = jack_in.transport_zero_s
        c.transport_stop()
        time.sleep(0.1)
    kinds = [m.kind for m in seen]
    assert kinds[0] == "start" and kinds.count("clock") >= 96 and "stop" in kinds
    assert f.bpm == pytest.approx(120.0, abs=0.01)
    # every beat the follower predicts sits on the transport's grid (48 kHz: 1 sample = 0.02 ms)
    for beat in (1.0, 2.0, 4.0):
        assert abs(f.time_of(beat) - (zero + beat * 0.5)) < 1 / 48000
    assert not f.running


def test_continue_resumes_where_stop_left(jack_in):
    f, seen = _follow(jack_in)
    c = jack_in.client
    with MidiClockMaster(jack_in.port_name, 150.0):
        time.sleep(0.2)
        c.transport_start()
        _wait_ticks(seen, 48)
        c.transport_stop()
        time.sleep(0.2)
        stopped_at = f.beat_at(0.0)
        c.transport_start()  # not at frame 0: jack_midi_clock sends Continue
        _wait_ticks(seen, 48 + 24)
        c.transport_stop()
        time.sleep(0.1)
    kinds = [m.kind for m in seen]
    assert "continue" in kinds and kinds.count("stop") >= 2
    first_after = next(i for i, m in enumerate(seen) if m.kind == "continue")
    first_tick = next(m for m in seen[first_after:] if m.kind == "clock")
    assert stopped_at > 1.0
    assert f.beat_at(first_tick.t) >= stopped_at  # no jump back to 0


def test_controller_over_jack_midi(jack_in):
    """A second JACK client plays a pad and turns a knob into cypher's MIDI input."""
    import jack

    import presets
    from plugin_host.midi_control import ControllerMap, MidiControl
    from plugin_host.osc import Controls

    controls = Controls()
    mc = MidiControl(controls, ControllerMap.from_dict("pads", presets.load("controllers", "pads-and-knobs")))
    jack_in.on_message = mc.handle
    pad = jack.Client("cypher-test-pads", no_start_server=True)
    out = pad.midi_outports.register("out")
    pending = [bytes([0x90, 36, 100]), bytes([0xB0, 21, 32]), bytes([0xF8]), bytes([0xB0, 22, 127])]

    @pad.set_process_callback
    def process(frames):
        out.clear_buffer()
        for i, data in enumerate(pending):
            out.write_midi_event(i, data)
        pending.clear()

    pad.activate()
    try:
        pad.connect(out, jack_in.port_name)
        wait_until(lambda: controls.commands == ["turn/respond"], 3)
        time.sleep(0.05)
    finally:
        pad.deactivate()
        pad.close()
    assert controls.commands == ["turn/respond"]
    assert controls.aggression == pytest.approx(32 / 127)
    assert controls.rhyme_density == pytest.approx(3.0)


def test_devices_lists_the_graph(jack_in):
    from plugin_host.devices import format_devices, list_devices

    found = list_devices()
    assert found["jack"]["running"] and found["jack"]["sample_rate"] == 48000
    assert jack_in.port_name in found["jack"]["midi_in"]
    assert "system:playback_1" in found["jack"]["audio_in"]
    assert jack_in.port_name in format_devices(found)


def test_rtmidi_ports_through_jack(jack_in):
    """Virtual rtmidi ports in the JACK graph: a controller's output drives MidiControl,
    and cypher's feedback output reaches a listener."""
    import jack

    import presets
    from plugin_host.midi_control import ControllerMap, MidiControl
    from plugin_host.midi_ports import open_input, open_output
    from plugin_host.osc import Controls

    controls = Controls()
    mc = MidiControl(controls, ControllerMap.from_dict("pads", presets.load("controllers", "pads-and-knobs")))
    cy_in = open_input("cypher-ctl", mc.handle, api="jack")
    knob = open_output("knob-box", api="jack")
    patch = jack.Client("cypher-test-patch", no_start_server=True)
    try:
        src = next(p for p in patch.get_ports(is_midi=True, is_output=True) if "knob-box" in p.name)
        dst = next(p for p in patch.get_ports(is_midi=True, is_input=True) if "cypher-ctl" in p.name)
        patch.connect(src, dst)
        import mido

        knob.send(mido.Message("control_change", channel=0, control=21, value=127))
        knob.send(mido.Message("note_on", channel=0, note=38, velocity=90))
        wait_until(lambda: controls.commands == ["turn/stop"], 3)
    finally:
        patch.close()
        cy_in.close()
        knob.close()
    assert controls.aggression == 1.0 and controls.commands == ["turn/stop"]


def test_grid_master_with_jitter_and_a_tempo_step(jack_in):
    """Our own JACK clock master: 5 % jitter around the transport grid, then 140 -> 100 BPM."""
    import numpy as np

    from plugin_host.jack_rig import GridClockMaster

    f, seen = _follow(jack_in)
    c = jack_in.client
    beats = []
    with GridClockMaster(jack_in.port_name, 140.0, 5.0, seed=1) as master:
        time.sleep(0.1)
        c.transport_start()
        _wait_ticks(seen, 96)
        zero = jack_in.transport_zero_s
        bpm_after_bar = f.bpm
        for _ in range(12):  # phase: predicted beats against the transport grid
            _wait_ticks(seen, sum(m.kind == "clock" for m in seen) + 6)
            nb = np.floor(f.beat_at(seen[-1].t)) + 1
            beats.append(abs(f.time_of(nb) - (zero + nb * 60 / 140)) * 1000)
        master.set_bpm(100.0)
        _wait_ticks(seen, sum(m.kind == "clock" for m in seen) + 48)
        c.transport_stop()
        time.sleep(0.1)
    assert abs(bpm_after_bar - 140.0) < 0.1
    assert np.percentile(beats, 95) < 1.0
    assert abs(f.bpm - 100.0) < 0.5  # two beats after the step, under 5 % jitter


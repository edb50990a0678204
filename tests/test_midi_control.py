import socket

import pytest
from conftest import wait_until
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

import presets
from plugin_host.midi_control import ControllerMap, MidiControl
from plugin_host.midi_parse import MidiParser
from plugin_host.osc import Controls, OscServer


def _msgs(data: bytes):
    return MidiParser().feed(data, 0.0)


@pytest.fixture
def pads():
    return ControllerMap.from_dict("pads-and-knobs", presets.load("controllers", "pads-and-knobs"))


def test_notes_run_actions_and_ccs_set_parameters(pads):
    c = Controls()
    mc = MidiControl(c, pads)
    for m in _msgs(bytes([0x90, 36, 100, 0x90, 36, 0, 0xB0, 21, 127, 0xB0, 22, 64, 0xB0, 23, 0, 0xB0, 64, 127])):
        mc.handle(m)
    assert c.commands == ["turn/respond"]  # note off (velocity 0) does nothing
    assert c.aggression == 1.0
    assert c.rhyme_density == pytest.approx(0.5 + (64 / 127) ** 2 * 2.5)  # exp curve
    assert c.output_latency_ms == -50.0
    assert c.clean is True


def test_other_channels_are_ignored(pads):
    c = Controls()
    mc = MidiControl(c, pads)
    for m in _msgs(bytes([0x91, 36, 100, 0xB1, 21, 0])):
        mc.handle(m)
    assert c.commands == [] and c.aggression == 0.5


def test_midi_learn_binds_the_next_cc_and_saves(tmp_path, monkeypatch, pads):
    monkeypatch.setenv("CYPHER_HOME", str(tmp_path))
    c = Controls()
    mc = MidiControl(c, pads)
    mc.learn("input_latency_ms")
    for m in _msgs(bytes([0xB0, 74, 127])):
        mc.handle(m)
    assert c.input_latency_ms == 500.0 and mc.learning is None
    path = mc.save_preset("my-pads")
    assert path == tmp_path / "controllers" / "my-pads.toml"
    again = ControllerMap.from_dict("my-pads", presets.load("controllers", "my-pads"))
    assert again.cc[74].param == "input_latency_ms" and again.notes == pads.notes
    assert "my-pads" in presets.names("controllers")
    with pytest.raises(ValueError, match="learnable parameters: bpm, aggression"):
        mc.learn("voice")


@pytest.mark.parametrize("data, message", [
    ({"knobs": {}}, "unknown key 'knobs'; valid keys: description, channel, notes, cc"),
    ({"channel": 16}, "channel must be 0-15"),
    ({"notes": {"36": "dance"}}, "is not an action; valid: transport/start"),
    ({"notes": {"200": "turn/stop"}}, "note 200 is outside 0-127"),
    ({"cc": {"21": {"param": "volume"}}}, "cc 21 needs param = one of bpm, aggression"),
    ({"cc": {"21": {"param": "aggression", "hi": 2}}}, "hi = 2 is outside aggression's 0..1"),
    ({"cc": {"21": {"param": "aggression", "curve": "s"}}}, "curve 's'; valid: linear, exp, log"),
])
def test_bad_maps_name_the_fix(data, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ControllerMap.from_dict("mine", data)


def test_learn_over_osc(tmp_path, monkeypatch, pads):
    monkeypatch.setenv("CYPHER_HOME", str(tmp_path))
    c = Controls()
    mc = MidiControl(c, pads)
    server = OscServer(c, port=0, handlers=mc.osc_handlers()).start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2.0)

    def send(address, *args):
        b = OscMessageBuilder(address=address)
        for a in args:
            b.add_arg(a)
        sock.sendto(b.build().dgram, ("127.0.0.1", server.port))

    try:
        send("/cypher/midi/learn", "bpm")
        wait_until(lambda: mc.learning == "bpm", 2)
        assert mc.learning == "bpm"
        send("/cypher/midi/learn", "flow")
        reply = OscMessage(sock.recv(4096))
        assert reply.address == "/cypher/error" and "learnable parameters" in reply.params[1]
        send("/cypher/midi/save", "after-learn")
        wait_until(lambda: (tmp_path / "controllers" / "after-learn.toml").exists(), 2)
        assert (tmp_path / "controllers" / "after-learn.toml").exists()
    finally:
        sock.close()
        server.close()


def test_port_lookup_names_what_exists():
    from plugin_host.midi_ports import _find, open_input

    assert _find(["Midi Through:0", "nanoKONTROL2:0"], "nanoKONTROL", "input") == "nanoKONTROL2:0"
    with pytest.raises(RuntimeError, match="no MIDI input named like 'launchpad'; available: Midi Through:0"):
        _find(["Midi Through:0"], "launchpad", "input")
    with pytest.raises(ValueError, match="unknown MIDI API 'midiman'; valid: jack, alsa, coremidi, winmm"):
        open_input("x", lambda m: None, api="midiman")

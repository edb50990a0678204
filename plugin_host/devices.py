"""`cypher devices`: the MIDI ports and audio ports the engine can see, per backend."""
from __future__ import annotations


def list_devices() -> dict:
    """{"jack": {...}, "portaudio": {...}, "rtmidi": {api: {...}}}; a backend that is not there says why."""
    out: dict = {}
    try:
        import jack

        jack.set_error_function(lambda message: None)  # "cannot connect" is our answer, not noise
        client = jack.Client("cypher-devices", no_start_server=True)
        try:
            ports = client.get_ports()
            out["jack"] = {
                "running": True, "sample_rate": client.samplerate, "block_size": client.blocksize,
                "audio_out": [p.name for p in ports if p.is_audio and p.is_output],
                "audio_in": [p.name for p in ports if p.is_audio and p.is_input],
                "midi_out": [p.name for p in ports if p.is_midi and p.is_output],
                "midi_in": [p.name for p in ports if p.is_midi and p.is_input],
            }
        finally:
            client.close()
    except (ImportError, OSError) as e:
        out["jack"] = {"running": False, "why": f"JACK library not available ({e})"}
    except Exception as e:  # jack.JackError: no server
        out["jack"] = {"running": False, "why": f"no JACK server running ({type(e).__name__})"}
    try:
        from plugin_host.portaudio_io import DeviceError, device_names

        out["portaudio"] = {"devices": device_names()}
    except (ImportError, DeviceError) as e:
        out["portaudio"] = {"error": str(e)}
    out["rtmidi"] = {}
    try:
        import rtmidi

        for api in rtmidi.get_compiled_api():
            name = rtmidi.get_api_display_name(api)
            try:
                out["rtmidi"][name] = {"inputs": rtmidi.MidiIn(api).get_ports(),
                                       "outputs": rtmidi.MidiOut(api).get_ports()}
            except Exception as e:  # rtmidi.SystemError: the backend cannot open
                out["rtmidi"][name] = {"error": str(e)}
    except ImportError as e:
        out["rtmidi"] = {"error": str(e)}
    return out


def format_devices(d: dict) -> str:
    lines = []
    j = d["jack"]
    if j.get("running"):
        lines.append(f"JACK: running at {j['sample_rate']} Hz, {j['block_size']} frames a block")
        for key, label in (("audio_out", "audio sources"), ("audio_in", "audio sinks"),
                           ("midi_out", "MIDI sources"), ("midi_in", "MIDI sinks")):
            lines.append(f"  {label}: {', '.join(j[key]) or '(none)'}")
    else:
        lines.append(f"JACK: {j['why']}")
    pa = d.get("portaudio", {})
    if "error" in pa:
        lines.append(f"PortAudio: unavailable: {pa['error']}")
    else:
        lines.append("PortAudio devices (cypher serve --backend portaudio --device NAME):")
        lines += [f"  {name}" for name in pa["devices"]] or ["  (none)"]
    for api, info in d["rtmidi"].items():
        if "error" in info:
            lines.append(f"MIDI ({api}): unavailable: {info['error']}")
        else:
            lines.append(f"MIDI ({api}): in: {', '.join(info['inputs']) or '(none)'}; "
                         f"out: {', '.join(info['outputs']) or '(none)'}")
    return "\n".join(lines)

"""OSC control: a documented address space under /cypher, validated, clamped, answered.

One table (`ADDRESSES`) says every address, its argument types, range and meaning;
`check_args` validates against it with exact messages. Handlers are plain functions
that set a field of `Controls` or record a command; nothing blocks the receive thread.
Bad input (unknown address, wrong type or count, malformed packet) gets an
`/cypher/error <address> <message>` reply to the sender and one log line per address.

Feedback goes to subscribed clients (`/cypher/subscribe [port]`): `/cypher/state`,
`/cypher/beat`, `/cypher/line`, `/cypher/param`.
"""
from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from dataclasses import dataclass, field, fields
from typing import Any, Callable

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_server import BlockingOSCUDPServer

log = logging.getLogger("cypher.osc")
PREFIX = "/cypher"


@dataclass(frozen=True)
class Address:
    """One OSC address: argument types ('f' number, 'i' integer, 's' string, 'b' 0/1),
    an inclusive range for numbers, the Controls field it sets (if any), and its meaning."""

    types: str
    doc: str
    lo: float | None = None
    hi: float | None = None
    param: str | None = None


ADDRESSES: dict[str, Address] = {
    "/cypher/turn/opponent": Address("", "the opponent's turn starts: listen (battle mode counts its turns from here)"),
    "/cypher/turn/respond": Address("", "respond now, on the next downbeat"),
    "/cypher/turn/stop": Address("", "stop: finish no bar, stay silent"),
    "/cypher/transport/start": Address("", "start the internal clock"),
    "/cypher/transport/stop": Address("", "stop the internal clock"),
    "/cypher/tempo/bpm": Address("f", "internal clock tempo", 40, 240, "bpm"),
    "/cypher/style/aggression": Address("f", "how hard the comebacks hit", 0, 1, "aggression"),
    "/cypher/style/clean": Address("b", "clean mode: no profanity", 0, 1, "clean"),
    "/cypher/style/rhyme_density": Address("f", "target rhyme density (Malmi et al.)", 0, 4, "rhyme_density"),
    "/cypher/style/voice": Address("s", "voice preset name", param="voice"),
    "/cypher/style/flow": Address("s", "flow preset name", param="flow"),
    "/cypher/style/fx": Address("s", "fx preset name", param="fx"),
    "/cypher/latency/input_ms": Address("f", "latency the engine cannot see on the way in", -500, 500, "input_latency_ms"),
    "/cypher/latency/output_ms": Address("f", "latency the engine cannot see on the way out", -500, 500, "output_latency_ms"),
    "/cypher/opponent/text": Address("s", "the opponent's words from an external recognizer", param="opponent_text"),
    "/cypher/midi/learn": Address("s", "MIDI learn: the next CC moved binds to this parameter"),
    "/cypher/midi/save": Address("s", "save the controller map, with what was learned, as a user preset of this name"),
    "/cypher/status": Address("", "reply with /cypher/state and every /cypher/param"),
    "/cypher/subscribe": Address("i", "send feedback to the sender's host at this port (0 = the sender's port)", 0, 65535),
    "/cypher/unsubscribe": Address("i", "stop feedback to that port (0 = the sender's port)", 0, 65535),
}
FEEDBACK = {
    "/cypher/state": "s: idle | opponent | responding",
    "/cypher/param": "s name, value: a parameter's current value",
    "/cypher/beat": "f: beat number, sent on each beat",
    "/cypher/line": "s text, f start beat: each bar as it is performed",
    "/cypher/error": "s address, s message: what was wrong with a message sent to cypher",
    "/cypher/miss": "i bar, f ms late: a written bar was not ready; a fallback bar played on the beat",
    "/cypher/latency": "s stage, f ms: e.g. verse_end_to_queued (negative: in place before the verse ended)",
}


@dataclass
class Controls:
    """Everything OSC (and MIDI) can set; the engine reads it between bars."""

    bpm: float = 90.0
    aggression: float = 0.5
    clean: bool = True
    rhyme_density: float = 1.0
    voice: str = "mc"
    flow: str = "boom-bap"
    fx: str = "battle"
    input_latency_ms: float = 0.0
    output_latency_ms: float = 0.0
    opponent_text: str = ""
    state: str = "idle"
    commands: list[str] = field(default_factory=list)  # turn and transport commands, in order

    def params(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("commands", "state")}


def check_args(address: str, args: tuple, choices: dict[str, list[str]] | None = None) -> tuple:
    """Validate and clamp `args` for `address`; raises ValueError/TypeError naming the fix."""
    spec = ADDRESSES.get(address)
    if spec is None:
        raise ValueError(f"unknown address {address}; addresses start with {PREFIX}/ (send /cypher/status for the list)")
    if len(args) != len(spec.types):
        want = " ".join(spec.types) or "no arguments"
        raise TypeError(f"{address} takes {want}, got {len(args)} argument(s)")
    out = []
    for kind, value in zip(spec.types, args):
        if kind == "s":
            if not isinstance(value, str):
                raise TypeError(f"{address} takes a string, got {type(value).__name__} {value!r}")
            if choices and spec.param in choices and value not in choices[spec.param]:
                raise ValueError(f"{address}: no {spec.param} {value!r}; valid: {', '.join(choices[spec.param])}")
            out.append(value)
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{address} takes a number, got {type(value).__name__} {value!r}")
        if kind in ("i", "b") and float(value) != int(value):
            raise TypeError(f"{address} takes an integer, got {value!r}")
        v = min(max(float(value), spec.lo), spec.hi)  # clamped into range
        out.append(int(v) if kind in ("i", "b") else v)
    return tuple(out)


class OscServer:
    """UDP OSC server on its own thread. Binds 127.0.0.1 unless a host is given, and then
    only the `allow` client addresses may talk to it."""

    def __init__(self, controls: Controls, port: int = 9000, host: str = "127.0.0.1",
                 allow: list[str] | None = None, choices: dict[str, list[str]] | None = None,
                 on_apply: Callable[[str, tuple], None] | None = None,
                 handlers: dict[str, Callable[[tuple], None]] | None = None) -> None:
        loopback = ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
        if not loopback and not allow:
            raise ValueError(f"listening on {host} needs --osc-allow with the client addresses that may control cypher")
        self.controls = controls
        self.choices = choices or {}
        self.allow = {socket.gethostbyname(a) for a in (allow or [])}
        self.loopback_only = loopback
        self.on_apply = on_apply
        self.handlers = handlers or {}  # addresses served by other parts (MIDI learn, ...)
        self.subscribers: set[tuple[str, int]] = set()
        self._warned: set[str] = set()
        self._out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        dispatcher = Dispatcher()
        dispatcher.set_default_handler(self._handle, needs_reply_address=True)
        self.server = BlockingOSCUDPServer((host, port), dispatcher)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="osc", daemon=True)

    def start(self) -> "OscServer":
        self._thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._out.close()

    # -- receiving -----------------------------------------------------------------------
    def _handle(self, client: tuple[str, int], address: str, *args) -> None:
        if not self.loopback_only and client[0] not in self.allow:
            self._warn_once(f"from:{client[0]}", f"OSC from {client[0]} ignored: not in --osc-allow")
            return
        try:
            values = check_args(address, args, self.choices)
        except (TypeError, ValueError) as e:
            self._warn_once(address, str(e))
            self.send(client, "/cypher/error", address, str(e))
            return
        spec = ADDRESSES[address]
        c = self.controls
        if address in self.handlers:
            try:
                self.handlers[address](values)
            except ValueError as e:
                self.send(client, "/cypher/error", address, str(e))
                return
        elif spec.param:
            value = values[0]
            setattr(c, spec.param, bool(value) if spec.types == "b" else value)
            self.broadcast("/cypher/param", spec.param, _osc_value(getattr(c, spec.param)))
        elif address == "/cypher/subscribe":
            self.subscribers.add((client[0], values[0] or client[1]))
        elif address == "/cypher/unsubscribe":
            self.subscribers.discard((client[0], values[0] or client[1]))
        elif address == "/cypher/status":
            self.send(client, "/cypher/state", c.state)
            for name, value in c.params().items():
                self.send(client, "/cypher/param", name, _osc_value(value))
        elif not address.startswith(PREFIX + "/midi/"):
            c.commands.append(address.removeprefix(PREFIX + "/"))
        else:
            self.send(client, "/cypher/error", address, "MIDI control is not running")
            return
        if self.on_apply:
            self.on_apply(address, values)

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message)

    # -- sending ---------------------------------------------------------------------------
    def send(self, target: tuple[str, int], address: str, *args) -> None:
        builder = OscMessageBuilder(address=address)
        for a in args:
            builder.add_arg(a)
        try:
            self._out.sendto(builder.build().dgram, target)
        except OSError:
            pass  # a vanished client must not stop the server

    def broadcast(self, address: str, *args) -> None:
        for target in list(self.subscribers):
            self.send(target, address, *args)

    def set_state(self, state: str) -> None:
        self.controls.state = state
        self.broadcast("/cypher/state", state)


def _osc_value(value):
    return int(value) if isinstance(value, bool) else value


def address_table_markdown() -> str:
    """The address space as a Markdown table (for docs/osc.md)."""
    rows = ["| address | arguments | range | what |", "| --- | --- | --- | --- |"]
    for addr, spec in ADDRESSES.items():
        rng = f"{spec.lo:g}..{spec.hi:g}" if spec.lo is not None else ""
        rows.append(f"| `{addr}` | {spec.types or '-'} | {rng} | {spec.doc} |")
    rows += ["", "| feedback address | arguments |", "| --- | --- |"]
    rows += [f"| `{addr}` | {what} |" for addr, what in FEEDBACK.items()]
    return "\n".join(rows)


def measure_apply_latency_ms(n: int = 500) -> list[float]:
    """Send `n` parameter messages over loopback UDP; return send -> applied times (ms)."""
    applied: dict[float, float] = {}
    done = threading.Event()

    def on_apply(address, values):
        applied[values[0]] = time.perf_counter()
        if len(applied) >= n:
            done.set()

    server = OscServer(Controls(), port=0, on_apply=on_apply).start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = {}
    try:
        for i in range(n):
            value = 40.0 + (i % 1600) * 0.125  # distinct, exact in float32: identifies the message
            b = OscMessageBuilder(address="/cypher/tempo/bpm")
            b.add_arg(value)
            dgram = b.build().dgram
            sent[value] = time.perf_counter()
            sock.sendto(dgram, ("127.0.0.1", server.port))
            time.sleep(0.001)  # one message at a time: measure latency, not queueing
        done.wait(5.0)
    finally:
        sock.close()
        server.close()
    return [(applied[v] - sent[v]) * 1000 for v in sent if v in applied]

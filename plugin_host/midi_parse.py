"""MIDI bytes to small message records, robust to what real streams carry.

Handles running status, System Exclusive (skipped whole), realtime bytes in the middle
of other messages (delivered at once, the interrupted message goes on), stray data
bytes with no status (dropped), and undefined status bytes (dropped). One parser per
stream: it keeps running status and SysEx state between `feed` calls.
"""
from __future__ import annotations

from dataclasses import dataclass

# Data bytes that follow each channel-voice status (high nibble).
_CHANNEL_LEN = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}
# System common messages and their data bytes; 0xF4, 0xF5 are undefined.
_COMMON_LEN = {0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF6: 0}
REALTIME = {0xF8: "clock", 0xFA: "start", 0xFB: "continue", 0xFC: "stop", 0xFE: "active_sensing", 0xFF: "reset"}
_KINDS = {0x80: "note_off", 0x90: "note_on", 0xA0: "poly_pressure", 0xB0: "control_change", 0xC0: "program_change",
          0xD0: "channel_pressure", 0xE0: "pitchwheel", 0xF1: "quarter_frame", 0xF2: "songpos", 0xF3: "song_select",
          0xF6: "tune_request"}


@dataclass(frozen=True, slots=True)
class Message:
    """kind: clock, start, continue, stop, songpos, note_on, note_off, control_change, ...
    channel: 0-15 for channel messages, else -1. data: the data bytes. t: host time (s)."""

    kind: str
    channel: int
    data: tuple[int, ...]
    t: float

    @property
    def value(self) -> int:
        """songpos: 16ths from the start; pitchwheel: -8192..8191; otherwise the last data byte."""
        if self.kind == "songpos":
            return self.data[0] | (self.data[1] << 7)
        if self.kind == "pitchwheel":
            return (self.data[0] | (self.data[1] << 7)) - 8192
        return self.data[-1] if self.data else 0


class MidiParser:
    def __init__(self) -> None:
        self._status = 0  # running status (channel messages only)
        self._need = 0
        self._data: list[int] = []
        self._in_sysex = False
        self.dropped = 0  # bytes that could not belong to any message

    def feed(self, data: bytes, t: float) -> list[Message]:
        out = []
        for b in data:
            if b >= 0xF8:  # realtime: may appear anywhere, even inside SysEx
                if b in REALTIME:
                    out.append(Message(REALTIME[b], -1, (), t))
                else:
                    self.dropped += 1
                continue
            if b == 0xF0:
                self._in_sysex, self._status, self._data = True, 0, []
                continue
            if b == 0xF7:
                self._in_sysex = False
                continue
            if self._in_sysex:
                if b >= 0x80:  # a status byte ends an unterminated SysEx
                    self._in_sysex = False
                else:
                    continue
            if b >= 0x80:
                self._data = []
                if b < 0xF0:
                    self._status, self._need = b, _CHANNEL_LEN[b & 0xF0]
                elif b in _COMMON_LEN:
                    self._status, self._need = b, _COMMON_LEN[b]
                    if self._need == 0:
                        out.append(Message(_KINDS[b], -1, (), t))
                        self._status = 0
                else:
                    self._status = 0
                    self.dropped += 1
                continue
            if not self._status:
                self.dropped += 1
                continue
            self._data.append(b)
            if len(self._data) == self._need:
                status = self._status
                kind = _KINDS[status & 0xF0 if status < 0xF0 else status]
                data = tuple(self._data)
                if kind == "note_on" and data[1] == 0:
                    kind = "note_off"
                out.append(Message(kind, status & 0x0F if status < 0xF0 else -1, data, t))
                self._data = []
                if status >= 0xF0:
                    self._status = 0  # system common messages clear running status
        return out


def drive_clock(follower, msg: Message) -> None:
    """Send one parsed message to a MidiClockFollower."""
    if msg.kind == "clock":
        follower.tick(msg.t)
    elif msg.kind == "start":
        follower.start()
    elif msg.kind == "continue":
        follower.continue_()
    elif msg.kind == "stop":
        follower.stop(msg.t)
    elif msg.kind == "songpos":
        follower.song_position(msg.value)

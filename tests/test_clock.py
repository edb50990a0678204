import numpy as np
import pytest

from plugin_host.clock import ARRIVAL_LOST_AFTER_TICKS, InternalClock, Meter, MidiClockFollower
from plugin_host.midi_parse import MidiParser, drive_clock


def _ticks(follower, bpm, n, t0=1.0, jitter=0.0, seed=0, start_index=0):
    rng = np.random.default_rng(seed)
    period = 60.0 / bpm / 24
    for k in range(start_index, start_index + n):
        follower.tick(t0 + k * period + rng.uniform(-jitter, jitter) * period)
    return t0 + (start_index + n) * period


def test_internal_clock_queries():
    c = InternalClock(bpm=120.0)
    c.start(10.0)
    assert c.beat_at(10.5) == pytest.approx(1.0)
    assert c.time_of(8.0) == pytest.approx(14.0)
    assert c.next_downbeat(10.1) == 4.0
    assert c.next_downbeat(10.0) == 0.0
    assert c.next_downbeat(10.0, bars_ahead=1) == 4.0
    p = c.position(10.0 + 60 / 120 * 5.5)  # beat 5.5 = bar 1, beat 1, 16th 2
    assert (p.bar, p.beat, p.sixteenth) == (1, 1, 2)
    c.set_bpm(60.0, 11.0)  # no jump at the change
    assert c.beat_at(11.0) == pytest.approx(2.0) and c.beat_at(12.0) == pytest.approx(3.0)
    c.stop(12.0)
    assert c.beat_at(99.0) == pytest.approx(3.0)


@pytest.mark.parametrize("sig, bar_beats", [("4/4", 4), ("3/4", 3), ("6/8", 3)])
def test_meters(sig, bar_beats):
    c = InternalClock(bpm=60.0, meter=Meter.parse(sig))
    c.start(0.0)
    assert c.next_downbeat(0.5) == bar_beats
    assert c.position(bar_beats + 0.25).bar == 1


def test_bad_meter():
    with pytest.raises(ValueError, match="use e.g. 4/4, 3/4, 6/8"):
        Meter.parse("four")


@pytest.mark.parametrize("bpm", [70.0, 90.0, 140.0])
@pytest.mark.parametrize("jitter", [0.0, 0.02, 0.05, 0.10])
def test_follower_tempo_and_phase_under_jitter(bpm, jitter):
    """Ticks jittered around a steady grid: tempo within 0.1 BPM after one bar, beats
    predicted within 1 ms (2 ms at 10 % jitter) of the grid."""
    f = MidiClockFollower()
    f.start()
    end = _ticks(f, bpm, 96, jitter=jitter, seed=int(bpm))
    assert abs(f.bpm - bpm) <= 0.1
    errors = []
    for k in range(96, 96 + 96 * 3, 6):
        end = _ticks(f, bpm, 6, jitter=jitter, seed=k, start_index=k)
        beat = np.ceil(f.beat_at(end) + 1e-9)
        errors.append(abs(f.time_of(beat) - (1.0 + beat * 60 / bpm)) * 1000)
    assert np.percentile(errors, 95) <= (2.0 if jitter > 0.05 else 1.0)


def test_follower_is_not_fooled_by_a_late_first_tick():
    """Ticks stamped as they arrive (MIDI beside a PortAudio device): the first two came
    half a period apart. Not lost ticks, not double tempo: 120 BPM within a bar."""
    f = MidiClockFollower(lost_after_ticks=ARRIVAL_LOST_AFTER_TICKS)
    f.start()
    period = 60 / 120 / 24
    times = [0.0, period / 2] + [period * k + (0.004 if k % 2 else -0.003) for k in range(2, 120)]
    for t in times:
        f.tick(t)
    assert f.lost == 0 and abs(f.bpm - 120.0) < 0.5


def test_tempo_step_settles_within_a_beat():
    f = MidiClockFollower()
    f.start()
    t = _ticks(f, 90.0, 200)
    period = 60.0 / 120 / 24
    for k in range(24):
        f.tick(t + k * period)
    assert abs(f.bpm - 120.0) < 0.1


def test_start_stop_continue_and_song_position():
    f = MidiClockFollower()
    t = _ticks(f, 120.0, 30)  # ticks before Start: tempo only
    assert not f.running and abs(f.bpm - 120) < 1e-6 and f.beat_at(t) == 0.0
    f.start()
    f.tick(t)  # the first tick after Start is beat 0
    assert f.running and f.beat_at(t) == pytest.approx(0.0)
    period = 60.0 / 120 / 24
    for k in range(1, 49):
        f.tick(t + k * period)
    assert f.beat_at(t + 48 * period) == pytest.approx(2.0)
    f.stop(t + 48.5 * period)
    assert not f.running and f.beat_at(t + 100) == pytest.approx(49 / 24)
    f.song_position(16)  # 16 sixteenths = beat 4
    f.continue_()
    f.tick(t + 60 * period)
    assert f.running and f.beat_at(t + 60 * period) == pytest.approx(4.0)
    f.song_position(0)  # ignored while running
    assert f.beat_at(t + 60 * period) == pytest.approx(4.0)


def test_parser_running_status_sysex_realtime_and_garbage():
    p = MidiParser()
    stream = bytes([
        0x45, 0x12,              # stray data bytes: dropped
        0x90, 60, 100, 62, 0,    # note on, then running status note "on" with velocity 0 = note off
        0xF0, 1, 2, 0xF8, 3, 0xF7,  # SysEx with a clock tick inside: tick delivered, SysEx skipped
        0xB0, 7, 0xF8, 90,       # realtime byte in the middle of a CC
        0xF4,                    # undefined status: dropped
        0xF2, 0x10, 0x01,        # song position 0x90 = 144 sixteenths
        0xFA, 0xFB, 0xFC,
    ])
    msgs = p.feed(stream, 1.5)
    kinds = [m.kind for m in msgs]
    assert kinds == ["note_on", "note_off", "clock", "clock", "control_change", "songpos", "start", "continue", "stop"]
    assert msgs[0].data == (60, 100) and msgs[1].data == (62, 0) and msgs[4].data == (7, 90)
    assert msgs[5].value == 144 and all(m.t == 1.5 for m in msgs)
    assert p.dropped == 3


def test_parser_keeps_state_between_feeds():
    p = MidiParser()
    assert p.feed(bytes([0xB1, 10]), 0.0) == []
    (cc,) = p.feed(bytes([64]), 0.1)
    assert (cc.kind, cc.channel, cc.data) == ("control_change", 1, (10, 64))
    (cc2,) = p.feed(bytes([11, 65]), 0.2)  # running status across feeds
    assert cc2.data == (11, 65)


def test_clock_without_start_only_measures_tempo():
    f = MidiClockFollower()
    p = MidiParser()
    period = 60.0 / 100 / 24
    for k in range(48):
        for m in p.feed(b"\xf8", 2.0 + k * period):
            drive_clock(f, m)
    assert not f.running and abs(f.bpm - 100.0) < 1e-6


def test_duplicate_ticks_are_dropped():
    f = MidiClockFollower()
    f.start()
    period = 60.0 / 120 / 24
    f.tick(1.0)
    f.tick(1.0)  # the same tick twice
    for k in range(1, 48):
        f.tick(1.0 + k * period)
    assert f.duplicates == 1 and f.beat_at(1.0 + 47 * period) == pytest.approx(47 / 24)


def test_open_clock_sources():
    from plugin_host.clock import open_clock

    assert isinstance(open_clock("internal", 100.0), InternalClock)
    assert isinstance(open_clock("midi"), MidiClockFollower)
    with pytest.raises(ValueError, match="valid: internal, midi, link"):
        open_clock("sundial")


@pytest.mark.parametrize("dropped", [(50, 130), (70, 71)])  # apart, and two in a row
def test_lost_ticks_do_not_shift_the_beat(dropped):
    """Ticks that never arrive (dropped MIDI events) are counted in from the gap they leave."""
    period = 60 / 120 / 24
    f = MidiClockFollower()
    f.start()
    times = [1.0 + k * period for k in range(24 * 8)]
    for k, t in enumerate(times):
        if k not in dropped:
            f.tick(t)
    assert f.lost == 2
    assert abs(f.beat_at(times[-1]) - (len(times) - 1) / 24) < 1e-6
    assert abs(f.bpm - 120) < 1e-6


def test_the_tempo_holds_right_after_a_lost_tick():
    period = 60 / 120 / 24
    f = MidiClockFollower()
    f.start()
    for k in range(24 * 4):
        if k != 60:
            f.tick(1.0 + k * period)
            if k > 61:
                assert abs(f.bpm - 120) < 1e-6, k


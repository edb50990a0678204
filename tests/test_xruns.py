"""Where xruns come from: each client's late and slow cycles, and a witness for the machine stalling."""
import os
import signal
import time

import pytest
from conftest import wait_until

from plugin_host.jack_rig import JackServer, StallProbe, have_jack_tools


@pytest.mark.skipif(not have_jack_tools(), reason="needs jackd2 (.ci/run installs it)")
@pytest.mark.parametrize("callback", ["C", "Python"])
def test_an_xrun_is_put_down_to_the_client_that_was_slow(callback, monkeypatch):
    """A client whose cycle takes ten periods counts one slow cycle; cypher's callback,
    after it in the graph, counts a late start and no slow cycle of its own."""
    import jack

    from plugin_host import rt_callback
    from plugin_host.audio_io import CycleLateness, JackAudio

    if callback == "Python":
        monkeypatch.setattr(rt_callback, "_lib", None)
        monkeypatch.setattr(rt_callback, "_why", "the test asks for the Python callback")
    elif rt_callback.load() is None:
        pytest.skip(f"the C callback is not built: {rt_callback.why_not()}")
    with JackServer(name=f"cypher-xrun-{int(time.time() * 1000) % 100000}", sync=True):
        slow = jack.Client("cypher-slowpoke", no_start_server=True)
        out = slow.outports.register("out")
        lateness = CycleLateness(slow)
        stall = {"cycles": 0}

        def process(frames):
            lateness.begin()
            out.get_array().fill(0.0)
            if stall["cycles"]:
                stall["cycles"] -= 1
                time.sleep(10 * frames / slow.samplerate)
            lateness.end(frames)

        slow.set_process_callback(process)
        slow.activate()
        audio = JackAudio("cypher-after", midi=False, ring_s=1.0)
        try:
            slow.connect(out, audio.inport.name)  # cypher runs after it in every cycle
            time.sleep(0.2)
            before = audio.lateness()
            stall["cycles"] = 1
            wait_until(lambda: lateness.slow_cycles >= 1 and audio.lateness()[0] > before[0], 10.0)
            time.sleep(0.2)
            assert lateness.slow_cycles >= 1  # (its starts may be late too on a loaded machine)
            assert audio.lateness()[1] == before[1]  # cypher's own work was never slow
        finally:
            audio.close()
            slow.deactivate()
            slow.close()


def test_the_stall_probe_notes_when_it_could_not_run():
    """Stopped for 80 ms (as a virtual machine's host might stop a processor), the
    probe notes one stall of about that length, at the time it happened."""
    with StallProbe(threshold_ms=20.0) as probe:
        time.sleep(1.0)  # started and settled
        stopped_at = time.monotonic()
        os.kill(probe.procs[0].pid, signal.SIGSTOP)  # the watcher of one processor
        time.sleep(0.08)
        os.kill(probe.procs[0].pid, signal.SIGCONT)
        time.sleep(0.3)
    big = [(t, late) for t, late in probe.stalls if late > 0.05]
    assert len(big) == 1
    t, late = big[0]
    assert 0.07 < late < 0.5 and abs(t - stopped_at) < 0.05
    assert probe.explains(stopped_at + late + 0.01)
    assert not probe.explains(stopped_at + 5.0)

"""OSC control with real peers: oscsend and oscdump (liblo-tools) and raw UDP packets."""
import logging
import shutil
import socket
import subprocess
import time

import pytest
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

import presets
from conftest import wait_until
from plugin_host.osc import ADDRESSES, Controls, OscServer, address_table_markdown, check_args

needs_liblo = pytest.mark.skipif(not shutil.which("oscsend"), reason="needs liblo-tools (.ci/run installs it)")


@pytest.fixture
def server():
    s = OscServer(Controls(), port=0, choices={"voice": presets.names("voices")}).start()
    yield s
    s.close()



def _udp(port: int, address: str, *args, sock=None):
    b = OscMessageBuilder(address=address)
    for a in args:
        b.add_arg(a)
    own = sock is None
    sock = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.sendto(b.build().dgram, ("127.0.0.1", port))
    if own:
        sock.close()


@needs_liblo
def test_oscsend_sets_parameters_and_clamps(server):
    def send(*args):
        subprocess.run(["oscsend", "localhost", str(server.port), *args], check=True, timeout=5)

    send("/cypher/style/aggression", "f", "0.7")
    send("/cypher/tempo/bpm", "f", "500")  # clamped to 240
    send("/cypher/style/clean", "i", "0")
    send("/cypher/opponent/text", "s", "you came from the suburbs with a borrowed chain")
    send("/cypher/turn/respond")
    c = server.controls
    assert wait_until(lambda: c.commands == ["turn/respond"])
    assert c.aggression == pytest.approx(0.7) and c.bpm == 240 and c.clean is False
    assert c.opponent_text.startswith("you came from the suburbs")


@needs_liblo
def test_subscribers_get_feedback_in_oscdump(server):
    port = _free_port()
    dump = subprocess.Popen(["stdbuf", "-oL", "oscdump", str(port)], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)
        subprocess.run(["oscsend", "localhost", str(server.port), "/cypher/subscribe", "i", str(port)], check=True)
        assert wait_until(lambda: server.subscribers)
        subprocess.run(["oscsend", "localhost", str(server.port), "/cypher/style/rhyme_density", "f", "2.5"], check=True)
        server.set_state("responding")
        time.sleep(0.3)
    finally:
        dump.terminate()
    out = dump.communicate(timeout=5)[0]
    assert '/cypher/param sf "rhyme_density" 2.5' in out
    assert '/cypher/state s "responding"' in out


def test_bad_messages_get_an_error_reply_and_never_crash(server, caplog):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2.0)
    try:
        with caplog.at_level(logging.WARNING, logger="cypher.osc"):
            sock.sendto(b"\x00garbage that is not OSC at all", ("127.0.0.1", server.port))
            sock.sendto(b"/cypher/tempo/bpm\x00\x00\x00,f\x00", ("127.0.0.1", server.port))  # truncated
            _udp(server.port, "/cypher/style/aggression", "hard", sock=sock)
            reply = OscMessage(sock.recv(4096))
            assert reply.address == "/cypher/error"
            assert reply.params == ["/cypher/style/aggression", "/cypher/style/aggression takes a number, got str 'hard'"]
            _udp(server.port, "/cypher/style/aggression", 0.1, 0.2, sock=sock)
            assert "takes f, got 2 argument(s)" in OscMessage(sock.recv(4096)).params[1]
            _udp(server.port, "/cypher/style/voice", "robot", sock=sock)
            assert "no voice 'robot'; valid: " in OscMessage(sock.recv(4096)).params[1]
            for _ in range(3):
                _udp(server.port, "/somewhere/else", 1, sock=sock)
                assert OscMessage(sock.recv(4096)).address == "/cypher/error"
        # still alive and applying
        _udp(server.port, "/cypher/style/aggression", 0.25)
        assert wait_until(lambda: server.controls.aggression == pytest.approx(0.25))
    finally:
        sock.close()
    unknown = [r for r in caplog.records if "/somewhere/else" in r.getMessage()]
    assert len(unknown) == 1  # logged once per address


def test_status_query_replies_with_everything(server):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2.0)
    try:
        _udp(server.port, "/cypher/status", sock=sock)
        msgs = [OscMessage(sock.recv(4096)) for _ in range(1 + len(server.controls.params()))]
    finally:
        sock.close()
    assert msgs[0].address == "/cypher/state" and msgs[0].params == ["idle"]
    names = {m.params[0] for m in msgs[1:]}
    assert {"bpm", "aggression", "voice", "input_latency_ms"} <= names


def test_other_interfaces_need_an_allowlist():
    with pytest.raises(ValueError, match="needs --osc-allow"):
        OscServer(Controls(), port=0, host="0.0.0.0")
    s = OscServer(Controls(), port=0, host="0.0.0.0", allow=["10.9.8.7"]).start()
    try:
        _udp(s.port, "/cypher/style/aggression", 0.9)  # from 127.0.0.1: not allowed
        time.sleep(0.2)
        assert s.controls.aggression == 0.5
    finally:
        s.close()


def test_check_args_table():
    assert check_args("/cypher/latency/output_ms", (12,)) == (12.0,)
    assert check_args("/cypher/latency/output_ms", (-900.0,)) == (-500.0,)
    with pytest.raises(TypeError, match="takes an integer, got 0.5"):
        check_args("/cypher/style/clean", (0.5,))
    table = address_table_markdown()
    assert all(f"`{a}`" in table for a in ADDRESSES)


def _free_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_docs_table_matches_the_code():
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "osc.md").read_text()
    assert address_table_markdown() in doc, "regenerate docs/osc.md from plugin_host.osc.address_table_markdown()"

"""The benchmark harness (tests/bench) kept from rotting: a few seconds, small file, one player.

Each server the benchmarks compare (ours, nginx-rtmp, rtmplite3) relays a small H.264 +
AAC FLV to one player of the load generator, which counts and hashes every payload; an
integrity failure fails the test.  The runner is run once in ``--quick`` mode.  No timing
is asserted anywhere: speed is for ``tox -e bench``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import socket
import threading
from pathlib import Path
from typing import Iterator, List

import pytest

import rtmp
from rtmp import commands, control
from rtmp.chunk import ChunkDecoder, ChunkEncoder
from rtmp.message import MessageType
from tests.bench import __main__ as runner
from tests.bench import bench_relay, harness, loadgen
from tests.conftest import IN_CI, require_peer
from tests.peers import free_port

SERVER_NAMES = ("ours", "nginx-rtmp", "rtmplite3")


def _require_server(name: str) -> None:
    if name == "nginx-rtmp":
        require_peer("nginx")
        reason = harness.Nginx.available()
        if reason:
            pytest.skip(reason)
    elif name == "rtmplite3" and importlib.util.find_spec("rtmplite3") is None:
        message = "rtmplite3 is not installed (it belongs in the test extra)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def plan() -> loadgen.MediaPlan:
    return loadgen.MediaPlan.from_flv(harness.bench_media(quick=True))


class TestRelayIntegrity:
    """RTMP 7.2.2.6 publish relayed to RTMP 7.2.2.1 play, byte for byte, on every server."""

    @pytest.mark.spec("RTMP 7.2.2.6", "RTMP 7.2.2.1")
    @pytest.mark.parametrize("server", [
        "ours",
        pytest.param("nginx-rtmp", marks=pytest.mark.interop),
        pytest.param("rtmplite3", marks=pytest.mark.interop),
    ])
    def test_one_player_gets_every_payload(self, server: str, plan: loadgen.MediaPlan) -> None:
        _require_server(server)
        figures = bench_relay.measure(server, plan, players=1, timeout=60.0)  # raises on loss
        assert figures["mb_s"] > 0
        assert figures["rss_mb"] > 0

    @pytest.mark.spec("ERTMP Enhanced Video", "RTMP 7.2.2.1")
    def test_the_hevc_plan_relays_intact_with_the_same_frame_kinds(
            self, plan: loadgen.MediaPlan) -> None:
        """Issue 18's measure: the H.264 plan re-signalled as E-RTMP hvc1 keeps every
        frame's kind, composition time and payload, and relays byte for byte."""
        from rtmp import ertmp
        from rtmp.message import Message
        from rtmp.streams import classify

        hevc = bench_relay.hevc_plan(plan)
        pairs = list(zip(plan.headers + plan.frames, hevc.headers + hevc.frames))
        assert len(pairs) == len(plan.headers) + len(plan.frames)
        converted = 0
        for (kind, ts, data), (kind2, ts2, data2) in pairs:
            assert (kind, ts) == (kind2, ts2)
            if kind != 9:
                assert data2 == data
                continue
            converted += 1
            header = ertmp.parse_video(data2)  # strict: a valid ExVideoTagHeader
            assert header.fourcc == "hvc1" and header.frame_type == data[0] >> 4
            track = header.tracks[0]
            assert track.payload(data2) == data[5:] or data[1] == 2  # SequenceEnd: no body
            assert track.composition_time == int.from_bytes(data[2:5], "big", signed=True)
            assert classify(Message(type=9, data=data2)) == classify(Message(type=9, data=data))
        assert converted > 10
        figures = bench_relay.measure("ours", hevc, players=2, timeout=60.0)  # raises on loss
        assert figures["mb_s"] > 0

    @pytest.mark.interop
    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_the_topology_through_an_nginx_edge_gets_every_payload(
            self, plan: loadgen.MediaPlan) -> None:
        """bench_topology (issue 19): our origin -> an nginx-rtmp edge pulling from it ->
        2 players, every payload counted and hashed (a loss raises)."""
        _require_server("nginx-rtmp")
        from tests.bench import bench_topology

        figures = bench_topology.measure(plan, players=2, edges=1, timeout=60.0)
        assert figures["mb_s"] > 0 and figures["cpu_s"] > 0

    @pytest.mark.spec("RTMP 7.2.2.6", "RTMP 7.2.2.1")
    def test_the_burst_measure_reads_each_player_to_the_end(
            self, plan: loadgen.MediaPlan) -> None:
        """bench_burst (issue 21) kept from rotting: 1 s of media at once, then real time;
        3 players read until the stream ends (Stream EOF), the last one throttled; each
        player's fraction is reported (integrity of the whole ones checked: a change raises)."""
        from tests.bench import bench_burst

        short = plan.truncated(2.0)
        fractions = bench_burst.measure(
            "ours", short, 3, pace_after_ms=1000,
            throttle={2: bench_burst.stream_rate(short) / 2}, timeout=60.0)
        assert len(fractions) == 3 and all(0 < f <= 1 for f in fractions), fractions

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_a_changed_payload_is_reported(self, plan: loadgen.MediaPlan) -> None:
        """The integrity check can fail: one altered expectation is caught per player."""
        with harness.OurServer() as server:
            outcome = loadgen.run_relay(loadgen.Endpoint("127.0.0.1", server.port), plan, 2,
                                        timeout=60.0)
        assert outcome.failures == []
        count, _ = outcome.expected[9]
        outcome.expected[9] = (count, "0" * 64)
        assert outcome.failures == [f"player {i}: video payloads differ (SHA-256)" for i in (0, 1)]
        outcome.expected[8] = (outcome.expected[8][0] + 1, outcome.expected[8][1])
        assert any("audio messages, expected" in f for f in outcome.failures)

    def test_a_failed_run_is_reported_not_waited_for(self, plan: loadgen.MediaPlan) -> None:
        """Nothing listens: every process reports its error and the run ends."""
        outcome = loadgen.run_relay(loadgen.Endpoint("127.0.0.1", free_port()), plan, 2,
                                    timeout=20.0)
        assert [p.index for p in outcome.players] == [0, 1]
        assert all("ConnectionRefusedError" in p.error for p in outcome.players)
        assert "ConnectionRefusedError" in outcome.publisher.error
        assert len(outcome.failures) >= 3

    def test_plan_repeats_frames_but_not_headers(self, plan: loadgen.MediaPlan) -> None:
        twice = loadgen.MediaPlan(plan.metadata, plan.headers, plan.frames, passes=2)
        messages = list(twice.messages(stream_id=1))
        assert len(messages) == 1 + len(plan.headers) + 2 * len(plan.frames)
        second = messages[1 + len(plan.headers) + len(plan.frames)]
        assert second.timestamp == plan.frames[0][1] + plan.pass_duration_ms
        assert twice.media_bytes == sum(len(m.data) for m in messages[1:])


def _fake_player_server(listener: socket.socket, play_code: str, seen: List[str]) -> None:
    """One session of a scripted server: S0+S1+S2 and Set Chunk Size 4096 in one write
    (reply bytes right behind the handshake), stream id 7, ``play_code`` on play."""
    sock, _ = listener.accept()
    with sock:
        sock.settimeout(5)
        c0c1 = b""
        while len(c0c1) < 1537:
            c0c1 += sock.recv(1537 - len(c0c1))
        encoder = ChunkEncoder()
        greeting = encoder.encode(control.set_chunk_size(4096))
        encoder.set_chunk_size(4096)
        sock.sendall(b"\x03" + bytes(1536) + c0c1[1:] + greeting)
        pending = b""
        while len(pending) < 1536:
            pending += sock.recv(4096)
        decoder = ChunkDecoder()
        decoder.receive_data(pending[1536:])
        while True:
            for message in decoder.messages():
                if message.type != MessageType.COMMAND_AMF0:
                    continue
                command = commands.decode_command(message)
                seen.append(f"{command.name} {command.arguments} msid {message.message_stream_id}")
                if command.name == commands.CONNECT:
                    reply = commands.connect_result()
                elif command.name == commands.CREATE_STREAM:
                    reply = commands.result(command.transaction_id, None, 7)
                elif command.name == commands.PLAY:
                    reply = commands.on_status(play_code, message_stream_id=7)
                else:
                    continue
                sock.sendall(encoder.encode(reply))
            data = sock.recv(4096)
            if not data:
                return
            decoder.receive_data(data)


@contextlib.contextmanager
def _scripted_server(play_code: str, seen: List[str]) -> Iterator[loadgen.SessionScript]:
    listener = socket.create_server(("127.0.0.1", 0))
    thread = threading.Thread(target=_fake_player_server, args=(listener, play_code, seen),
                              daemon=True)
    thread.start()
    try:
        yield loadgen.SessionScript(loadgen.Endpoint("127.0.0.1", listener.getsockname()[1]))
    finally:
        thread.join(5)
        listener.close()


class TestLightSession:
    """The connection-rate session (loadgen.light_session) counts only complete sessions."""

    @pytest.mark.spec("RTMP 5.2", "RTMP 7.2.1.1", "RTMP 7.2.1.3", "RTMP 7.2.2.1")
    def test_a_session_with_our_server(self) -> None:
        with rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0")) as server:
            script = loadgen.SessionScript(loadgen.Endpoint(*server.address))
            assert loadgen.light_session(script, timeout=5.0) >= 1
            assert loadgen.light_session(script, timeout=5.0) >= 1

    @pytest.mark.spec("RTMP 5.2", "RTMP 7.2.1.1", "RTMP 7.2.1.3", "RTMP 7.2.2.1")
    def test_a_session_with_the_thread_floor(self) -> None:
        """The connection-rate floor (tests/bench/floor_server.py) completes the session,
        twice on one process (its thread goes back to accept()), and runs only there."""
        with harness.ThreadFloor() as server:
            script = loadgen.SessionScript(loadgen.Endpoint("127.0.0.1", server.port))
            assert loadgen.light_session(script, timeout=5.0) == 1
            assert loadgen.light_session(script, timeout=5.0) == 1
            assert server.running()
        assert "py-thread-floor" in harness.SERVERS and "py-thread-floor" in harness.FLOORS

    @pytest.mark.spec("RTMP 7.2.1.1")
    def test_a_rejected_connect_raises(self, caplog: pytest.LogCaptureFixture) -> None:
        def reject(connection: object) -> None:
            raise PermissionError("no entry")

        caplog.set_level(logging.CRITICAL, logger="rtmp")
        with rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0", on_connect=reject)) as server:
            script = loadgen.SessionScript(loadgen.Endpoint(*server.address))
            with pytest.raises(ConnectionError, match="_error NetConnection.Connect.Rejected"):
                loadgen.light_session(script, timeout=5.0)

    @pytest.mark.spec("RTMP 5.2.4", "RTMP 5.4.1", "RTMP 7.2.1.3", "RTMP 7.2.2.3")
    def test_stream_id_and_bytes_behind_the_handshake(self) -> None:
        """Set Chunk Size arrives in the handshake's write; the stream id is 7, not 1."""
        seen: List[str] = []
        with _scripted_server(commands.NETSTREAM_PLAY_START, seen) as script:
            assert loadgen.light_session(script, timeout=5.0) == 7
        assert [s.split()[0] for s in seen] == ["connect", "createStream", "play", "deleteStream"]
        assert seen[2].endswith("msid 7") and seen[3].startswith("deleteStream [7.0]")

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_play_stream_not_found_raises(self) -> None:
        with _scripted_server(commands.NETSTREAM_PLAY_STREAM_NOT_FOUND, []) as script:
            with pytest.raises(ConnectionError, match="StreamNotFound"):
                loadgen.light_session(script, timeout=5.0)


class TestSharedObjectBench:
    """bench_shared_object kept from rotting: tiny runs on our server, integrity checked."""

    @pytest.mark.spec("RTMP 7.3.2", "RTMP 7.3.2 [de-facto]")
    def test_round_trips_and_rate_with_every_last_value(self) -> None:
        from tests.bench import bench_shared_object

        with rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0")) as server:
            url = f"rtmp://127.0.0.1:{server.address[1]}/live"
            delays = bench_shared_object.round_trips(url, 5)
            assert len(delays) == 5 and all(d > 0 for d in delays)
            # Two user processes; the run fails unless both end with both last values.
            assert bench_shared_object.changes_per_second(url, 0.3, users=2) > 0


class TestRunner:
    def test_targets_say_by_how_much_they_are_missed(self) -> None:
        assert harness.check_target("ratio >= 5", 10.0, 2.0) == "yes"
        assert harness.check_target("ratio >= 5", 5.0, 2.0) == "NO: ratio 2.50, 2.0x short"
        assert harness.check_target("ratio <= 4", 12.0, 2.0) == "NO: ratio 6.00, 1.5x over"
        assert harness.check_target("< 50", 75.0, None) == "NO: 75.0, 1.5x over"
        assert harness.check_target("ratio >= 1", 1.0, None) is None

    def test_quick_run_writes_the_table_and_keeps_notes(self, tmp_path: Path) -> None:
        output = tmp_path / "benchmarks.md"
        output.write_text(f"old table\n{runner.NOTES_MARKER}\nProfile: kept.\n")
        # The AMF rows: deterministic, with a peer in-process (rtmplite3, the connection-rate
        # peer, crashes under connection churn, which would make this test about it instead).
        status = runner.main(["--quick", "--only", "amf", "--output", str(output)])
        text = output.read_text()
        assert status == 0, text
        assert "| amf | amf0 encode connect | ops/s |" in text
        assert f"- nproc: {os.cpu_count()}" in text
        assert "- cpu: " in text and "- python: " in text and "- date: " in text
        assert text.endswith(f"{runner.NOTES_MARKER}\nProfile: kept.\n")
        assert "old table" not in text

    def test_failures_and_missed_targets_show_in_the_table(self) -> None:
        rows = runner.normalise([{"name": "x", "ours": 1.0, "peer": [2.0], "target": "ratio >= 1"}],
                                "demo")
        assert rows[0]["ours"] == [1.0] and rows[0]["group"] == "demo"
        table = runner.render(rows + [{"group": "relay", "name": "bench_relay",
                                       "error": "RuntimeError: lost integrity"}])
        assert "NO: ratio 0.50, 2.0x short" in table
        assert "FAILED: RuntimeError: lost integrity" in table

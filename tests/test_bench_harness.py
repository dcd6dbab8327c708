"""The benchmark harness (tests/bench) kept from rotting: a few seconds, small file, one player.

Each server the benchmarks compare (ours, nginx-rtmp, rtmplite3) relays a small H.264 +
AAC FLV to one player of the load generator, which counts and hashes every payload; an
integrity failure fails the test.  The runner is run once in ``--quick`` mode.  No timing
is asserted anywhere: speed is for ``tox -e bench``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import socket
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

import rtmp
from rtmp import commands, control
from rtmp.chunk import ChunkDecoder, ChunkEncoder
from rtmp.message import MessageType
from tests.bench import __main__ as runner
from tests.bench import bench_relay, harness, loadgen, record
from tests.conftest import IN_CI, require_peer
from tests.hostile.harness import wait_until
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


class TestIdleBench:
    """bench_idle (issue 21's 500 idle connections) kept from rotting: a few connections."""

    @pytest.mark.spec("RTMP 5.2", "RTMP 7.2.1.1")
    @pytest.mark.parametrize("server", ["ours", pytest.param("nginx-rtmp",
                                                             marks=pytest.mark.interop)])
    def test_connections_are_made_held_and_measured(self, server: str) -> None:
        _require_server(server)
        from tests.bench import bench_idle

        figures = bench_idle.measure(server, 5)  # raises if one was closed or not made
        assert figures["peak_rss_mb"] >= figures["rss_mb"] > 0
        if server == "ours":
            assert figures["threads"] >= 5

    def test_closed_connections_are_counted(self) -> None:
        from tests.bench import bench_idle

        listener = socket.create_server(("127.0.0.1", 0))
        clients = [socket.create_connection(listener.getsockname()) for _ in range(3)]
        accepted = [listener.accept()[0] for _ in clients]
        try:
            accepted[0].sendall(b"x")  # unread data: still open
            accepted[1].close()        # closed by the server
            assert wait_until(lambda: bench_idle.open_count(clients) == 2, 5.0)
        finally:
            for sock in clients + accepted:
                sock.close()
            listener.close()

    def test_a_server_that_cuts_the_connections_fails_the_run(
            self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Our server with a session limit of 2: the third connect is refused, and the
        run raises instead of measuring fewer connections."""
        from tests.bench import bench_idle

        class Limited(harness.OurServer):
            def command(self, port: int, directory: Path) -> List[str]:
                return [*super().command(port, directory), "--max-connections", "2"]

        monkeypatch.setitem(harness.SERVERS, "ours", Limited)
        with pytest.raises(RuntimeError, match="idle connections to ours"):
            bench_idle.measure("ours", 4)


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
        # A recorded run the quick figures would regress from: --quick never compares.
        baseline = tmp_path / "recorded.json"
        record.save(baseline, record.new_record(
            [{"bench": "amf", "group": "amf", "name": "amf0 encode connect", "unit": "ops/s",
              "ours": [1e12], "peer": [1.0], "peer_name": "py3amf"}], None, "then", "x", {}))
        # The AMF rows: deterministic, with a peer in-process (rtmplite3, the connection-rate
        # peer, crashes under connection churn, which would make this test about it instead).
        status = runner.main(["--quick", "--only", "amf", "--output", str(output),
                              "--baseline", str(baseline)])
        text = output.read_text()
        assert status == 0, text
        assert not output.with_suffix(".json").exists()  # --quick records nothing
        assert "vs recorded" not in text
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


def _row(name: str, unit: str, ours: List[float], peer: Optional[List[float]] = None,
         bench: str = "demo", **extra: Any) -> Dict[str, Any]:
    paired = extra.pop("paired", None)
    out = harness.row(bench, name, unit, ours, peer=peer, peer_name="peer" if peer else "",
                      **extra)
    out["bench"] = bench
    if paired is not None:
        out["paired"] = paired
    return out


class TestTargets:
    """harness.check_target: ratio targets and plain ones (fractions, ms, MB) of issue 21."""

    def test_plain_bounds_for_fractions_sizes_and_latency(self) -> None:
        check = harness.check_target
        assert check(">= 0.999", 0.9995, None) == "yes"
        assert check(">= 0.999", 0.999, None) == "yes"
        # One decimal more than the bound: 0.9987 must not read as 0.999; percent below 10%.
        assert check(">= 0.999", 0.9987, None) == "NO: 0.9987, 0.03% short"
        assert check(">= 0.999", 0.947, None) == "NO: 0.9470, 5.5% short"
        assert check(">= 0.999", 0.5, None) == "NO: 0.5000, 2.0x short"
        assert check(">= 0.999", 0.7, None) == "NO: 0.7000, 43% short"
        assert check("< 60", 55.8, None) == "yes"
        assert check("< 60", 90.0, None) == "NO: 90.0, 1.5x over"
        assert check("< 10", 10.0, None) == "NO: 10.0, 0% over"
        assert check("< 10", 2.3, 18.8) == "yes"  # a plain target ignores the peer

    def test_ratio_targets(self) -> None:
        check = harness.check_target
        assert check("ratio <= 1.5", 0.6, 0.4) == "yes"
        assert check("ratio <= 1.5", 1.21, 0.37) == "NO: ratio 3.27, 2.2x over"
        assert check("ratio >= 0.8", 360.0, 491.0) == "NO: ratio 0.73, 9.1% short"
        assert check("ratio >= 3.8", 110157.0, 8545.0) == "yes"
        assert check("ratio >= 0.85", 1.0, 0.0) is None
        assert check("ratio >= 0.85", float("nan"), 1.0) is None
        assert check("about 3", 1.0, None) is None

    def test_directions_follow_the_unit_unless_a_row_says(self) -> None:
        for unit in ("MB/s", "ops/s", "sessions/s", "changes/s", "fraction"):
            assert harness.direction_of(unit) == "higher", unit
        for unit in ("ms", "ms/session", "s/GB", "MB"):
            assert harness.direction_of(unit) == "lower", unit
        assert harness.direction_of("widgets") == "none"
        assert record.direction(_row("x", "MB/s", [1.0], direction="none")) == "none"
        with pytest.raises(ValueError):
            harness.row("g", "x", "MB/s", [1.0], direction="up")


class TestRegressionGate:
    """tests/bench/record.py: a regression beyond noise is caught, noise is not."""

    def test_a_ratio_that_fell_beyond_noise_regressed(self) -> None:
        old = _row("relay", "MB/s", [100.0, 110.0, 105.0], [100.0, 100.0, 100.0])
        new = _row("relay", "MB/s", [60.0, 65.0, 70.0], [100.0, 100.0, 100.0])
        result = record.compare_row(new, old)
        assert result.regressed and result.what == "ratio"
        assert result.factor == pytest.approx(1.0 / 0.7)
        assert result.cell().startswith("REGRESSED 1.43x (ratio 0.6-0.7 vs recorded 1.00-1.10")

    def test_machine_load_cancels_in_the_ratio(self) -> None:
        """Both servers at half speed on a busy machine: the ratio is unchanged."""
        old = _row("relay", "MB/s", [100.0, 110.0, 105.0], [100.0, 100.0, 100.0])
        busy = _row("relay", "MB/s", [50.0, 55.0, 52.0], [50.0, 50.0, 50.0])
        assert record.compare_row(busy, old).status == "same"

    def test_a_drop_within_the_spreads_and_tolerance_is_noise(self) -> None:
        old = _row("relay", "MB/s", [100.0, 110.0, 105.0], [100.0, 100.0, 100.0])
        new = _row("relay", "MB/s", [80.0, 85.0, 90.0], [100.0, 100.0, 100.0])  # best 0.90
        assert record.compare_row(new, old).status == "same"
        # A wide recorded spread widens the noise: the new best only has to reach its worst.
        wide = _row("relay", "MB/s", [60.0, 110.0, 105.0], [100.0, 100.0, 100.0])
        low = _row("relay", "MB/s", [55.0, 52.0, 53.0], [100.0, 100.0, 100.0])
        assert record.compare_row(low, wide).status == "same"

    def test_a_row_with_a_plain_target_is_judged_on_its_own_figure(self) -> None:
        """p99 latency has a plain target (< 10 ms) and nginx-rtmp beside it: the peer's
        own swing (18.8 then 11.3 ms) does not make our steady figure a regression, and a
        real rise of ours still is one."""
        old = _row("p99", "ms", [2.23, 2.32, 2.54], [13.2, 18.8, 25.5], target="< 10")
        steady = _row("p99", "ms", [2.62, 2.98, 4.66], [10.9, 11.3, 11.9], target="< 10")
        result = record.compare_row(steady, old)
        assert result.status == "same" and result.what == "ours"
        worse = _row("p99", "ms", [4.0, 4.2, 4.5], [13.2, 18.8, 25.5], target="< 10")
        assert record.compare_row(worse, old).regressed
        # The same rows with a ratio target are judged on the ratio, as before.
        assert record.compare_row(
            _row("p99", "ms", [2.62, 2.98, 4.66], [10.9, 11.3, 11.9], target="ratio < 1"),
            _row("p99", "ms", [2.23, 2.32, 2.54], [13.2, 18.8, 25.5], target="ratio < 1"),
        ).what == "ratio"

    def test_the_direction_decides_what_is_worse(self) -> None:
        old_cpu = _row("cpu", "s/GB", [1.0, 1.1], [1.0, 1.0])
        assert record.compare_row(_row("cpu", "s/GB", [1.4, 1.5], [1.0, 1.0]), old_cpu).regressed
        assert record.compare_row(_row("cpu", "s/GB", [0.5, 0.6], [1.0, 1.0]),
                                  old_cpu).status == "improved"
        old_rate = _row("rate", "MB/s", [1.0, 1.1], [1.0, 1.0])
        assert record.compare_row(_row("rate", "MB/s", [1.4, 1.5], [1.0, 1.0]),
                                  old_rate).status == "improved"
        old_rss = _row("idle", "MB", [55.0, 56.0])
        assert record.compare_row(_row("idle", "MB", [90.0, 91.0]), old_rss).regressed
        old_fraction = _row("burst", "fraction", [0.999, 1.0])
        assert record.compare_row(_row("burst", "fraction", [0.6, 0.62]), old_fraction).regressed
        assert record.compare_row(_row("burst", "fraction", [0.95, 0.97]),
                                  old_fraction).status == "same"

    def test_raw_figures_get_twice_the_tolerance(self) -> None:
        old = _row("encode", "MB/s", [100.0, 110.0])
        assert record.compare_row(_row("encode", "MB/s", [70.0, 75.0]), old).status == "same"
        result = record.compare_row(_row("encode", "MB/s", [60.0, 65.0]), old)
        assert result.regressed and result.what == "ours"
        assert result.tolerance == pytest.approx(2 * record.TOLERANCE)
        assert record.compare_row(_row("encode", "MB/s", [60.0, 65.0]), old,
                                  tolerance=0.5).status == "same"

    def test_noisier_groups_have_their_own_tolerance(self) -> None:
        """What two full runs of the same tree gave: an AMF ratio 11.0 then 9.15 (1.2x),
        p99 latency 2.3 then 4.2 ms, shared-object changes/s 7,622 then 3,946: noise in
        those groups; twice as bad as that is still a regression."""
        amf_old = _row("encode", "ops/s", [110.0, 111.0], [10.0, 10.0], bench="amf")
        assert record.compare_row(_row("encode", "ops/s", [91.0, 92.0], [10.0, 10.0],
                                       bench="amf"), amf_old).status == "same"
        assert record.compare_row(_row("encode", "ops/s", [55.0, 56.0], [10.0, 10.0],
                                       bench="amf"), amf_old).regressed
        p99_old = _row("p99", "ms", [2.23, 2.54], bench="latency")
        assert record.compare_row(_row("p99", "ms", [3.85, 5.72], bench="latency"),
                                  p99_old).status == "same"
        assert record.compare_row(_row("p99", "ms", [5.6, 6.0], bench="latency"),
                                  p99_old).regressed
        so_old = _row("changes", "changes/s", [7430.0, 7757.0], bench="shared-object")
        assert record.compare_row(_row("changes", "changes/s", [3542.0, 4150.0],
                                       bench="shared-object"), so_old).status == "same"
        assert record.compare_row(_row("changes", "changes/s", [2000.0, 2100.0],
                                       bench="shared-object"), so_old).regressed

    def test_rows_not_judged(self) -> None:
        old = _row("generator", "MB/s", [100.0], [100.0])
        worse = _row("generator", "MB/s", [1.0], [100.0], direction="none")
        assert record.compare_row(worse, old).status == "not judged"
        assert record.compare_row(_row("x", "widgets", [1.0]), _row("x", "widgets", [9.0])
                                  ).status == "not judged"
        # A peer in one run and not in the other: ratio against raw figure, not judged.
        assert record.compare_row(_row("x", "MB/s", [1.0], [1.0]),
                                  _row("x", "MB/s", [9.0])).status == "not judged"
        assert record.compare_row(_row("x", "MB/s", [1.0]), None).status == "new"

    def test_nan_figures_and_unpaired_series(self) -> None:
        nan = float("nan")
        assert record.figures(_row("x", "MB/s", [nan, 2.0], [1.0, 1.0])) == ([2.0], "ratio")
        assert record.figures(_row("x", "MB/s", [4.0, 2.0], [1.0, 0.0])) == ([4.0], "ratio")
        # Unpaired (from a Markdown table): the widest ratio the two spreads allow.
        unpaired = _row("x", "MB/s", [2.0, 3.0, 4.0], [1.0, 2.0, 4.0], paired=False)
        assert record.figures(unpaired) == ([0.5, 4.0], "ratio")
        assert record.figures(_row("x", "MB/s", [2.0, 4.0], [1.0, 2.0, 4.0])) == ([0.5, 4.0],
                                                                                  "ratio")

    def test_missing_rows_are_listed_for_the_benchmarks_that_ran(self) -> None:
        old = [_row("a", "MB/s", [1.0], bench="relay"), _row("b", "MB/s", [1.0], bench="relay"),
               _row("c", "ops/s", [1.0], bench="amf")]
        new = [_row("a", "MB/s", [1.0], bench="relay"), _row("d", "MB/s", [1.0], bench="relay"),
               {"group": "relay", "name": "bench_relay", "error": "boom", "bench": "relay"}]
        only = record.compare(new, old, ran=["relay"])
        assert only.missing == [("relay", "b", "")]  # amf did not run: not missing
        assert only.rows[("relay", "a", "")].status == "same"
        assert only.rows[("relay", "d", "")].status == "new"
        assert ("relay", "bench_relay", "") not in only.rows and only.regressed == []
        assert record.compare(new, old).missing == [("relay", "b", ""), ("amf", "c", "")]

    def test_the_record_keeps_what_did_not_run(self) -> None:
        previous = record.new_record([_row("a", "MB/s", [1.0], bench="relay"),
                                      _row("c", "ops/s", [2.0], bench="amf"),
                                      _row("e", "ms", [3.0], bench="latency")],
                                     None, "then", "x", {})
        rows = [_row("a", "MB/s", [5.0, float("nan")], [1.0, 1.0], bench="relay"),
                {"group": "latency", "name": "bench_latency", "error": "boom",
                 "bench": "latency"}]
        made = record.new_record(rows, previous, "now", "python -m tests.bench", {"nproc": "2"})
        by_name = {r["name"]: r for r in made["rows"]}
        assert set(by_name) == {"a", "c", "e"}
        assert by_name["a"]["ours"] == [5.0, None] and by_name["a"]["written"] == "now"
        assert by_name["a"]["ratio"] == 5.0 and by_name["a"]["paired"] is True
        assert by_name["a"]["direction"] == "higher"
        assert by_name["c"]["written"] == "then" and by_name["e"]["ours"] == [3.0]

    def test_the_record_round_trips_through_json(self, tmp_path: Path) -> None:
        made = record.new_record([_row("a", "s/GB", [1.5], [1.0], target="ratio <= 1.2")],
                                 None, "now", "cmd", {"nproc": "2"})
        path = tmp_path / "b.json"
        record.save(path, made)
        assert record.load(path) == made
        assert made["rows"][0]["met"] == "NO: ratio 1.50, 25% over"
        lines = path.read_text().splitlines()
        assert [line for line in lines if '"bench": ' in line] == [  # a row a line
            "  " + json.dumps(r) for r in made["rows"]]
        assert record.load(tmp_path / "none.json") is None
        (tmp_path / "bad.json").write_text('{"rows": []}')
        with pytest.raises(ValueError):
            record.load(tmp_path / "bad.json")

    def test_a_written_table_parses_back(self) -> None:
        rows = [_row("relay, 1 player(s): MB/s delivered", "MB/s", [290.4, 360.2, 364.0],
                     [312.0, 491.0, 537.0], bench="relay", target="ratio >= 0.8"),
                _row("encode, chunk size 128", "MB/s", [609.0], bench="chunk")]
        table = runner.render(rows)
        parsed = record.parse_markdown(f"- date: 2026-12-04 16:16 UTC\n\n{table}\n")
        assert [(r["group"], r["name"]) for r in parsed] == [(r["group"], r["name"])
                                                               for r in rows]
        assert parsed[0]["ours"] == [290.0, 360.0, 364.0] and parsed[0]["paired"] is False
        assert parsed[0]["peer"] == [312.0, 491.0, 537.0] and parsed[0]["peer_name"] == "peer"
        assert parsed[0]["target"] == "ratio >= 0.8" and parsed[1]["ours"] == [609.0]
        assert record.parse_summary("FAILED: x") == [] and record.parse_summary("0.836 "
                                                                                 "(0.678-0.922)"
                                                                                 ) == [
            0.678, 0.836, 0.922]
        made = record.from_markdown(f"- date: 2026-12-04 16:16 UTC\n\n{table}\n", "t.md")
        assert made["written"] == "2026-12-04 16:16 UTC" and len(made["rows"]) == 2

    def test_the_committed_record_is_one(self) -> None:
        """refs/benchmarks.json is a record the next run can compare with: one row per
        key, each with its unit, direction and series.  (It may lag the table: a run
        that regressed writes the table but keeps the record.)"""
        recorded = record.load(runner.DEFAULT_BASELINE)
        assert recorded is not None
        keys = [record.row_key(r) for r in recorded["rows"]]
        assert len(keys) == len(set(keys)) and keys
        for row in recorded["rows"]:
            assert row["direction"] in harness.DIRECTIONS and row["ours"] and row["bench"]
            assert ("peer" in row) == ("ratio" in row)


class TestGateInTheRunner:
    """runner.finish: the exit status, the table's mark and the record, on made-up rows."""

    OLD = [_row("relay, 1 player", "MB/s", [100.0, 105.0, 110.0], [100.0, 100.0, 100.0],
                bench="relay"),
           _row("amf0 encode", "ops/s", [10.0, 11.0, 12.0], [1.0, 1.0, 1.0], bench="amf")]

    def _finish(self, tmp_path: Path, rows: List[Dict[str, Any]], *options: str,
                ran: Optional[List[str]] = None) -> int:
        baseline = tmp_path / "recorded.json"
        if not baseline.exists():
            record.save(baseline, record.new_record(self.OLD, None, "then", "x", {}))
        args = runner.parse_args(["--output", str(tmp_path / "b.md"), "--baseline",
                                  str(baseline), *options])
        return runner.finish(rows, args, 1.0, False, ran or ["relay"], info={"date": "now"})

    def test_a_regression_fails_the_run_and_keeps_the_record(
            self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        worse = [_row("relay, 1 player", "MB/s", [60.0, 62.0, 61.0], [100.0, 100.0, 100.0],
                      bench="relay")]
        assert self._finish(tmp_path, worse, "--only", "relay") == 1
        text = (tmp_path / "b.md").read_text()
        assert "| vs recorded |" in text and "REGRESSED 1.61x" in text
        assert "compared with the recorded run: recorded.json of then: 1 regressed" in text
        assert "REGRESSED: relay / relay, 1 player / peer" in capsys.readouterr().err
        assert not (tmp_path / "b.json").exists()
        # Accepted on purpose: --no-compare records it.
        assert self._finish(tmp_path, worse, "--no-compare") == 0
        made = record.load(tmp_path / "b.json")
        assert made is not None and {r["name"]: r["ours"] for r in made["rows"]} == {
            "relay, 1 player": [60.0, 62.0, 61.0], "amf0 encode": [10.0, 11.0, 12.0]}

    def test_noise_passes_and_an_only_run_replaces_only_its_rows(self, tmp_path: Path) -> None:
        same = [_row("relay, 1 player", "MB/s", [95.0, 96.0, 99.0], [100.0, 100.0, 100.0],
                     bench="relay")]
        assert self._finish(tmp_path, same) == 0
        assert "| within noise |" in (tmp_path / "b.md").read_text()
        made = record.load(tmp_path / "b.json")
        assert made is not None and [r["name"] for r in made["rows"]] == ["amf0 encode",
                                                                          "relay, 1 player"]

    def test_a_missing_row_is_listed_not_failed(
            self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        other = [_row("relay, 10 players", "MB/s", [1.0], [1.0], bench="relay")]
        assert self._finish(tmp_path, other) == 0
        err = capsys.readouterr().err
        assert "recorded but not made by this run: relay / relay, 1 player / peer" in err
        assert "amf0" not in err  # amf did not run

    def test_no_record_yet_and_an_unreadable_one(self, tmp_path: Path) -> None:
        rows = [_row("relay, 1 player", "MB/s", [1.0], [1.0], bench="relay")]
        args = runner.parse_args(["--output", str(tmp_path / "b.md"), "--baseline",
                                  str(tmp_path / "none.json")])
        assert runner.finish(rows, args, 1.0, False, ["relay"], info={"date": "now"}) == 0
        assert (tmp_path / "b.json").exists()
        (tmp_path / "bad.json").write_text("not json")
        args = runner.parse_args(["--output", str(tmp_path / "c.md"), "--baseline",
                                  str(tmp_path / "bad.json")])
        assert runner.finish(rows, args, 1.0, False, ["relay"], info={"date": "now"}) == 1
        assert not (tmp_path / "c.json").exists()

    def test_quick_never_compares(self, tmp_path: Path) -> None:
        worse = [_row("relay, 1 player", "MB/s", [1.0], [100.0], bench="relay")]
        assert self._finish(tmp_path, worse, "--quick") == 0
        assert "vs recorded" not in (tmp_path / "b.md").read_text()
        assert not (tmp_path / "b.json").exists()

"""rtmp.server: the command set, lifecycle, limits and published messages.

The server is tested over real loopback sockets with our own
:class:`rtmp.transport.Transport` speaking the client side.  The stream hub it drives
(rtmp.streams) is tested on its own in ``tests/test_streams.py``.
Interop with ffmpeg, rtmpdump and GStreamer lives in ``tests/interop/test_server_*.py``.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any, Iterator, List, NamedTuple, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtmp.message import Message, MessageType
from rtmp.streams import (
    StreamHub,
)
from tests.test_streams import (
    AAC_FRAME,
    AAC_HEADER,
    AVC_HEADER,
    AVC_INTER,
    AVC_KEY,
    audio,
    video,
    wait_for,
)

# --------------------------------------------------------------------------------------
# rtmp.Server over loopback, with our client on the other end.
# --------------------------------------------------------------------------------------

from rtmp import (  # noqa: E402
    Client,
    ClientConfig,
    CommandError,
    ConnectionClosedError,
    ConnectionState,
    RTMPError,
    Server,
    ServerConfig,
    StreamType,
    commands,
)


def rtmp_threads() -> List[str]:
    return [t.name for t in threading.enumerate()
            if t.name.startswith(("rtmp-conn-", "rtmp-spare", "rtmp-play-", "rtmp-vod-"))]


def url_of(server: Server, path: str = "live/key") -> str:
    host, port = server.address
    return f"rtmp://{host}:{port}/{path}"


class TestLifecycle:
    """start / serve_forever / stop, threads, connections (socketserver semantics)."""

    def test_stop_ends_every_session_and_joins_threads(self) -> None:
        seen: List[Tuple[str, str]] = []
        gone: List[str] = []
        config = ServerConfig(
            addr="127.0.0.1:0",
            on_connect=lambda c: seen.append((c.id, threading.current_thread().name)),
            on_disconnect=lambda c: gone.append(c.id),
        )
        server = Server(config)
        runner = threading.Thread(target=server.serve_forever, name="test-serve-forever")
        runner.start()
        assert wait_for(lambda: server._address is not None)
        clients = [Client() for _ in range(3)]
        try:
            clients[0].connect(url_of(server))
            clients[0].publish("key")
            clients[1].connect(url_of(server))
            clients[1].play("key")
            clients[2].connect(url_of(server))
            assert wait_for(lambda: server.connection_count == 3)
            states = {c.state for c in server.connections}
            assert states == {ConnectionState.PUBLISHING, ConnectionState.PLAYING,
                              ConnectionState.CONNECTED}
            # One thread per connection, named after the connection id.
            assert all(name == f"rtmp-conn-{conn_id}" for conn_id, name in seen)
            assert len({conn_id for conn_id, _ in seen}) == 3
            started = time.monotonic()
            server.stop(timeout=10)
            assert time.monotonic() - started < 5
            runner.join(5)
            assert not runner.is_alive()  # serve_forever returned
            assert rtmp_threads() == []
            assert sorted(gone) == sorted(conn_id for conn_id, _ in seen)
            assert server.connection_count == 0
        finally:
            for client in clients:
                try:
                    client.close()
                except ConnectionClosedError:
                    # The publisher's server stopped under it: close() cannot confirm that
                    # the stream arrived whole, and says so (issue 22).
                    assert client is clients[0]
            server.stop()

    def test_connection_threads_are_reused(self) -> None:
        """Sequential sessions run on a few threads that wait in accept() between clients
        (leader/follower), not on a new thread each; spares are bounded and joined by stop()."""
        from rtmp.server import MAX_SPARE_THREADS

        threads: List[threading.Thread] = []
        config = ServerConfig(addr="127.0.0.1:0",
                              on_connect=lambda c: threads.append(threading.current_thread()))
        with Server(config) as server:
            for _ in range(20):
                with Client() as client:
                    client.connect(url_of(server))
            assert wait_for(lambda: server.connection_count == 0)
            assert len(threads) == 20
            assert len(set(threads)) <= MAX_SPARE_THREADS + 1, len(set(threads))
            spares = [t for t in threading.enumerate() if t.name == "rtmp-spare"]
            assert 1 <= len(spares) <= MAX_SPARE_THREADS
        assert rtmp_threads() == []
        assert not any(t.is_alive() for t in threads)

    def test_concurrent_sessions_each_have_their_own_thread(self) -> None:
        """Thread per connection: clients that stay connected hold a thread each, named after
        the connection, and a spare still waits for the next client."""
        seen: List[Tuple[str, threading.Thread]] = []
        config = ServerConfig(addr="127.0.0.1:0",
                              on_connect=lambda c: seen.append((c.id, threading.current_thread())))
        with Server(config) as server:
            clients = [Client() for _ in range(8)]
            try:
                for client in clients:
                    client.connect(url_of(server))
                assert server.connection_count == 8
                assert len({thread for _, thread in seen}) == 8
                assert all(thread.name == f"rtmp-conn-{conn_id}" for conn_id, thread in seen)
                assert wait_for(lambda: any(t.name == "rtmp-spare" for t in threading.enumerate()))
                with Client() as late:  # the spare takes the ninth at once
                    late.connect(url_of(server))
            finally:
                for client in clients:
                    client.close()
        assert rtmp_threads() == []

    def test_context_manager_and_address(self) -> None:
        with Server(ServerConfig(addr="127.0.0.1:0")) as server:
            host, port = server.address
            assert host == "127.0.0.1" and port > 0
            with socket.create_connection((host, port), timeout=5):
                pass
        assert rtmp_threads() == []
        with pytest.raises(OSError):
            socket.create_connection((host, port), timeout=1).close()

    @pytest.mark.skipif(not socket.has_dualstack_ipv6(), reason="no dual-stack IPv6 here")
    def test_empty_host_listens_on_ipv4_and_ipv6(self) -> None:
        with Server(ServerConfig(addr=":0")) as server:
            port = server.address[1]
            for url in (f"rtmp://127.0.0.1:{port}/live", f"rtmp://[::1]:{port}/live"):
                with Client() as client:
                    client.connect(url)

    def test_config_validation(self) -> None:
        with pytest.raises(ValueError):
            ServerConfig(addr="nonsense")
        with pytest.raises(ValueError):
            ServerConfig(require_auth=True)
        with pytest.raises(ValueError):
            ServerConfig(chunk_size=0)
        with pytest.raises(ValueError):
            ServerConfig(max_chunk_size=0x80000000)
        with pytest.raises(ValueError):
            ServerConfig(max_pending_bytes=0)

    @pytest.mark.spec("RTMP 5.2")
    def test_garbage_peer_does_not_hurt_the_server(self) -> None:
        with Server(ServerConfig(addr="127.0.0.1:0", handshake_timeout=2)) as server:
            with socket.create_connection(server.address, timeout=5) as raw:
                raw.sendall(b"GET / HTTP/1.1\r\n\r\n" + b"\x00" * 3000)
                raw.settimeout(5)
                try:
                    while raw.recv(65536):
                        pass
                except OSError:
                    pass
            with Client() as client:  # still serving
                client.connect(url_of(server))


class TestSessionLog:
    """What a session logs: at INFO one line at connect, one per play/publish, one at close
    (each record costs about as much CPU as a command: issue 21); every line carries
    the connection id."""

    @pytest.mark.spec("RTMP 7.2.1.1", "RTMP 7.2.2.1")
    def test_a_play_session_logs_three_info_lines_with_its_id(
            self, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.DEBUG, logger="rtmp.server")
        with Server(ServerConfig(addr="127.0.0.1:0")) as server:
            with Client() as client:
                client.connect(url_of(server))
                client.play("key")
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not any(
                    "closed:" in r.getMessage() for r in list(caplog.records)):
                time.sleep(0.02)
        lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "rtmp.server"]
        ids = {text[1:text.index("]")] for _, text in lines if text.startswith("[")}
        assert len(ids) == 1, lines
        conn_id = ids.pop()
        mine = [(level, text) for level, text in lines if text.startswith(f"[{conn_id}] ")]
        info = [text[len(conn_id) + 3:] for level, text in mine if level >= logging.INFO]
        assert len(info) == 3, info
        assert info[0].startswith("connected from ('127.0.0.1', ") and "app='live'" in info[0]
        assert info[1] == "playing live live/key (waiting for a publisher)"
        assert info[2].startswith("closed: client closed the connection (('127.0.0.1', ")
        assert "bytes in" in info[2]
        assert any("accepted from" in text for level, text in mine if level == logging.DEBUG)

    @pytest.mark.spec("RTMP 5.2.5")
    def test_a_failed_handshake_logs_its_address_when_closed(
            self, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.INFO, logger="rtmp.server")
        with Server(ServerConfig(addr="127.0.0.1:0")) as server:
            with socket.create_connection(server.address) as sock:
                sock.sendall(b"\x03" + bytes(100))  # C0 and part of C1, then EOF
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not any(
                    "closed:" in r.getMessage() for r in list(caplog.records)):
                time.sleep(0.02)
        closed = [r.getMessage() for r in caplog.records if "closed:" in r.getMessage()]
        assert len(closed) == 1 and "during the handshake" in closed[0], closed
        assert "('127.0.0.1', " in closed[0]
        assert server.stats.handshake_failures == 1


class TestConnect:
    """RTMP 7.2.1.1: the connect sequence, objectEncoding, rejection."""

    @pytest.mark.spec("RTMP 7.2.1.1", "RTMP 5.4.1", "RTMP 5.4.4")
    def test_connect_reply(self) -> None:
        config = ServerConfig(addr="127.0.0.1:0", chunk_size=8192, window_ack_size=1_000_000)
        with Server(config) as server, Client() as client:
            client.connect(url_of(server))
            transport = client.transport
            assert transport is not None
            assert transport.in_chunk_size == 8192  # Set Chunk Size arrived
            assert transport.session.ack_window == 1_000_000  # Window Acknowledgement Size
            # Set Peer Bandwidth goes out with limit type 2 (dynamic) as nginx-rtmp and
            # ffmpeg send it; RTMP 5.4.5 has a first dynamic limit ignored, so the client
            # records none.
            assert transport.session.peer_bandwidth is None
            assert client.server_properties["fmsVer"].startswith("FMS/")
            assert client.server_info["code"] == commands.NETCONNECTION_CONNECT_SUCCESS
            assert client.server_info["objectEncoding"] == 0
            conn = server.connections[0]
            assert conn.app == "live" and conn.connect_params["tcUrl"].endswith("/live")

    @pytest.mark.spec("RTMP 7.2.1.1", "AMF3 1")
    def test_amf3_object_encoding_is_echoed(self) -> None:
        with Server(ServerConfig(addr="127.0.0.1:0")) as server:
            with Client(ClientConfig(object_encoding=3)) as client:
                client.connect(url_of(server))
                assert client.server_info["objectEncoding"] == 3
                assert client.object_encoding == 3
                assert client.create_stream() == 1  # AMF3 commands (type 17) work too
                client.publish("key")
            assert server.connections == [] or wait_for(lambda: server.connection_count == 0)

    @pytest.mark.spec("RTMP 7.2.1.1")
    def test_max_connections_refuses_the_next_client(self) -> None:
        with Server(ServerConfig(addr="127.0.0.1:0", max_connections=1)) as server:
            with Client() as first:
                first.connect(url_of(server))
                with Client() as second, pytest.raises(CommandError) as refused:
                    second.connect(url_of(server))
                assert refused.value.code == commands.NETCONNECTION_CONNECT_REJECTED
                assert "max_connections" in refused.value.description
                assert server.stats.rejected_max_connections == 1
                assert first.create_stream() == 1  # the first one is unaffected
                assert server.connection_count == 1
            assert wait_for(lambda: server.connection_count == 0)
            # The refusals are counted, not walked, at each accept: the count is back to 0.
            assert wait_for(lambda: server._refusing == 0 and not server._connections)
            with Client() as third:  # a free slot again
                third.connect(url_of(server))

    @pytest.mark.spec("RTMP 7.2.1.1")
    def test_on_connect_exception_rejects_with_its_text(self) -> None:
        calls: List[str] = []

        def on_connect(conn):  # type: ignore[no-untyped-def]
            calls.append(conn.app)
            if conn.app == "private":
                raise PermissionError("app private is closed")

        with Server(ServerConfig(addr="127.0.0.1:0", on_connect=on_connect)) as server:
            with Client() as client, pytest.raises(CommandError) as refused:
                client.connect(url_of(server, "private/x"))
            assert refused.value.code == commands.NETCONNECTION_CONNECT_REJECTED
            assert refused.value.description == "app private is closed"
            with Client() as client:
                client.connect(url_of(server, "public/x"))
        assert calls == ["private", "public"]


class TestCommands:
    """RTMP 7.2.1.3 createStream, 7.2.2.3 deleteStream, callbacks and unknown calls."""

    @pytest.mark.spec("RTMP 7.2.1.3", "RTMP 7.2.2.3")
    def test_stream_ids(self) -> None:
        with Server(ServerConfig(addr="127.0.0.1:0")) as server, Client() as client:
            client.connect(url_of(server))
            assert client.create_stream() == 1
            assert client.create_stream() == 2
            client.delete_stream(1)
            assert client.create_stream() == 1  # freed ids are handed out again

    @pytest.mark.spec("RTMP 7.2.1.3")
    @pytest.mark.parametrize("encoding", [commands.AMF0, commands.AMF3])
    def test_create_stream_result_is_encoded_once_and_right(self, encoding: int) -> None:
        """createStream's _result is cached per (transaction id, stream id, stream it was
        asked on, encoding): the same message as a fresh encode, every time."""
        from rtmp.netconnection import _stream_created

        for txn in (2.0, 3.0, 17.0, 2.5, 2.0):
            for msid in (1, 2, 64):
                cached = _stream_created(txn, msid, 0, encoding)
                fresh = commands.result(txn, None, msid, object_encoding=encoding)
                assert cached == fresh
                assert commands.decode_command(cached).arguments == [msid]
                assert commands.decode_command(cached).transaction_id == txn

    @pytest.mark.spec("RTMP 7.2.1.2")
    def test_unknown_call_without_on_message(self) -> None:
        with Server(ServerConfig(addr="127.0.0.1:0")) as server, Client() as client:
            client.connect(url_of(server))
            with pytest.raises(CommandError) as failed:
                client.call("fooBar", 42)
            assert failed.value.code == commands.NETCONNECTION_CALL_FAILED
            conn = server.connections[0]
            msg = conn.read_message(timeout=5)  # the application may still look at it
            cmd = commands.decode_command(msg)
            assert (cmd.name, cmd.arguments) == ("fooBar", [42])

    @pytest.mark.spec("RTMP 7.2.1.2")
    def test_unknown_call_answered_by_on_message(self) -> None:
        def on_message(conn, msg):  # type: ignore[no-untyped-def]
            cmd = commands.decode_command(msg)
            if cmd.name == "fail":
                raise RuntimeError("no such luck")
            conn.write_message(commands.result(cmd.transaction_id, None, cmd.arguments[0] * 2))

        with Server(ServerConfig(addr="127.0.0.1:0", on_message=on_message)) as server:
            with Client() as client:
                client.connect(url_of(server))
                assert client.call("double", 21) == 42
                with pytest.raises(CommandError) as failed:
                    client.call("fail")
                assert failed.value.description == "no such luck"
                assert client.call("double", 1) == 2  # the session carries on

    @pytest.mark.spec("RTMP 7.2.2.6")
    def test_on_publish_exception_is_bad_name(self) -> None:
        def on_publish(conn, name, kind):  # type: ignore[no-untyped-def]
            if name != "allowed":
                raise ValueError(f"stream key {name} is not valid")

        with Server(ServerConfig(addr="127.0.0.1:0", on_publish=on_publish)) as server:
            with Client() as client:
                client.connect(url_of(server))
                with pytest.raises(CommandError) as refused:
                    client.publish("other")
                assert refused.value.code == commands.NETSTREAM_PUBLISH_BAD_NAME
                assert refused.value.description == "stream key other is not valid"
                client.publish("allowed")  # the same connection may try again

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_on_play_exception_is_play_failed(self) -> None:
        def on_play(conn, name):  # type: ignore[no-untyped-def]
            raise LookupError("nothing to see")

        with Server(ServerConfig(addr="127.0.0.1:0", on_play=on_play)) as server:
            with Client() as client:
                client.connect(url_of(server))
                with pytest.raises(CommandError) as refused:
                    client.play("key")
                assert refused.value.code == commands.NETSTREAM_PLAY_FAILED
                assert refused.value.description == "nothing to see"

    @pytest.mark.spec("RTMP 7.2.2.3", "RTMP 7.2.2.7", "RTMP 7.2.2.8")
    @pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
    def test_non_finite_numbers_are_ignored(self, value: float,
                                            caplog: pytest.LogCaptureFixture) -> None:
        """AMF0 2.2: a Number may be Infinity or NaN; as an id or a time it means nothing."""
        with Server(ServerConfig(addr="127.0.0.1:0")) as server, Client() as client:
            client.connect(url_of(server))
            msid = client.create_stream()
            with caplog.at_level("ERROR", logger="rtmp"):
                for name, args in (("seek", [value]), ("pause", [True, value]),
                                   ("play", ["key", value, value]), ("deleteStream", [value])):
                    client.write_message(commands.encode_command(
                        name, 0, None, *args, message_stream_id=msid))
                # The session carries on: the next call is answered (deleteStream fell
                # back to the stream it was sent on, so its id is free again).
                assert client.create_stream() == msid
            assert server.stats.errors == 0
            assert not [r for r in caplog.records if r.levelname == "ERROR"]

    @pytest.mark.spec("RTMP 7.1.7")
    def test_set_buffer_length_is_kept_and_a_short_one_is_a_protocol_error(self) -> None:
        from rtmp import user_control

        with Server(ServerConfig(addr="127.0.0.1:0")) as server, Client() as client:
            client.connect(url_of(server))
            msid = client.create_stream()
            client.write_message(user_control.set_buffer_length(msid, 3000))
            client.write_message(user_control.set_buffer_length(msid + 7, 100))  # no such stream
            assert client.create_stream() == msid + 1  # both handled before this reply
            conn = server.connections[0]
            assert conn.streams[msid].buffer_ms == 3000
            assert msid + 7 not in conn.streams
            client.write_message(user_control.encode(
                user_control.UserControlEvent.SET_BUFFER_LENGTH, bytes(4)))  # 4 of 8 bytes
            deadline = time.monotonic() + 5
            while server.stats.protocol_errors == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert server.stats.protocol_errors == 1

    @pytest.mark.spec("RTMP 7.2.2.6")
    def test_record_needs_record_dir_and_stays_inside_it(self, tmp_path) -> None:  # type: ignore[no-untyped-def]
        with Server(ServerConfig(addr="127.0.0.1:0")) as server, Client() as client:
            client.connect(url_of(server))
            with pytest.raises(CommandError) as refused:
                client.publish("key", StreamType.RECORD)
            assert refused.value.code == commands.NETSTREAM_RECORD_FAILED
        inside = tmp_path / "rec"
        config = ServerConfig(addr="127.0.0.1:0", record_dir=inside)
        with Server(config) as server, Client() as client:
            client.connect(url_of(server))
            with pytest.raises(CommandError) as escaped:
                client.publish("../../escape", StreamType.RECORD)
            assert escaped.value.code == commands.NETSTREAM_RECORD_FAILED
            client.publish("fine", StreamType.RECORD)
        assert not list(tmp_path.glob("escape*")) and not list(tmp_path.parent.glob("escape*"))
        assert (inside / "live" / "fine.flv").is_file()


def next_media(client: Client, timeout: float = 5.0) -> Message:
    """The next audio or video message the client reads (others are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        msg = client.read_message(timeout=max(0.05, deadline - time.monotonic()))
        if msg.type in (MessageType.AUDIO, MessageType.VIDEO):
            return msg


class LivePair(NamedTuple):
    server: Server
    publisher: Client
    player: Client


@pytest.fixture
def live_pair() -> Iterator[LivePair]:
    """A server, a client publishing ``key`` on it and a connected one (to play it)."""
    with Server(ServerConfig(addr="127.0.0.1:0")) as server:
        publisher, player = Client(), Client()
        try:
            publisher.connect(url_of(server))
            publisher.publish("key")
            player.connect(url_of(server))
            yield LivePair(server, publisher, player)
        finally:
            publisher.close()
            player.close()


def next_status(client: Client, timeout: float = 5.0) -> Tuple[str, dict]:  # type: ignore[type-arg]
    """The next onStatus/_error the client passes on: (name, info)."""
    deadline = time.monotonic() + timeout
    while True:
        msg = client.read_message(timeout=max(0.01, deadline - time.monotonic()))
        if msg.type in (MessageType.COMMAND_AMF0, MessageType.COMMAND_AMF3):
            cmd = commands.decode_command(msg)
            if cmd.name in (commands.ON_STATUS, commands.ERROR):
                return cmd.name, cmd.info or {}


class TestStreamCommands:
    """RTMP 7.2.2.2 play2, 7.2.2.4/5 receiveAudio/Video, 7.2.2.7 seek on live, closeStream."""

    @pytest.mark.spec("RTMP 7.2.2.4", "RTMP 7.2.2.5")
    def test_receive_video_false_filters_video(self, live_pair: LivePair) -> None:
        server, publisher, player = live_pair
        player.play("key")
        player.receive_video(False)
        player.receive_audio(True, wait=True)  # answered: Seek.Notify + Play.Start
        stream = server.hub.get("live", "key")
        assert stream is not None
        assert wait_for(lambda: all(not p.receive_video for p in stream.snapshot_players()))
        publisher.send_video(AVC_KEY, 0)
        publisher.send_audio(AAC_FRAME, 10)
        assert next_media(player).type == MessageType.AUDIO

    @pytest.mark.spec("RTMP 7.2.2.7")
    def test_seek_on_live_is_an_error(self, live_pair: LivePair) -> None:
        player = live_pair.player
        player.play("key")
        stream_id = player.stream_id
        assert stream_id is not None
        player.write_message(commands.seek(1000, stream_id))
        name, info = next_status(player)
        assert (name, info["code"]) == (commands.ERROR, commands.NETSTREAM_SEEK_FAILED)

    @pytest.mark.spec("RTMP 7.2.2.2")
    def test_play2_switches_stream(self, live_pair: LivePair) -> None:
        server, publisher, player = live_pair
        other = Client()
        try:
            other.connect(url_of(server))
            other.publish("other")
            player.play("key")
            stream_id = player.stream_id
            assert stream_id is not None
            player.write_message(commands.encode_command(
                commands.PLAY2, 0, None, {"streamName": "other", "transition": "switch"},
                message_stream_id=stream_id))
            codes = [next_status(player)[1]["code"] for _ in range(2)]
            assert codes == [commands.NETSTREAM_PLAY_RESET, commands.NETSTREAM_PLAY_START]
            assert wait_for(lambda: player_names(server) == {"other"})
            other.send_video(AVC_KEY, 0)
            assert next_media(player).data == AVC_KEY
        finally:
            other.close()

    @pytest.mark.spec("RTMP 7.2.2")
    def test_close_stream_stops_playing_but_keeps_the_id(self, live_pair: LivePair) -> None:
        server, publisher, player = live_pair
        player.play("key")
        assert wait_for(lambda: player_names(server) == {"key"})
        player.close_stream()
        assert wait_for(lambda: player_names(server) == set())
        assert wait_for(lambda: sorted(c.state.value for c in server.connections)
                        == ["connected", "publishing"])
        assert player.create_stream() == 2  # stream 1 is still allocated


class TestPlayStartOrder:
    """RTMP 7.2.2.1: a player that has Play.Start is subscribed: nothing published later is lost."""

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_frame_published_right_after_play_start_arrives(
        self, live_pair: LivePair, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Slow subscription down: a server that sends Play.Start before subscribing
        # then loses the frame published right after Play.Start, every time.
        subscribe = StreamHub.subscribe

        def slow_subscribe(self: StreamHub, *args: Any, **kwargs: Any) -> Any:
            time.sleep(0.3)
            return subscribe(self, *args, **kwargs)

        monkeypatch.setattr(StreamHub, "subscribe", slow_subscribe)
        _, publisher, player = live_pair
        player.play("key")
        publisher.send_audio(AAC_FRAME, 40)
        msg = next_media(player)
        assert (msg.type, msg.data, msg.timestamp) == (MessageType.AUDIO, AAC_FRAME, 40)

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_statuses_come_before_the_cached_gop(self, live_pair: LivePair) -> None:
        server, publisher, player = live_pair
        publisher.send_video(AVC_HEADER, 0)
        publisher.send_video(AVC_KEY, 0)
        stream = server.hub.get("live", "key")
        assert stream is not None
        assert wait_for(lambda: stream.gop_length == 1)
        stream_id = player.create_stream()
        player.write_message(commands.play("key", stream_id, -2000, -1, True))
        seen: List[str] = []
        while "video" not in seen or "NetStream.Play.Start" not in seen:
            msg = player.read_message(timeout=5)
            if msg.type == MessageType.VIDEO:
                seen.append("video")
            elif msg.type in (MessageType.COMMAND_AMF0, MessageType.COMMAND_AMF3):
                seen.append(commands.decode_command(msg).arguments[-1]["code"])
        assert seen.index("NetStream.Play.Start") < seen.index("video")
        assert seen[0] == "NetStream.Play.Reset"

    @pytest.mark.spec("RTMP 7.2.2.1", "RTMP 7.1.2")
    def test_waiting_player_gets_everything_of_a_later_publisher(self) -> None:
        """play (start -2) before anyone publishes; the publisher comes 1 s later."""
        with Server(ServerConfig(addr="127.0.0.1:0")) as server:
            publisher, player = Client(), Client()
            try:
                player.connect(url_of(server))
                player.play("key")
                time.sleep(1.0)
                publisher.connect(url_of(server))
                publisher.publish("key")
                publisher.send_metadata({"width": 320.0})
                publisher.send_video(AVC_HEADER, 0)
                publisher.send_audio(AAC_HEADER, 0)
                publisher.send_video(AVC_KEY, 0)
                publisher.send_audio(AAC_FRAME, 10)
                got: List[Tuple[int, bytes]] = []
                while len(got) < 5:
                    msg = player.read_message(timeout=5)
                    if msg.type == MessageType.DATA_AMF0 and \
                            commands.decode_data(msg)[0] == "|RtmpSampleAccess":
                        continue  # part of the play replies
                    if msg.type in (MessageType.AUDIO, MessageType.VIDEO, MessageType.DATA_AMF0):
                        got.append((msg.type, msg.data))
                    elif msg.type == MessageType.COMMAND_AMF0:
                        assert commands.decode_command(msg).arguments[-1]["code"] == \
                            commands.NETSTREAM_PLAY_PUBLISH_NOTIFY
                assert commands.decode_data(Message(type=MessageType.DATA_AMF0, data=got[0][1])) \
                    == [commands.ON_METADATA, {"width": 320.0}]
                assert got[1:] == [(MessageType.VIDEO, AVC_HEADER), (MessageType.AUDIO, AAC_HEADER),
                                   (MessageType.VIDEO, AVC_KEY), (MessageType.AUDIO, AAC_FRAME)]
            finally:
                publisher.close()
                player.close()

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_five_players_each_get_the_next_frame(self) -> None:
        """The probe's ``play.immediate`` check, without the injected delay."""
        with Server(ServerConfig(addr="127.0.0.1:0")) as server:
            publisher = Client()
            try:
                publisher.connect(url_of(server))
                publisher.publish("key")
                for n in range(5):
                    with Client() as player:
                        player.connect(url_of(server))
                        player.play("key")
                        frame = AAC_FRAME + bytes((n,))
                        publisher.send_audio(frame, 100 + n)
                        assert next_media(player).data == frame
            finally:
                publisher.close()


def player_names(server: Server) -> set:  # type: ignore[type-arg]
    return {s.name for s in server.hub.streams() if s.snapshot_players()}


class TestPublishedMessages:
    """RTMP 7.1.2 data messages and RTMP 7.1.6 aggregates from a publisher."""

    @pytest.mark.spec("RTMP 7.1.6")
    def test_aggregate_is_split_for_players(self) -> None:
        from rtmp.message import build_aggregate

        with Server(ServerConfig(addr="127.0.0.1:0")) as server:
            with Client() as publisher, Client(ClientConfig(split_aggregates=False)) as player:
                publisher.connect(url_of(server))
                publisher.publish("key")
                player.connect(url_of(server))
                player.play("key")
                parts = [video(AVC_KEY, 100), audio(AAC_FRAME, 110), video(AVC_INTER, 140)]
                publisher.write_message(build_aggregate(parts, publisher.stream_id or 1))
                got: List[Message] = []
                while len(got) < 3:
                    msg = player.read_message(timeout=5)
                    if msg.type in (MessageType.AUDIO, MessageType.VIDEO, MessageType.AGGREGATE):
                        got.append(msg)
                assert [(m.type, m.timestamp, m.data) for m in got] == [
                    (p.type, p.timestamp, p.data) for p in parts]

    @pytest.mark.spec("RTMP 7.1.2")
    def test_amf3_set_data_frame_and_clear(self) -> None:
        with Server(ServerConfig(addr="127.0.0.1:0")) as server:
            with Client() as publisher:
                publisher.connect(url_of(server))
                publisher.publish("key")
                msid = publisher.stream_id or 1
                publisher.write_message(commands.encode_data(
                    commands.SET_DATA_FRAME, commands.ON_METADATA, {"width": 640.0},
                    message_stream_id=msid, object_encoding=3))
                stream = server.hub.get("live", "key")
                assert stream is not None
                assert wait_for(lambda: stream.metadata is not None)
                assert stream.metadata is not None
                values = commands.decode_data(stream.metadata)
                assert values == [commands.ON_METADATA, {"width": 640.0}]
                publisher.write_message(commands.encode_data(
                    commands.CLEAR_DATA_FRAME, message_stream_id=msid))
                assert wait_for(lambda: stream.metadata is None)

    @pytest.mark.spec("RTMP 7.1.6")
    @pytest.mark.parametrize("strict", [False, True])
    def test_control_inside_an_aggregate_is_not_relayed(self, strict: bool) -> None:
        from rtmp.message import build_aggregate

        relayed: List[int] = []
        config = ServerConfig(addr="127.0.0.1:0", strict=strict,
                              on_message=lambda c, m: relayed.append(m.type))
        with Server(config) as server, Client() as publisher:
            publisher.connect(url_of(server))
            publisher.publish("key")
            msid = publisher.stream_id or 1
            parts = [Message(type=MessageType.SET_CHUNK_SIZE, data=b"\x00\x00\x00\x01",
                             message_stream_id=msid), video(AVC_KEY, 0, msid)]
            try:
                publisher.write_message(build_aggregate(parts, msid))
            except RTMPError:  # the client reads while it writes: it may see the end
                assert strict
            if strict:  # the session ends at the Set Chunk Size; nothing was relayed
                assert wait_for(lambda: server.connection_count == 0)
                assert relayed == []
            else:  # the video is relayed, the Set Chunk Size is not
                assert wait_for(lambda: relayed == [MessageType.VIDEO])
                assert publisher.create_stream() == 2
                stream = server.hub.get("live", "key")
                assert stream is not None and stream.messages_in == 1

    @pytest.mark.parametrize("strict", [False, True])
    def test_media_on_stream_zero_is_tolerated_unless_strict(self, strict: bool) -> None:
        received: List[int] = []
        config = ServerConfig(addr="127.0.0.1:0", strict=strict,
                              on_message=lambda c, m: received.append(m.message_stream_id))
        with Server(config) as server, Client() as publisher:
            publisher.connect(url_of(server))
            publisher.publish("key")
            publisher.write_message(video(AVC_KEY, 0, msid=0))
            assert wait_for(lambda: len(received) == 1)
            stream = server.hub.get("live", "key")
            assert stream is not None
            # Lenient: relayed on the publishing stream.  Strict: not relayed at all.
            assert stream.messages_in == (0 if strict else 1)


class TestLimits:
    """Connection limits and timeouts."""

    @pytest.mark.spec("RTMP 7.2.1.1")
    def test_max_connections_per_ip(self) -> None:
        config = ServerConfig(addr="127.0.0.1:0", max_connections_per_ip=2)
        with Server(config) as server:
            first, second, third = Client(), Client(), Client()
            try:
                first.connect(url_of(server))
                second.connect(url_of(server))
                with pytest.raises(CommandError) as refused:
                    third.connect(url_of(server))
                assert "max_connections_per_ip" in refused.value.description
            finally:
                for client in (first, second, third):
                    client.close()

    @pytest.mark.spec("RTMP 7.2.1.1")
    def test_refusal_lingers_on_descriptors_above_1023(self) -> None:
        """The polite refusal waits for the client to close, whatever its socket number
        (select() fails past 1023; the session must not cut the linger short)."""
        import resource

        from rtmp.transport import Transport, open_connection

        if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 1200:
            pytest.skip("RLIMIT_NOFILE below 1200")
        ballast: List[socket.socket] = []
        try:
            # Every descriptor up to 1030 taken first: then the listener, the descriptor that
            # a thread waiting in accept() reserves, and the accepted sockets lie above.
            while not ballast or ballast[-1].fileno() <= 1030:
                ballast.extend(socket.socketpair())
            with Server(ServerConfig(addr="127.0.0.1:0", max_connections=1)) as server, \
                    Client() as first:
                first.connect(url_of(server))
                host, port = server.address
                refused = Transport(open_connection(host, port, timeout=5),
                                    role="client", read_timeout=5)
                refused.handshake(5)
                refused.write_message(commands.encode_command(
                    commands.CONNECT, 1, {"app": "live", "tcUrl": url_of(server)}))
                reply = commands.decode_command(refused.read_message(timeout=5))
                assert reply.name == commands.ERROR
                lingering = [c for c in server._connections.values() if c._over_limit]
                assert len(lingering) == 1
                assert lingering[0]._sock.fileno() > 1023
                time.sleep(0.3)  # still waiting for us to read the reply and close
                assert lingering[0].id in server._connections
                refused.close()
                assert wait_for(lambda: lingering[0].id not in server._connections, 2.0)
        finally:
            for sock in ballast:
                sock.close()

    @pytest.mark.spec("RTMP 7.2.1.3")
    def test_adopted_stream_ids_are_capped(self) -> None:
        """play on ids createStream never returned: adopted (leniency), but at most
        MAX_STREAMS_PER_CONNECTION of them, so a flood cannot start a thread per id."""
        from rtmp.server import MAX_STREAMS_PER_CONNECTION

        with Server(ServerConfig(addr="127.0.0.1:0")) as server, Client() as client:
            client.connect(url_of(server))
            conn = server.connections[0]
            prefix = f"rtmp-play-{conn.id}-"
            most = 0
            for msid in range(1, 301):
                client.write_message(commands.encode_command(
                    commands.PLAY, 0, None, f"s{msid}", message_stream_id=msid))
                if msid % 20 == 0:
                    most = max(most, sum(1 for t in threading.enumerate()
                                         if t.name.startswith(prefix)))
            failed = 0
            while failed < 300 - MAX_STREAMS_PER_CONNECTION:
                name, info = next_status(client)
                if info.get("code") == commands.NETSTREAM_PLAY_FAILED:
                    failed += 1
            most = max(most, sum(1 for t in threading.enumerate() if t.name.startswith(prefix)))
            assert most <= MAX_STREAMS_PER_CONNECTION  # (players start writers lazily)
            assert len(conn.stream_names) == MAX_STREAMS_PER_CONNECTION
            players = sum(len(s.snapshot_players()) for s in server.hub.streams())
            assert players == MAX_STREAMS_PER_CONNECTION
            assert client.call("getStreamLength", "s1") == 0  # the session carries on

    @pytest.mark.spec("RTMP 5.4.1")
    def test_max_chunk_size(self) -> None:
        config = ServerConfig(addr="127.0.0.1:0", max_chunk_size=4096)
        with Server(config) as server:
            with Client(ClientConfig(chunk_size=4096)) as within:
                within.connect(url_of(server))
                assert within.create_stream() == 1
            with Client(ClientConfig(chunk_size=4097, connect_timeout=5)) as over:
                with pytest.raises(RTMPError):  # the session ends on its Set Chunk Size
                    over.connect(url_of(server))
            assert wait_for(lambda: server.connection_count == 0)

    @pytest.mark.spec("RTMP 5.2")
    def test_silent_client_is_dropped_after_read_timeout(self) -> None:
        from rtmp.transport import Transport

        config = ServerConfig(addr="127.0.0.1:0", read_timeout=0.5)
        with Server(config) as server:
            sock = socket.create_connection(server.address, timeout=5)
            transport = Transport(sock, role="client", conn_id="silent")
            try:
                transport.handshake(5)
                assert wait_for(lambda: server.connection_count == 1)
                assert wait_for(lambda: server.connection_count == 0, timeout=5)
            finally:
                transport.close()

    @pytest.mark.spec("RTMP 7.1.7")
    def test_quiet_player_is_kept_and_pinged(self) -> None:
        config = ServerConfig(addr="127.0.0.1:0", read_timeout=0.3, idle_timeout=10)
        with Server(config) as server, Client() as player:
            player.connect(url_of(server))
            player.play("key")  # nobody publishes: the player says nothing for a while
            time.sleep(1.5)
            assert server.connection_count == 1
            seen: List[Message] = []
            with pytest.raises(rtmp_timeout):  # reading answers the pings meanwhile
                while len(seen) < 10:
                    seen.append(player.read_message(timeout=0.5))
            assert all(m.type == MessageType.DATA_AMF0 for m in seen)  # |RtmpSampleAccess
            assert server.connection_count == 1
            transport = server.connections[0].transport
            assert transport is not None and transport.session.last_ping_response is not None


from rtmp import TimeoutError as rtmp_timeout  # noqa: E402



_NESTED = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(min_size=1, max_size=6), children, max_size=4),
    max_leaves=30,
)


@pytest.mark.spec("AMF0 2.1", "AMF3 3.1")
@settings(max_examples=200, deadline=None)
@given(value=_NESTED, encoding=st.sampled_from([0, 3]))
def test_container_markers_bound_the_nesting(value: Any, encoding: int) -> None:
    """The max_amf_depth shortcut: a command's nesting depth never exceeds the count of
    container marker bytes in its payload, so counting bytes may stand in for the walk."""
    from rtmp.server import _CONTAINER_MARKERS, _check_depth, _nesting

    msg = commands.encode_command("call", 1, None, value, object_encoding=encoding)
    depth = _nesting([None, value], 1000) - 1
    assert depth <= sum(msg.data.count(marker) for marker in _CONTAINER_MARKERS)
    cmd = commands.decode_command(msg)
    if depth > 2:  # the shortcut never lets a too-deep command through
        with pytest.raises(RTMPError):
            _check_depth(cmd, depth - 1, msg.data)
    _check_depth(cmd, max(depth, 0), msg.data)

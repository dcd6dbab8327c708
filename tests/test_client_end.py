"""A play that ends: Stream EOF (RTMP 7.1.7 / RTMP 6.2 event 1) and the ending onStatus
codes (RTMP 7.2.2.1) raise :class:`rtmp.StreamEnded` once, after what came before; the
typed status events (:class:`rtmp.StatusEvent`); a publisher refused mid-stream.

The scripted server of ``tests/test_client.py`` plays each server's habit on the wire.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Dict, List

import pytest

import rtmp
from rtmp import commands, user_control
from rtmp.client import Client, ClientState
from rtmp.commands import StatusEvent
from rtmp.errors import CommandError, ConnectionClosedError, StreamEnded
from rtmp.message import Message, MessageType
from rtmp.transport import Transport
from tests.test_client import WAIT, ScriptedServer, config

MSID = 1


def video(timestamp: int) -> Message:
    return Message(type=MessageType.VIDEO, data=b"\x27\x01\x00\x00\x00v", timestamp=timestamp,
                   message_stream_id=MSID)


def start_play(server: ScriptedServer, t: Transport) -> None:
    """connect, createStream, play answered as our server does (Stream Begin, Play.Start)."""
    server.accept_connect(t)
    server.answer_create_stream(t, MSID)
    server.expect(t, "play")
    t.write_message(user_control.stream_begin(MSID))
    t.write_message(commands.on_status(commands.NETSTREAM_PLAY_START, "Started playing key.", MSID))


def status_code(message: Message) -> Any:
    if message.type not in commands.COMMAND_TYPES:
        return None
    return commands.decode_command(message).code


class TestStreamEnded:
    """RTMP 7.1.7 / 7.2.2.1: every end signal ends the play at once."""

    @pytest.mark.spec("RTMP 7.1.7", "RTMP 6.2")
    def test_stream_eof_alone_ends_the_play(self) -> None:
        # nginx-rtmp's live end: User Control Stream EOF (event 1), no onStatus at all.
        def script(t: Transport, _: int) -> None:
            start_play(server, t)
            t.write_message(video(0))
            t.write_message(video(40))
            t.write_message(user_control.stream_eof(MSID))
            server.drain(t, 3.0)

        with ScriptedServer(script) as server, Client(config()) as client:
            client.connect(server.url())
            client.play()
            got = [client.read_message().timestamp, client.read_message().timestamp]
            started = time.monotonic()
            with pytest.raises(StreamEnded) as ended:
                client.read_message()
            assert time.monotonic() - started < 1.0  # not read_timeout (5 s)
            assert got == [0, 40]
            assert ended.value.reason == "end of stream (User Control Stream EOF)"
            assert ended.value.status is None
            assert isinstance(ended.value, rtmp.RTMPError)
            assert client.stream_eof
            # Raised once: the next read waits (here: times out) instead of raising again.
            with pytest.raises(rtmp.TimeoutError):
                client.read_message(timeout=0.3)

    @pytest.mark.spec("RTMP 7.2.2.1")
    @pytest.mark.parametrize("code", [commands.NETSTREAM_PLAY_STOP,
                                      commands.NETSTREAM_PLAY_COMPLETE,
                                      commands.NETSTREAM_PLAY_UNPUBLISH_NOTIFY])
    def test_ending_status_alone_ends_the_play(self, code: str) -> None:
        def script(t: Transport, _: int) -> None:
            start_play(server, t)
            t.write_message(video(0))
            t.write_message(commands.on_status(code, "over", MSID))
            server.drain(t, 3.0)

        with ScriptedServer(script) as server, Client(config()) as client:
            client.connect(server.url())
            client.play()
            assert client.read_message().type == MessageType.VIDEO
            # The status message itself is still returned (as before), then the end.
            assert status_code(client.read_message()) == code
            started = time.monotonic()
            with pytest.raises(StreamEnded) as ended:
                client.read_message()
            assert time.monotonic() - started < 1.0
            assert ended.value.status is not None
            assert ended.value.status.code == code
            assert ended.value.status.description == "over"
            assert code in ended.value.reason
            assert client.last_status == ended.value.status

    @pytest.mark.spec("RTMP 7.1.7", "RTMP 7.2.2.1")
    def test_signals_of_one_end_raise_once(self) -> None:
        """nginx-rtmp's recorded end (Stream EOF, onPlayStatus Complete, Play.Stop) and
        ours/ffmpeg's live end (UnpublishNotify, Stream EOF) are one end each; a new
        publisher (Stream Begin, PublishNotify, media) starts the next."""

        def script(t: Transport, _: int) -> None:
            start_play(server, t)
            t.write_messages([
                video(0),
                user_control.stream_eof(MSID),
                commands.encode_data("onPlayStatus", {"code": commands.NETSTREAM_PLAY_COMPLETE,
                                                      "level": "status"}, message_stream_id=MSID),
                commands.on_status(commands.NETSTREAM_PLAY_STOP, "Stopped playing key", MSID),
            ])
            time.sleep(0.3)
            t.write_messages([
                user_control.stream_begin(MSID),
                commands.on_status(commands.NETSTREAM_PLAY_PUBLISH_NOTIFY, "", MSID),
                video(1000),
                commands.on_status(commands.NETSTREAM_PLAY_UNPUBLISH_NOTIFY, "gone", MSID),
                user_control.stream_eof(MSID),
            ])
            server.drain(t, 3.0)

        with ScriptedServer(script) as server, Client(config()) as client:
            client.connect(server.url())
            client.play()
            items: List[Any] = []
            for _ in range(10):
                try:
                    message = client.read_message(timeout=1.0)
                except StreamEnded as end:
                    items.append(("end", end.reason, end.status and end.status.code))
                    continue
                except rtmp.TimeoutError:
                    break
                items.append(status_code(message) or (message.type, message.timestamp))
        assert items == [
            (MessageType.VIDEO, 0),
            (MessageType.DATA_AMF0, 0),  # onPlayStatus, returned as before
            commands.NETSTREAM_PLAY_STOP,
            ("end", "end of stream (User Control Stream EOF)", commands.NETSTREAM_PLAY_STOP),
            commands.NETSTREAM_PLAY_PUBLISH_NOTIFY,
            (MessageType.VIDEO, 1000),
            commands.NETSTREAM_PLAY_UNPUBLISH_NOTIFY,
            ("end", "the publisher stopped (NetStream.Play.UnpublishNotify)",
             commands.NETSTREAM_PLAY_UNPUBLISH_NOTIFY),
        ]

    @pytest.mark.spec("RTMP 7.1.7")
    def test_stream_eof_of_another_stream_is_not_ours(self) -> None:
        def script(t: Transport, _: int) -> None:
            start_play(server, t)
            t.write_message(user_control.stream_eof(MSID + 1))
            t.write_message(video(0))
            server.drain(t, 3.0)

        with ScriptedServer(script) as server, Client(config()) as client:
            client.connect(server.url())
            client.play()
            assert client.read_message().type == MessageType.VIDEO
            assert not client.stream_eof

    @pytest.mark.spec("RTMP 7.1.7", "RTMP 7.2.2.1")
    def test_messages_iterates_until_the_end(self) -> None:
        def script(t: Transport, _: int) -> None:
            start_play(server, t)
            for i in range(5):
                t.write_message(video(i * 40))
            t.write_message(user_control.stream_eof(MSID))
            server.drain(t, 3.0)

        with ScriptedServer(script) as server, Client(config()) as client:
            client.connect(server.url())
            client.play()
            started = time.monotonic()
            stamps = [m.timestamp for m in client.messages()
                      if m.type == MessageType.VIDEO]
            assert stamps == [0, 40, 80, 120, 160]
            assert time.monotonic() - started < 2.0

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_messages_propagates_a_timeout(self) -> None:
        def script(t: Transport, _: int) -> None:
            start_play(server, t)
            server.drain(t, 2.0)

        with ScriptedServer(script) as server, Client(config()) as client:
            client.connect(server.url())
            client.play()
            with pytest.raises(rtmp.TimeoutError):
                for _ in client.messages(timeout=0.3):
                    pass


class TestStatusEvents:
    """RTMP 7.2.2: onStatus as typed events."""

    @pytest.mark.spec("RTMP 7.2.2")
    def test_status_event_from_command(self) -> None:
        message = commands.on_status(commands.NETSTREAM_PLAY_STREAM_NOT_FOUND, "no such", 3,
                                     details="x")
        event = StatusEvent.from_command(commands.decode_command(message))
        assert (event.code, event.level, event.description, event.stream_id) == (
            "NetStream.Play.StreamNotFound", "error", "no such", 3)
        assert event.info["details"] == "x"
        assert event.is_error
        assert str(event) == "NetStream.Play.StreamNotFound: no such"
        assert rtmp.StatusEvent is StatusEvent
        with pytest.raises(AttributeError):
            event.code = "x"  # type: ignore[misc]  # frozen
        # Odd info objects: missing or non-string fields are empty strings.
        odd = commands.decode_command(commands.encode_command(
            "onStatus", 0, None, {"code": 5, "level": "warning"}, message_stream_id=1))
        assert StatusEvent.from_command(odd) == StatusEvent("", "warning", "", 1, {})
        assert not StatusEvent.from_command(odd).is_error

    @pytest.mark.spec("RTMP 7.2.2", "RTMP 7.2.2.1")
    def test_on_status_callback_sees_every_status(self) -> None:
        def script(t: Transport, _: int) -> None:
            server.accept_connect(t)
            server.answer_create_stream(t, MSID)
            server.expect(t, "play")
            t.write_message(commands.on_status(commands.NETSTREAM_PLAY_RESET, "reset", MSID))
            t.write_message(commands.on_status(commands.NETSTREAM_PLAY_START, "start", MSID))
            t.write_message(commands.on_status(commands.NETSTREAM_BUFFER_FULL, "", MSID))
            server.drain(t, 2.0)

        seen: List[StatusEvent] = []
        threads: List[str] = []

        def on_status(event: StatusEvent) -> None:
            seen.append(event)
            threads.append(threading.current_thread().name)
            if event.code == commands.NETSTREAM_PLAY_RESET:
                raise RuntimeError("a buggy callback is logged, not fatal")

        with ScriptedServer(script) as server, Client(config(on_status=on_status)) as client:
            client.connect(server.url())
            client.play()  # Reset and Start are consumed by play() and still reported
            message = client.read_message()
            assert status_code(message) == commands.NETSTREAM_BUFFER_FULL
            assert client.last_status is not None
            assert client.last_status.code == commands.NETSTREAM_BUFFER_FULL
        assert [e.code for e in seen] == ["NetStream.Play.Reset", "NetStream.Play.Start",
                                         "NetStream.Buffer.Full"]
        assert set(threads) == {threading.current_thread().name}


class TestPublisherRefused:
    """RTMP 7.2.2.6: a server that refuses or stops a publisher after Publish.Start."""

    @pytest.mark.spec("RTMP 7.2.2.6")
    @pytest.mark.parametrize("code,description", [
        (commands.NETSTREAM_PUBLISH_BAD_NAME, "Stream already publishing"),
        (commands.NETSTREAM_UNPUBLISH_SUCCESS, "dropped by the administrator"),
    ])
    def test_next_write_raises_command_error(self, code: str, description: str) -> None:
        sent: Dict[str, bool] = {}

        def script(t: Transport, _: int) -> None:
            server.accept_connect(t)
            server.answer_create_stream(t, MSID)
            server.expect(t, "publish")
            t.write_message(commands.on_status(commands.NETSTREAM_PUBLISH_START, "", MSID))
            t.read_message(timeout=WAIT)  # the first audio
            t.write_message(commands.on_status(code, description, MSID))
            sent["refusal"] = True
            server.drain(t, 3.0)

        with ScriptedServer(script) as server, Client(config(service_interval=0.02)) as client:
            client.connect(server.url())
            client.publish()
            with pytest.raises(CommandError) as refused:
                for i in range(200):  # 4 s at most; the refusal is noticed within a few
                    client.send_audio(b"\xaf\x01" + bytes(8), i * 20)
                    time.sleep(0.02)
            assert refused.value.code == code
            assert refused.value.description == description
            assert client.state is ClientState.CONNECTED
        assert sent["refusal"]


# -- rtmp.client.play_to_flv (rtmp play) --------------------------------------------------

AVC_HEADER = b"\x17\x00\x00\x00\x00\x01\x64\x00\x1f"  # FLV E.4.3.1: AVCPacketType 0
AAC_HEADER = b"\xaf\x00\x12\x10"  # FLV E.4.2.1: AACPacketType 0


def frame(timestamp: int, key: bool = False) -> Message:
    first = b"\x17" if key else b"\x27"
    return Message(type=MessageType.VIDEO, data=first + b"\x01\x00\x00\x00frame",
                   timestamp=timestamp, message_stream_id=MSID)


def audio(timestamp: int) -> Message:
    return Message(type=MessageType.AUDIO, data=b"\xaf\x01aac", timestamp=timestamp,
                   message_stream_id=MSID)


class TestPlayToFlv:
    """What ``rtmp play`` does with the ends, durations, metadata and a missing publisher."""

    @pytest.mark.spec("RTMP 7.1.5", "FLV E.4.3.1")
    def test_duration_counts_from_the_first_frame_not_the_headers(self, tmp_path: Any) -> None:
        # ffmpeg -output_ts_offset 16772: sequence headers stamped 0, frames from 16,772,000.
        offset = 16_772_000

        def script(t: Transport, _: int) -> None:
            start_play(server, t)
            t.write_message(commands.metadata({"duration": 0.0}, MSID, set_data_frame=False))
            t.write_message(Message(type=MessageType.VIDEO, data=AVC_HEADER, timestamp=0,
                                    message_stream_id=MSID))
            t.write_message(Message(type=MessageType.AUDIO, data=AAC_HEADER, timestamp=0,
                                    message_stream_id=MSID))
            try:
                for i in range(150):  # 6 s of 25 fps, sent at once
                    t.write_message(frame(offset + i * 40, key=i % 25 == 0))
                    t.write_message(audio(offset + i * 40 + 5))
                server.drain(t, 3.0)
            except ConnectionClosedError:
                pass  # the player left after its 3 s

        output = tmp_path / "out.flv"
        with ScriptedServer(script) as server:
            from rtmp.client import play_to_flv

            stats = play_to_flv(server.url(), output, duration=3, config=config())
        assert stats.first_timestamp == offset
        assert stats.duration_ms == 3000  # stopped at 3 s of media, not after one frame
        assert stats.video == 1 + 76  # the header and frames 0..3000 ms
        assert stats.end_reason == "played the requested 3 s"

    @pytest.mark.spec("RTMP 7.1.7", "FLV E.5")
    def test_ends_on_stream_eof_and_rewrites_the_metadata(self, tmp_path: Any) -> None:
        def script(t: Transport, _: int) -> None:
            start_play(server, t)
            # As ffmpeg publishes live: duration and filesize 0 (it cannot know them).
            t.write_message(commands.metadata({"duration": 0.0, "width": 320.0,
                                               "filesize": 0.0}, MSID, set_data_frame=False))
            for i in range(50):
                t.write_message(frame(1000 + i * 40, key=i == 0))
            t.write_message(user_control.stream_eof(MSID))  # nginx-rtmp: nothing else
            server.drain(t, 4.0)

        output = tmp_path / "out.flv"
        with ScriptedServer(script) as server:
            from rtmp.client import play_to_flv

            started = time.monotonic()
            stats = play_to_flv(server.url(), output, config=config())
            assert time.monotonic() - started < 2.0  # not read_timeout
        assert stats.end_reason == "end of stream (User Control Stream EOF)"
        assert stats.duration_ms == 49 * 40
        from rtmp import flv

        metadata = flv.read_metadata(output)
        assert metadata is not None
        assert metadata["duration"] == pytest.approx(1.96)
        assert metadata["filesize"] == output.stat().st_size
        assert metadata["width"] == 320.0

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_timeout_after_media_says_no_end_signal(self, tmp_path: Any) -> None:
        def script(t: Transport, _: int) -> None:
            start_play(server, t)
            for i in range(5):
                t.write_message(frame(i * 40, key=i == 0))
            server.drain(t, 3.0)

        with ScriptedServer(script) as server:
            from rtmp.client import play_to_flv

            stats = play_to_flv(server.url(), tmp_path / "out.flv", config=config(read_timeout=1.0))
        assert stats.end_reason == ("no end-of-stream signal from the server; stopped after 1 s "
                                    "without media")
        assert stats.video == 5

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_waiting_for_a_publisher_when_the_server_does_not_say(self, tmp_path: Any) -> None:
        def script(t: Transport, _: int) -> None:
            start_play(server, t)  # Play.Start "Started playing key." and then nothing
            server.drain(t, 4.0)

        said: List[Any] = []
        with ScriptedServer(script) as server:
            from rtmp.client import play_to_flv

            started = time.monotonic()
            with pytest.raises(rtmp.TimeoutError) as timeout:
                play_to_flv(server.url("live/x"), tmp_path / "out.flv",
                            config=config(read_timeout=2.5),
                            on_waiting=lambda text: said.append((text, time.monotonic())))
        assert [text for text, _ in said] == ["waiting for a publisher of live/x"]
        assert 1.0 < said[0][1] - started < 2.5  # after ~1.5 s without media
        assert "waiting for a publisher of live/x: nobody published within" in str(timeout.value)


class TestOurServerSaysWaiting:
    """[impl] rtmp.Server's Play.Start says when nobody publishes yet; PublishNotify follows."""

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_play_start_says_waiting_and_rtmp_play_says_it_at_once(self, tmp_path: Any) -> None:
        from rtmp.client import play_to_flv

        with rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0")) as server:
            url = f"rtmp://127.0.0.1:{server.address[1]}/live/x"
            with Client(config()) as player:
                player.connect(url)
                player.play()
                assert player.last_status is not None
                assert player.last_status.code == commands.NETSTREAM_PLAY_START
                assert player.last_status.description == "Started playing x; waiting for a publisher."
                with Client(config()) as publisher:
                    publisher.connect(url)
                    publisher.publish()
                    codes = [status_code(player.read_message()) for _ in range(2)]
                    # |RtmpSampleAccess (after Play.Start), then PublishNotify.
                    assert codes == [None, commands.NETSTREAM_PLAY_PUBLISH_NOTIFY]
                    with Client(config()) as second:  # the stream is live now
                        second.connect(url)
                        second.play()
                        assert second.last_status is not None
                        assert second.last_status.description == "Started playing x."
            said: List[float] = []
            started = time.monotonic()
            with pytest.raises(rtmp.TimeoutError, match="waiting for a publisher of live/x"):
                play_to_flv(url, tmp_path / "out.flv", config=config(read_timeout=1.5),
                            on_waiting=lambda text: said.append(time.monotonic()))
            assert len(said) == 1 and said[0] - started < 1.0  # at once: the server said so


class TestRequestedUnpublish:
    """RTMP 7.2.2.6 [impl: FCUnpublish]: the Unpublish.Success we asked for is no refusal."""

    @pytest.mark.spec("RTMP 7.2.2.6")
    def test_unpublish_success_after_fc_unpublish_does_not_raise(self) -> None:
        def script(t: Transport, _: int) -> None:
            server.accept_connect(t)
            server.answer_create_stream(t, MSID)
            server.expect(t, "publish")
            t.write_message(commands.on_status(commands.NETSTREAM_PUBLISH_START, "", MSID))
            server.expect(t, "FCUnpublish")
            t.write_message(commands.on_status(commands.NETSTREAM_UNPUBLISH_SUCCESS, "", MSID))
            server.drain(t, 3.0)

        with ScriptedServer(script) as server, Client(config(service_interval=0.02)) as client:
            client.connect(server.url())
            client.publish()
            client.fc_unpublish()
            for i in range(25):  # 0.5 s: the reply is read meanwhile and must not raise
                client.send_audio(b"\xaf\x01" + bytes(8), i * 20)
                time.sleep(0.02)
            assert client.last_status is not None
            assert client.last_status.code == commands.NETSTREAM_UNPUBLISH_SUCCESS

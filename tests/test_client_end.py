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
from rtmp.errors import CommandError, StreamEnded
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

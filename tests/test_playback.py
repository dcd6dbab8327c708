"""rtmp.playback, sans-IO: the ends of a play grouped (RTMP 7.1.7 / 7.2.2.1) and the
client's bounded read buffer, without sockets (the client tests cover them on the wire)."""

from __future__ import annotations

import logging

import pytest

from rtmp import commands
from rtmp.commands import StatusEvent
from rtmp.errors import LimitExceededError, StreamEnded
from rtmp.message import Message, MessageType
from rtmp.playback import (
    END_OF_PLAY_CODES,
    EndOfPlay,
    PlayEnds,
    ReadBuffer,
    is_end_status,
    play_status_end,
)

LOG = logging.getLogger("test_playback")


def audio(timestamp: int, msid: int = 1, size: int = 4) -> Message:
    return Message(type=MessageType.AUDIO, data=b"\xaf" * size, timestamp=timestamp,
                   message_stream_id=msid)


def status(code: str, msid: int = 1) -> Message:
    return commands.on_status(code, "", msid)


def play_status(code: str) -> Message:
    return commands.encode_data(commands.ON_PLAY_STATUS, {"code": code, "level": "status"},
                                message_stream_id=1)


@pytest.mark.spec("RTMP 7.1.7", "RTMP 7.2.2.1")
def test_signals_of_one_end_are_grouped_until_the_stream_goes_on() -> None:
    ends = PlayEnds(LOG)
    ends.signal("ignored", None, 0.0)  # not playing: no end
    assert ends.take_new() is None
    ends.start()
    stop = StatusEvent.from_command(commands.decode_command(status(commands.NETSTREAM_PLAY_STOP)))
    ends.signal("end of stream", None, 1.0)
    ends.signal("stopped", stop, 1.01)
    end = ends.take_new()
    assert isinstance(end, EndOfPlay) and end.received == 1.0
    assert ends.take_new() is None  # taken once
    assert [reason for reason, _ in end.signals] == ["end of stream", "stopped"]
    error = end.error()
    assert isinstance(error, StreamEnded)
    assert error.reason == "end of stream" and error.status == stop
    ends.resume()  # media after the end: the next signal is a new end
    ends.signal("again", None, 2.0)
    second = ends.take_new()
    assert second is not None and second is not end
    ends.forget()
    ends.signal("after forget", None, 3.0)
    assert ends.take_new() is None


@pytest.mark.spec("RTMP 7.2.2.1")
def test_end_statuses_are_recognised() -> None:
    for code in END_OF_PLAY_CODES:
        assert is_end_status(status(code))
    assert not is_end_status(status(commands.NETSTREAM_PLAY_START))
    assert not is_end_status(audio(0))
    complete = play_status(commands.NETSTREAM_PLAY_COMPLETE)
    assert is_end_status(complete)
    reason = play_status_end(complete)
    assert reason is not None and commands.NETSTREAM_PLAY_COMPLETE in reason
    assert play_status_end(play_status(commands.NETSTREAM_PLAY_START)) is None
    assert play_status_end(audio(0)) is None


@pytest.mark.spec("RTMP 7.1.7")
def test_read_buffer_keeps_order_and_limits() -> None:
    buffer = ReadBuffer(max_messages=3, max_bytes=100)
    buffer.keep(audio(1))
    buffer.keep_end(EndOfPlay("end", None, 0.0))
    buffer.keep(status(commands.NETSTREAM_PLAY_STOP))
    assert len(buffer) == 3
    with pytest.raises(LimitExceededError):
        buffer.keep(audio(2))
    assert buffer.take().timestamp == 1
    assert isinstance(buffer.head(), EndOfPlay) and buffer.has_follower
    follower = buffer.take_end_follower()
    assert follower is not None and is_end_status(follower)
    assert not buffer.has_follower
    buffer.drop_head()
    assert len(buffer) == 0
    with pytest.raises(LimitExceededError):
        buffer.keep(audio(3, size=101))


@pytest.mark.spec("RTMP 7.2.2.7")
def test_flush_after_seek_drops_media_and_ends_only() -> None:
    buffer = ReadBuffer(max_messages=10, max_bytes=1000)
    buffer.keep(audio(1))
    buffer.keep(audio(2, msid=0))  # media on stream 0 counts as ours
    buffer.keep(audio(3, msid=7))  # another stream's stays
    buffer.keep_end(EndOfPlay("complete", None, 0.0))
    buffer.keep(status(commands.NETSTREAM_SEEK_NOTIFY))
    assert buffer.flush_media(1) == 3
    assert buffer.take().message_stream_id == 7
    assert buffer.take().type == MessageType.COMMAND_AMF0
    assert len(buffer) == 0
    for _ in range(10):  # the byte count went back down with what was dropped
        buffer.keep(audio(4, size=100))

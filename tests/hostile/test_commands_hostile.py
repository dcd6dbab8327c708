"""RTMP 7.1.1 / 7.2 / AMF0 / AMF3: hostile commands against a live server.

Truncated and malformed AMF, nesting 10,000 deep, AMF3 reference loops, commands out of
order.  Undecodable commands end the offending session with a ProtocolError naming
RTMP 7.1.1; misuse that a lenient server can answer (unknown stream ids, too many streams,
unknown calls) is answered; nothing may crash a session (``server.stats.errors``).
"""

from __future__ import annotations

import logging
import struct

import pytest

from rtmp import amf0, commands
from rtmp.message import Message, MessageType
from tests.hostile.harness import HOSTILE_CONFIG, HostileEnv, RawPeer, running_server

logger = logging.getLogger(__name__)

READ_TIMEOUT = float(HOSTILE_CONFIG["read_timeout"])
PROMPT = 1.0
DEEP = 10_000

pytestmark = pytest.mark.timeout(60)


def command(payload: bytes, type_id: int = MessageType.COMMAND_AMF0, msid: int = 0) -> Message:
    return Message(type=MessageType(type_id), data=payload, message_stream_id=msid)


def connect_payload() -> bytes:
    obj = commands.connect_command_object("live", "rtmp://127.0.0.1/live")
    return commands.connect(obj).data


def amf0_string(text: str) -> bytes:
    raw = text.encode()
    return b"\x02" + struct.pack(">H", len(raw)) + raw


def amf3_command(name: str, amf3_object: bytes) -> bytes:
    """RTMP 7.1.1 type 17: selector 0x00, AMF0 name and id, then 0x11 + one AMF3 value."""
    return b"\x00" + amf0_string(name) + b"\x00" + struct.pack(">d", 1.0) + b"\x11" + amf3_object


def assert_hung_up(hostile: HostileEnv, peer: RawPeer, *needles: str) -> None:
    mark_text = peer.wait_closed(READ_TIMEOUT + 3)
    assert mark_text < PROMPT, f"took {mark_text:.2f} s"


class TestMalformedAmf:
    """RTMP 7.1.1: a command is AMF values: name, transaction id, object, arguments."""

    @pytest.mark.spec("RTMP 7.1.1", "AMF0 2")
    @pytest.mark.parametrize("cut", [1, 3, 12, 30, -1])
    def test_truncated_connect(self, hostile: HostileEnv, cut: int) -> None:
        payload = connect_payload()
        mark = hostile.log.mark()
        with hostile.peer() as peer:
            peer.handshake()
            peer.send_message(command(payload[:cut]))
            assert peer.wait_closed(READ_TIMEOUT + 3) < PROMPT
        hostile.log.wait_for(mark, "RTMP 7.1.1")
        hostile.assert_healthy()

    @pytest.mark.spec("RTMP 7.1.1", "AMF0 2")
    @pytest.mark.parametrize(
        "payload",
        [
            b"\x00" + struct.pack(">d", 1.0) + amf0_string("connect"),  # number first
            amf0_string("connect") + amf0_string("one"),  # transaction id a string
            amf0_string("connect") + b"\x00" + struct.pack(">d", 1.0) + b"\x42",  # no marker 0x42
            amf0_string("connect") + b"\x00" + struct.pack(">d", 1.0) + b"\x02\xff\xff" + b"ab",
            amf0_string("connect") + b"\x00" + struct.pack(">d", float("nan")),
            b"\x02\x00\x02\xff\xfe" + b"\x00" + struct.pack(">d", 1.0),  # not UTF-8
            b"",
        ],
        ids=["number-first", "string-txn", "bad-marker", "long-string", "nan-txn",
             "not-utf8", "empty"],
    )
    def test_malformed_connect(self, hostile: HostileEnv, payload: bytes) -> None:
        mark = hostile.log.mark()
        with hostile.peer() as peer:
            peer.handshake()
            peer.send_message(command(payload))
            assert peer.wait_closed(READ_TIMEOUT + 3) < PROMPT
        text = hostile.log.wait_for(mark, "closed")
        assert "RTMP 7.1.1" in text or "AMF0" in text, text
        hostile.assert_healthy()

    @pytest.mark.spec("RTMP 7.1.1")
    def test_amf3_command_without_selector(self, hostile: HostileEnv) -> None:
        mark = hostile.log.mark()
        with hostile.peer() as peer:
            peer.connect()
            peer.send_message(command(b"\x0a\x0b\x01\x01", MessageType.COMMAND_AMF3))
            assert peer.wait_closed(READ_TIMEOUT + 3) < PROMPT
        hostile.log.wait_for(mark, "0x00 format selector", "RTMP 7.1.1")
        hostile.assert_healthy()


class TestNesting:
    """AMF0 2.5 / AMF3 3.11-3.12: containers nested 10,000 deep never reach Python's stack."""

    @pytest.mark.spec("AMF0 2.12", "RTMP 7.1.1")
    def test_amf0_strict_arrays_10000_deep(self, hostile: HostileEnv) -> None:
        payload = connect_payload() + b"\x0a\x00\x00\x00\x01" * DEEP + b"\x05"
        mark = hostile.log.mark()
        with hostile.peer() as peer:
            peer.handshake()
            peer.send_message(command(payload))
            assert peer.wait_closed(READ_TIMEOUT + 3) < PROMPT
        hostile.log.wait_for(mark, "max_depth")
        hostile.assert_healthy()

    @pytest.mark.spec("AMF0 2.5", "RTMP 7.1.1")
    def test_amf0_objects_10000_deep(self, hostile: HostileEnv) -> None:
        opening = b"\x00\x01a\x03"  # key "a" -> object
        payload = (amf0_string("connect") + b"\x00" + struct.pack(">d", 1.0) + b"\x03"
                   + opening * DEEP + b"\x00\x00\x09" * (DEEP + 1))
        mark = hostile.log.mark()
        with hostile.peer() as peer:
            peer.handshake()
            peer.send_message(command(payload))
            assert peer.wait_closed(READ_TIMEOUT + 3) < PROMPT
        hostile.log.wait_for(mark, "max_depth")
        hostile.assert_healthy()

    @pytest.mark.spec("AMF3 3.11", "RTMP 7.1.1")
    def test_amf3_arrays_10000_deep(self, hostile: HostileEnv) -> None:
        nested = b"\x09\x03\x01" * DEEP + b"\x01"  # dense array of 1, empty assoc part
        mark = hostile.log.mark()
        with hostile.peer() as peer:
            peer.connect()
            peer.send_message(command(amf3_command("createStream", nested),
                                      MessageType.COMMAND_AMF3))
            assert peer.wait_closed(READ_TIMEOUT + 3) < PROMPT
        hostile.log.wait_for(mark, "max_depth")
        hostile.assert_healthy()

    @pytest.mark.spec("AMF0 3.1", "RTMP 7.1.1")
    def test_avmplus_switches_10000_deep(self, hostile: HostileEnv) -> None:
        """AMF0 0x11 inside AMF3 is meaningless; 10,000 switches are refused cleanly."""
        nested = b"\x11" * DEEP + b"\x01"
        with hostile.peer() as peer:
            peer.connect()
            peer.send_message(command(amf3_command("createStream", nested),
                                      MessageType.COMMAND_AMF3))
            if peer.is_open(0.5):
                peer.send_message(commands.create_stream(4))
                peer.expect_command("_result")
        hostile.assert_healthy()

    @pytest.mark.spec("AMF0 2.5", "RTMP 7.2.1.1")
    @pytest.mark.parametrize(("margin", "accepted"), [(-4, True), (+2, False)])
    def test_default_depth_limit(self, hostile: HostileEnv, margin: int, accepted: bool) -> None:
        """ServerConfig.max_amf_depth (default): just under it answered, just over it refused."""
        depth = hostile.server.config.max_amf_depth + margin
        # An optional user argument of connect: [[[...[1]...]]] ``depth`` strict arrays.
        nested = b"\x0a\x00\x00\x00\x01" * depth + b"\x00" + struct.pack(">d", 1.0)
        with hostile.peer() as peer:
            peer.handshake()
            peer.send_message(command(connect_payload() + nested))
            if accepted:
                assert peer.expect_command("_result").transaction_id == 1
            else:
                assert peer.wait_closed(READ_TIMEOUT + 3) < PROMPT
        hostile.assert_healthy()

    @pytest.mark.spec("AMF0 2.5", "RTMP 7.2.1.1")
    def test_max_amf_depth_is_configurable(self) -> None:
        """Issue 10 asks for ServerConfig.max_amf_depth: a connect deeper than it is refused."""
        with running_server(max_amf_depth=8) as server:
            obj = commands.connect_command_object("live", "rtmp://127.0.0.1/live")
            deep: object = 1
            for _ in range(20):
                deep = [deep]
            obj["deep"] = deep
            with RawPeer(server.address) as peer:
                peer.handshake()
                peer.send_message(commands.connect(obj))
                assert peer.wait_closed(READ_TIMEOUT + 3) < PROMPT, (
                    "a connect nested 20 deep was accepted with max_amf_depth=8")


class TestAmf3References:
    """AMF3 2.2: reference tables; loops and dangling indices."""

    @pytest.mark.spec("AMF3 2.2", "AMF3 3.12")
    def test_object_referencing_itself(self, hostile: HostileEnv) -> None:
        """A legal cycle (the object holds a reference to itself): answered, never a crash."""
        # 0x0A object, 0x0B inline dynamic anonymous traits, "" class, member "self" -> ref 0.
        cyclic = b"\x0a\x0b\x01" + b"\x09self" + b"\x0a\x00" + b"\x07app" + b"\x06\x09live" + b"\x01"
        mark = hostile.log.mark()
        with hostile.peer() as peer:
            peer.handshake()
            peer.send_message(command(amf3_command("connect", cyclic), MessageType.COMMAND_AMF3))
            if peer.is_open(1.0):
                reply = peer.expect_command("_result")
                assert reply.transaction_id == 1
        assert "crashed" not in hostile.log.since(mark)
        hostile.assert_healthy()

    @pytest.mark.spec("AMF3 2.2")
    @pytest.mark.parametrize(
        "value",
        [b"\x0a\x02", b"\x06\x02", b"\x0a\x01", b"\x0a\x07\x01", b"\x09\x02"],
        ids=["object-ref-1", "string-ref-1", "traits-ref-0", "externalizable-unknown",
             "array-ref-1"],
    )
    def test_dangling_reference(self, hostile: HostileEnv, value: bytes) -> None:
        mark = hostile.log.mark()
        with hostile.peer() as peer:
            peer.handshake()
            peer.send_message(command(amf3_command("connect", value), MessageType.COMMAND_AMF3))
            assert peer.wait_closed(READ_TIMEOUT + 3) < PROMPT
        text = hostile.log.wait_for(mark, "closed")
        assert "RTMP 7.1.1" in text, text
        hostile.assert_healthy()

    @pytest.mark.spec("AMF0 2.9")
    def test_amf0_reference_to_itself(self, hostile: HostileEnv) -> None:
        """AMF0 reference 0 inside object 0: a cycle; answered or refused, never a crash."""
        cyclic = b"\x03" + b"\x00\x04self" + b"\x07\x00\x00" + b"\x00\x03app" + amf0_string("live") + b"\x00\x00\x09"
        payload = amf0_string("connect") + b"\x00" + struct.pack(">d", 1.0) + cyclic
        mark = hostile.log.mark()
        with hostile.peer() as peer:
            peer.handshake()
            peer.send_message(command(payload))
            if peer.is_open(1.0):
                peer.expect_command("_result")
        assert "crashed" not in hostile.log.since(mark)
        hostile.assert_healthy()


class TestOutOfOrder:
    """RTMP 7.2.1.1 / 7.2.2: connect first, once; NetStream commands on created streams."""

    @pytest.mark.spec("RTMP 7.2.1.1")
    @pytest.mark.parametrize("name", ["publish", "play", "createStream", "deleteStream"])
    def test_command_before_connect(self, hostile: HostileEnv, name: str) -> None:
        mark = hostile.log.mark()
        with hostile.peer() as peer:
            peer.handshake()
            peer.send_message(commands.encode_command(name, 0, None, "x", message_stream_id=1))
            assert peer.wait_closed(READ_TIMEOUT + 3) < PROMPT
        hostile.log.wait_for(mark, "before connect", "RTMP 7.2.1.1")
        hostile.assert_healthy()

    @pytest.mark.spec("RTMP 7.2.1.1")
    def test_second_connect(self, hostile: HostileEnv) -> None:
        mark = hostile.log.mark()
        with hostile.peer() as peer:
            peer.connect()
            peer.send_message(command(connect_payload()))
            assert peer.wait_closed(READ_TIMEOUT + 3) < PROMPT
        hostile.log.wait_for(mark, "second connect", "RTMP 7.2.1.1")
        hostile.assert_healthy()

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_play_on_a_stream_id_never_created(self, hostile: HostileEnv) -> None:
        """Deviation (librtmp): a stream id never returned by createStream is adopted."""
        with hostile.peer() as peer:
            peer.connect()
            peer.send_message(commands.play("nothing-here", message_stream_id=7))
            status = peer.expect_command("onStatus")
            assert status.message_stream_id == 7
            assert status.arguments[0]["code"].startswith("NetStream.Play.")
        hostile.assert_healthy()

    @pytest.mark.spec("RTMP 7.2.2")
    @pytest.mark.parametrize("name", ["publish", "play"])
    def test_stream_command_on_stream_zero(self, hostile: HostileEnv, name: str) -> None:
        mark = hostile.log.mark()
        with hostile.peer() as peer:
            peer.connect()
            peer.send_message(commands.encode_command(name, 0, None, "zero", message_stream_id=0))
            assert peer.wait_closed(READ_TIMEOUT + 3) < PROMPT
        hostile.log.wait_for(mark, "RTMP 7.2.2")
        hostile.assert_healthy()

    @pytest.mark.spec("RTMP 7.2.1.3")
    def test_create_stream_flood(self, hostile: HostileEnv) -> None:
        """More createStream calls than a connection may hold: _error, and the session lives."""
        with hostile.peer() as peer:
            peer.connect()
            errors = 0
            for txn in range(2, 2 + 100):
                peer.send_message(commands.create_stream(txn))
                reply = peer.read_until(lambda m: m.type == MessageType.COMMAND_AMF0)
                if commands.decode_command(reply).name == "_error":
                    errors += 1
            assert errors > 0
            peer.send_message(commands.delete_stream(1))
            assert peer.create_stream(500) == 1
        hostile.assert_healthy()

    @pytest.mark.spec("RTMP 7.2.2")
    @pytest.mark.parametrize("name", ["deleteStream", "closeStream", "seek", "pause",
                                      "receiveAudio", "receiveVideo", "FCUnpublish"])
    def test_stream_commands_without_a_stream(self, hostile: HostileEnv, name: str) -> None:
        mark = hostile.log.mark()
        with hostile.peer() as peer:
            peer.connect()
            peer.send_message(commands.encode_command(name, 0, None, 12345, message_stream_id=9))
            if peer.is_open(0.5):
                peer.send_message(commands.create_stream(3))
                peer.expect_command("_result")
        assert "crashed" not in hostile.log.since(mark)
        hostile.assert_healthy()

    @pytest.mark.spec("RTMP 7.2.1.2")
    def test_unknown_call_gets_error(self, hostile: HostileEnv) -> None:
        with hostile.peer() as peer:
            peer.connect()
            peer.send_message(commands.encode_command("noSuchMethod" * 100, 5, None, [1] * 50))
            reply = peer.expect_command("_error")
            assert reply.transaction_id == 5
        hostile.assert_healthy()

    @pytest.mark.spec("RTMP 7.1.2")
    def test_media_and_data_before_publish(self, hostile: HostileEnv) -> None:
        """Audio, video, data and aggregates on a stream that publishes nothing are dropped."""
        with hostile.peer() as peer:
            peer.connect()
            msid = peer.create_stream()
            for type_id, data in ((8, b"\xaf\x01abc"), (9, b"\x17\x01\x00\x00\x00xyz"),
                                  (18, amf0.encode_all(["onMetaData", {"width": 1}])),
                                  (22, b"\x09\x00\x00\xff"), (15, b"\x00\x42")):
                peer.send_message(Message(type=MessageType(type_id), data=data,
                                          message_stream_id=msid))
            if peer.is_open(0.5):
                assert peer.create_stream(40) >= 1
        hostile.assert_healthy()

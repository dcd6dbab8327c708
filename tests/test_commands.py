"""RTMP 7.1.1, 7.1.2 and 7.2: command and data messages, status codes, request/reply builders."""

from __future__ import annotations

import re
import struct
from typing import Any

import pyamf
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyamf import amf0 as py_amf0

from rtmp import Message, MessageType, ProtocolError, StreamType, amf0, commands
from rtmp.commands import (
    LEVELS,
    Command,
    decode_command,
    decode_data,
    encode_command,
    encode_data,
    on_status,
    status_info,
)
from rtmp.errors import CommandError


def pyamf_values(data: bytes) -> list[Any]:
    """Decode an AMF0 payload with Py3AMF, an independent implementation."""
    decoder = py_amf0.Decoder(pyamf.util.BufferedByteStream(data))
    values = []
    while decoder.stream.remaining():
        values.append(decoder.readElement())
    return values


def amf0_string(text: str) -> bytes:
    raw = text.encode()
    return b"\x02" + struct.pack(">H", len(raw)) + raw


def amf0_number(value: float) -> bytes:
    return b"\x00" + struct.pack(">d", value)


#: Appendix B of our RTMP notes: every status code with its level.
APPENDIX_B = {
    "NetConnection.Connect.Success": "status",
    "NetConnection.Connect.Rejected": "error",
    "NetConnection.Connect.Closed": "status",
    "NetConnection.Connect.Failed": "error",
    "NetConnection.Connect.InvalidApp": "error",
    "NetConnection.Connect.AppShutdown": "error",
    "NetConnection.Call.Failed": "error",
    "NetConnection.Connect.ReconnectRequest": "status",
    "NetStream.Publish.Start": "status",
    "NetStream.Publish.BadName": "error",
    "NetStream.Publish.Idle": "status",
    "NetStream.Unpublish.Success": "status",
    "NetStream.Play.Start": "status",
    "NetStream.Play.Reset": "status",
    "NetStream.Play.Stop": "status",
    "NetStream.Play.StreamNotFound": "error",
    "NetStream.Play.Failed": "error",
    "NetStream.Play.PublishNotify": "status",
    "NetStream.Play.UnpublishNotify": "status",
    "NetStream.Play.Complete": "status",
    "NetStream.Seek.Notify": "status",
    "NetStream.Seek.Failed": "error",
    "NetStream.Pause.Notify": "status",
    "NetStream.Unpause.Notify": "status",
    "NetStream.Record.Start": "status",
    "NetStream.Record.Stop": "status",
    "NetStream.Record.Failed": "error",
    "NetStream.Buffer.Empty": "status",
    "NetStream.Buffer.Full": "status",
    "NetStream.Buffer.Flush": "status",
    "NetStream.Failed": "error",
}

AMF_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
AMF_VALUES = st.recursive(
    AMF_SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(min_size=1, max_size=8), children, max_size=4),
    ),
    max_leaves=10,
)


class TestCommandMessage:
    """RTMP 7.1.1: name, transaction id, command object, arguments; type 20 or 17."""

    @pytest.mark.spec("RTMP 7.1.1")
    def test_bytes_of_a_small_command(self) -> None:
        msg = encode_command("_result", 1, None, 1)
        assert msg.type == MessageType.COMMAND_AMF0
        assert msg.data == amf0_string("_result") + amf0_number(1) + b"\x05" + amf0_number(1)
        assert msg.message_stream_id == 0 and msg.csid == 3

    @pytest.mark.spec("RTMP 7.1.1")
    def test_independent_decoder_agrees(self) -> None:
        msg = encode_command("connect", 1, {"app": "live", "fpad": False}, "extra")
        assert pyamf_values(msg.data) == ["connect", 1.0, {"app": "live", "fpad": False}, "extra"]

    @pytest.mark.spec("RTMP 7.1.1")
    def test_amf3_command_is_type_17_with_selector(self) -> None:
        msg = encode_command("connect", 1, {"app": "live"}, object_encoding=3, message_stream_id=0)
        assert msg.type == MessageType.COMMAND_AMF3 and msg.data[0] == 0x00
        cmd = decode_command(msg)
        assert (cmd.name, cmd.transaction_id, cmd.command_object) == ("connect", 1.0, {"app": "live"})
        assert cmd.object_encoding == 3 and cmd.message_type == 17

    @pytest.mark.spec("RTMP 7.1.1")
    @given(
        name=st.text(min_size=1, max_size=20),
        transaction_id=st.integers(min_value=0, max_value=2**40),
        command_object=st.one_of(st.none(), st.dictionaries(st.text(min_size=1, max_size=8), AMF_SCALARS, max_size=4)),
        arguments=st.lists(AMF_VALUES, max_size=4),
        msid=st.integers(min_value=0, max_value=2**32 - 1),
        encoding=st.sampled_from([0, 3]),
    )
    def test_round_trip(
        self, name: str, transaction_id: int, command_object: Any, arguments: list[Any], msid: int, encoding: int
    ) -> None:
        msg = encode_command(
            name, transaction_id, command_object, *arguments,
            message_stream_id=msid, object_encoding=encoding, timestamp=1234,
        )  # fmt: skip
        cmd = decode_command(msg)
        assert cmd == Command(name, float(transaction_id), command_object, arguments, msid, int(msg.type), 1234)
        assert cmd.to_message() == msg

    @pytest.mark.spec("RTMP 7.1.1")
    def test_missing_command_object_reads_as_null(self) -> None:
        msg = Message(type=MessageType.COMMAND_AMF0, data=amf0_string("onBWDone") + amf0_number(0))
        cmd = decode_command(msg)
        assert cmd.command_object is None and cmd.arguments == []

    @pytest.mark.spec("RTMP 7.1.1")
    @pytest.mark.parametrize(
        "payload, match",
        [
            (amf0_number(1) + amf0_string("connect"), "not a string"),
            (amf0_string("connect"), "1 value"),
            (b"", "0 value"),
            (amf0_string("connect") + amf0_string("1"), "not a number"),
            (amf0_string("connect") + b"\x01\x01", "not a number"),  # boolean true
            (amf0_string("connect") + amf0_number(float("nan")), "transaction id"),
            (b"\x02\x00\x10short", "undecodable"),
        ],
    )
    def test_malformed_payloads(self, payload: bytes, match: str) -> None:
        with pytest.raises(ProtocolError, match=match) as info:
            decode_command(Message(type=MessageType.COMMAND_AMF0, data=payload))
        assert info.value.clause == "RTMP 7.1.1"

    @pytest.mark.spec("RTMP 7.1.1")
    def test_local_misuse(self) -> None:
        with pytest.raises(ValueError):
            decode_command(Message(type=MessageType.AUDIO, data=b"\xaf"))
        with pytest.raises(ValueError):
            encode_command("", 1)
        with pytest.raises(TypeError):
            encode_command("x", "1")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            encode_command("x", 1, object_encoding=1)


class TestDataMessage:
    """RTMP 7.1.2: data messages, types 18 and 15, and the @setDataFrame convention."""

    @pytest.mark.spec("RTMP 7.1.2")
    def test_round_trip(self) -> None:
        msg = encode_data("onTextData", {"text": "hi"}, message_stream_id=1, timestamp=40)
        assert msg.type == MessageType.DATA_AMF0 and msg.csid == 5
        assert pyamf_values(msg.data) == ["onTextData", {"text": "hi"}]
        assert decode_data(msg) == ["onTextData", {"text": "hi"}]
        amf3 = encode_data("onCuePoint", {"t": 1}, message_stream_id=1, object_encoding=3)
        assert amf3.type == MessageType.DATA_AMF3 and decode_data(amf3) == ["onCuePoint", {"t": 1}]

    @pytest.mark.spec("RTMP 7.1.2 [impl: @setDataFrame]", "FLV E.4.4.1")
    def test_metadata_with_set_data_frame(self) -> None:
        msg = commands.metadata({"width": 320.0, "height": 240.0}, 1)
        values = decode_data(msg)
        assert values[:2] == ["@setDataFrame", "onMetaData"]
        assert values[2] == {"width": 320.0, "height": 240.0}
        # FLV E.4.4.1: the value is an ECMA array (AMF0 marker 0x08), as ffmpeg writes it.
        assert msg.data[len(amf0_string("@setDataFrame") + amf0_string("onMetaData"))] == 0x08
        assert commands.strip_set_data_frame(values) == ["onMetaData", values[2]]
        assert commands.strip_set_data_frame(["onMetaData", {}]) == ["onMetaData", {}]
        plain = commands.metadata({"a": 1}, 1, set_data_frame=False)
        assert decode_data(plain)[0] == "onMetaData"
        as_object = commands.metadata(amf0.ECMAArray(a=1), 1, set_data_frame=False)
        assert as_object.data == plain.data

    @pytest.mark.spec("RTMP 7.1.2")
    def test_errors(self) -> None:
        with pytest.raises(ValueError):
            decode_data(Message(type=MessageType.COMMAND_AMF0, data=b"\x05"))
        with pytest.raises(ProtocolError, match="RTMP 7.1.2"):
            decode_data(Message(type=MessageType.DATA_AMF0, data=b"\x02\x00\x09abc"))


class TestStatusCodes:
    """RTMP 7.2.2 and Appendix B: onStatus information objects."""

    @pytest.mark.spec("RTMP 7.2.2")
    def test_every_appendix_b_code_has_its_level(self) -> None:
        assert LEVELS == APPENDIX_B

    @pytest.mark.spec("RTMP 7.2.2")
    def test_constant_names_follow_the_codes(self) -> None:
        constants = {
            name: value for name, value in vars(commands).items()
            if re.match(r"NET(CONNECTION|STREAM)_", name) and isinstance(value, str)
        }  # fmt: skip
        assert set(constants.values()) == set(APPENDIX_B)
        for name, code in constants.items():
            # "NetStream.Play.StreamNotFound" -> NETSTREAM_PLAY_STREAM_NOT_FOUND
            head, *rest = code.split(".")
            words = [re.sub(r"(?<=[a-z])(?=[A-Z])", "_", part) for part in rest]
            expected = "_".join([head, *words]).upper()
            assert name == expected
        assert commands.NETSTREAM_PUBLISH_START == "NetStream.Publish.Start"

    @pytest.mark.spec("RTMP 7.2.2")
    def test_status_info(self) -> None:
        info = status_info(commands.NETSTREAM_PLAY_START, "Started playing x.", details="x", clientid=7)
        assert info == {
            "level": "status",
            "code": "NetStream.Play.Start",
            "description": "Started playing x.",
            "details": "x",
            "clientid": 7,
        }
        assert list(info)[:3] == ["level", "code", "description"]
        assert status_info(commands.NETSTREAM_PLAY_START, level="warning")["level"] == "warning"
        assert status_info("Custom.Thing.Failed")["level"] == "error"
        assert status_info("Custom.Thing.Happened")["level"] == "status"

    @pytest.mark.spec("RTMP 7.2.2")
    def test_on_status_message(self) -> None:
        msg = on_status(commands.NETSTREAM_PUBLISH_START, "Publishing live.", 1, details="live")
        assert msg.type == MessageType.COMMAND_AMF0 and msg.message_stream_id == 1
        assert pyamf_values(msg.data) == [
            "onStatus", 0.0, None,
            {"level": "status", "code": "NetStream.Publish.Start", "description": "Publishing live.",
             "details": "live"},
        ]  # fmt: skip
        cmd = decode_command(msg)
        assert cmd.code == "NetStream.Publish.Start" and not cmd.is_error

    @pytest.mark.spec("RTMP 7.2.2")
    @pytest.mark.parametrize("clientid", ["a1b2-1", "a1b2-99999", "", "é-ü", "x" * 70000])
    def test_client_status_is_on_status_with_the_client_id(self, clientid: str) -> None:
        """The server's statuses come from a template encoded once: the same message as a
        full encode, for any client id (a long one becomes an AMF0 long string)."""
        cases = [
            (commands.NETSTREAM_PLAY_START, "Started playing x.", 1, {"details": "x"}),
            (commands.NETSTREAM_PLAY_RESET, "Playing and resetting x.", 3, {"details": "x"}),
            (commands.NETSTREAM_PUBLISH_BAD_NAME, "busy", 2, {}),
            (commands.NETSTREAM_PLAY_FAILED, "nope", 1, {"level": "warning", "n": 2.5}),
        ]
        for code, description, msid, extra in cases:
            for _ in range(2):  # the first call makes the template, the second uses it
                fast = commands.client_status(clientid, code, description, msid, **extra)
                full = on_status(code, description, msid, clientid=clientid, **extra)
                assert fast == full and fast.csid == full.csid
                assert decode_command(fast).info["clientid"] == clientid

    @pytest.mark.spec("RTMP 7.2.2")
    def test_client_status_without_a_template(self) -> None:
        """Unhashable extras, and a description holding the template's own mark, are
        encoded in full: the result is still the status asked for."""
        fast = commands.client_status("c-1", commands.NETSTREAM_PLAY_START, "d", 1,
                                      details={"a": [1]})
        assert fast == on_status(commands.NETSTREAM_PLAY_START, "d", 1, clientid="c-1",
                                 details={"a": [1]})
        mark = "\x00rtmp-clientid\x00"
        tricky = commands.client_status("c-2", commands.NETSTREAM_PLAY_START, mark, 1)
        assert tricky == on_status(commands.NETSTREAM_PLAY_START, mark, 1, clientid="c-2")
        assert decode_command(tricky).info["description"] == mark

    @pytest.mark.spec("AMF0 2.4")
    @given(st.text(max_size=300))
    def test_encode_string_is_encode(self, text: str) -> None:
        assert amf0.encode_string(text) == amf0.encode(text)

    @pytest.mark.spec("AMF0 2.14")
    def test_encode_string_long(self) -> None:
        text = "ab" * 40000
        assert amf0.encode_string(text) == amf0.encode(text)
        assert amf0.encode_string(text)[0] == 0x0C

    @pytest.mark.spec("RTMP 7.2.2")
    def test_error_level_on_status_is_an_error(self) -> None:
        cmd = decode_command(on_status(commands.NETSTREAM_PLAY_STREAM_NOT_FOUND, "No such stream", 1))
        assert cmd.is_error
        error = commands.command_error(cmd)
        assert isinstance(error, CommandError)
        assert (error.code, error.description) == ("NetStream.Play.StreamNotFound", "No such stream")


class TestConnect:
    """RTMP 7.2.1.1: the connect command object, flags and the server's reply."""

    @pytest.mark.spec("RTMP 7.2.1.1")
    def test_flag_values(self) -> None:
        sound = [commands.SUPPORT_SND_NONE, commands.SUPPORT_SND_ADPCM, commands.SUPPORT_SND_MP3,
                 commands.SUPPORT_SND_INTEL, commands.SUPPORT_SND_UNUSED, commands.SUPPORT_SND_NELLY8,
                 commands.SUPPORT_SND_NELLY, commands.SUPPORT_SND_G711A, commands.SUPPORT_SND_G711U,
                 commands.SUPPORT_SND_NELLY16, commands.SUPPORT_SND_AAC, commands.SUPPORT_SND_SPEEX]  # fmt: skip
        assert sound == [1 << i for i in range(12)]
        assert sum(sound) == commands.SUPPORT_SND_ALL == 0x0FFF
        video = [commands.SUPPORT_VID_UNUSED, commands.SUPPORT_VID_JPEG, commands.SUPPORT_VID_SORENSON,
                 commands.SUPPORT_VID_HOMEBREW, commands.SUPPORT_VID_VP6, commands.SUPPORT_VID_VP6ALPHA,
                 commands.SUPPORT_VID_HOMEBREWV, commands.SUPPORT_VID_H264]  # fmt: skip
        assert video == [1 << i for i in range(8)]
        assert sum(video) == commands.SUPPORT_VID_ALL == 0xFF
        assert commands.SUPPORT_VID_CLIENT_SEEK == 1

    @pytest.mark.spec("RTMP 7.2.1.1")
    def test_command_object(self) -> None:
        obj = commands.connect_command_object("live", "rtmp://h:1935/live")
        assert obj == {
            "app": "live",
            "flashVer": "FMLE/3.0 (compatible; rtmp-py)",
            "tcUrl": "rtmp://h:1935/live",
            "fpad": False,
            "capabilities": 15,
            "audioCodecs": 0x0FFF,
            "videoCodecs": 0x00FF,
            "videoFunction": 1,
            "objectEncoding": 0,
        }
        assert "flashver" not in obj  # RTMP 7.2.1.1 [impl]: real clients spell it flashVer
        full = commands.connect_command_object(
            "vod", "rtmp://h/vod", object_encoding=3, swf_url="file://a.swf", page_url="http://p",
            extra={"type": "nonprivate", "fourCcList": ["hvc1"]},
        )  # fmt: skip
        assert (full["swfUrl"], full["pageUrl"], full["objectEncoding"]) == ("file://a.swf", "http://p", 3)
        assert full["type"] == "nonprivate" and full["fourCcList"] == ["hvc1"]
        with pytest.raises(ValueError):
            commands.connect_command_object("a", "b", object_encoding=2)

    @pytest.mark.spec("RTMP 7.2.1.1")
    def test_connect_message(self) -> None:
        obj = commands.connect_command_object("live", "rtmp://h:1935/live")
        msg = commands.connect(obj, {"user": "arg"})
        assert msg.type == MessageType.COMMAND_AMF0 and msg.message_stream_id == 0
        values = pyamf_values(msg.data)
        assert values[:2] == ["connect", 1.0]  # RTMP 7.2.1.1: transaction id always 1
        assert values[2]["flashVer"] == obj["flashVer"] and values[3] == {"user": "arg"}

    @pytest.mark.spec("RTMP 7.2.1.1")
    def test_connect_result(self) -> None:
        cmd = decode_command(commands.connect_result(object_encoding=3))
        assert (cmd.name, cmd.transaction_id) == ("_result", 1.0)
        assert cmd.command_object == {"fmsVer": "FMS/3,0,1,123", "capabilities": 31}
        assert cmd.info == {
            "level": "status",
            "code": "NetConnection.Connect.Success",
            "description": "Connection succeeded.",
            "objectEncoding": 3,
        }
        assert cmd.code == commands.NETCONNECTION_CONNECT_SUCCESS and not cmd.is_error


class TestReplies:
    """RTMP 7.2: ``_result`` and ``_error`` carry the transaction id of the request."""

    @pytest.mark.spec("RTMP 7.2.1.3")
    def test_create_stream_and_result(self) -> None:
        request = decode_command(commands.create_stream(4))
        assert (request.name, request.transaction_id, request.command_object) == ("createStream", 4.0, None)
        reply = decode_command(commands.result(4, None, 1))
        assert (reply.name, reply.transaction_id, reply.command_object, reply.arguments) == (
            "_result", 4.0, None, [1.0])
        assert reply.info is None and reply.code is None
        assert decode_command(commands.result(9)).command_object is None

    @pytest.mark.spec("RTMP 7.2")
    def test_error_reply(self) -> None:
        info = status_info(commands.NETCONNECTION_CONNECT_REJECTED, "[ AccessManager.Reject ] : x")
        msg = commands.error(1, info)
        # AUTH-ADOBE: ffmpeg reads the description from the first object: null, then info.
        assert pyamf_values(msg.data) == ["_error", 1.0, None, info]
        cmd = decode_command(msg)
        assert cmd.is_error and commands.command_error(cmd).code == "NetConnection.Connect.Rejected"
        by_code = decode_command(commands.error(3, commands.NETCONNECTION_CALL_FAILED))
        assert by_code.info == {"level": "error", "code": "NetConnection.Call.Failed", "description": ""}

    @pytest.mark.spec("RTMP 7.2")
    def test_info_in_command_object(self) -> None:
        # Some servers put the info object in the command object slot.
        cmd = decode_command(encode_command("_error", 2, {"level": "error", "code": "X.Failed"}))
        assert cmd.code == "X.Failed" and cmd.is_error
        bare = decode_command(encode_command("_error", 2))
        assert commands.command_error(bare).code == "_error"


class TestNetStreamCommands:
    """RTMP 7.2.2.x: the NetStream requests, on the stream's message stream id."""

    @pytest.mark.spec("RTMP 7.2.2.6")
    def test_publish(self) -> None:
        msg = commands.publish("key", StreamType.RECORD, 1)
        assert msg.message_stream_id == 1 and msg.csid == 8
        assert pyamf_values(msg.data) == ["publish", 0.0, None, "key", "record"]
        assert decode_command(commands.publish("k", "append", 3)).arguments == ["k", "append"]
        with pytest.raises(ValueError):
            commands.publish("k", "broadcast", 1)

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_play(self) -> None:
        assert pyamf_values(commands.play("x", 1).data) == ["play", 0.0, None, "x", -2.0, -1.0, True]
        assert decode_command(commands.play("x", 2, start=5, duration=0, reset=None)).arguments == ["x", 5.0, 0.0]

    @pytest.mark.spec("RTMP 7.2.2.3", "RTMP 7.2.2.7", "RTMP 7.2.2.8")
    def test_delete_seek_pause(self) -> None:
        assert pyamf_values(commands.delete_stream(1).data) == ["deleteStream", 0.0, None, 1.0]
        seek = commands.seek(1500, 1)
        assert pyamf_values(seek.data) == ["seek", 0.0, None, 1500.0] and seek.message_stream_id == 1
        assert pyamf_values(commands.pause(True, 3000, 1).data) == ["pause", 0.0, None, True, 3000.0]

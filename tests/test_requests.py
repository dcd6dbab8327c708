"""RTMP 7.2.1 / 7.2.2: typed requests (rtmp.requests): lenient reading, encoding, round trips."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rtmp import Message, MessageType, StreamType, commands
from rtmp.commands import Command, decode_command, encode_command
from rtmp.requests import (
    CAPS_EX_MOD_EX,
    CAPS_EX_MULTITRACK,
    CAPS_EX_RECONNECT,
    CAPS_EX_TIMESTAMP_NANO_OFFSET,
    FOURCC_CAN_DECODE,
    FOURCC_CAN_ENCODE,
    FOURCC_CAN_FORWARD,
    REQUEST_TYPES,
    Close,
    CloseStream,
    Connect,
    CreateStream,
    DeleteStream,
    EnhancedCaps,
    FCPublish,
    FCSubscribe,
    FCUnpublish,
    GetStreamLength,
    Pause,
    Play,
    Play2,
    Publish,
    ReceiveAudio,
    ReceiveVideo,
    ReleaseStream,
    Request,
    Seek,
    decode_request,
    finite_number,
    split_query,
)


def cmd(name: str, *args: Any, command_object: Any = None, msid: int = 1,
        encoding: int = 0) -> Command:
    """Decode what a peer would send: ``name, 0, command_object, *args``."""
    return decode_command(encode_command(name, 0, command_object, *args,
                                         message_stream_id=msid, object_encoding=encoding))


def request(name: str, *args: Any, **kw: Any) -> Request:
    found = decode_request(cmd(name, *args, **kw))
    assert found is not None
    return found


# -- the table ---------------------------------------------------------------------------------


@pytest.mark.spec("RTMP 7.2.1", "RTMP 7.2.2")
def test_table_maps_every_request_name_to_its_type() -> None:
    assert set(REQUEST_TYPES) == {
        "connect", "close", "createStream", "releaseStream", "FCPublish", "FCUnpublish",
        "FCSubscribe", "getStreamLength", "publish", "play", "play2", "deleteStream",
        "closeStream", "receiveAudio", "receiveVideo", "seek", "pause",
    }
    for name, cls in REQUEST_TYPES.items():
        assert cls.name == name
        assert type(request(name)) is cls


@pytest.mark.spec("RTMP 7.2")
@pytest.mark.parametrize("name", ["_result", "_error", "onStatus", "_checkbw", "myMethod",
                                  "Play", "PUBLISH", ""])
def test_unknown_names_are_not_requests(name: str) -> None:
    assert decode_request(Command(name=name, transaction_id=0)) is None


@pytest.mark.spec("RTMP 7.2.1", "RTMP 7.2.2")
def test_netstream_flag_follows_the_chapter() -> None:
    netconnection = {Connect, Close, CreateStream, ReleaseStream, FCPublish, FCUnpublish,
                     FCSubscribe, GetStreamLength}
    for cls in REQUEST_TYPES.values():
        assert cls.netstream is (cls not in netconnection), cls


# -- helpers -----------------------------------------------------------------------------------


@pytest.mark.spec("AMF0 2.2")
@pytest.mark.parametrize(("value", "expected"), [
    (3, 3.0), (2.5, 2.5), (-1.0, -1.0), (math.inf, 7.0), (-math.inf, 7.0), (math.nan, 7.0),
    (True, 7.0), (False, 7.0), ("12", 7.0), (None, 7.0), ([1], 7.0),
])
def test_finite_number(value: Any, expected: float) -> None:
    assert finite_number(value, 7.0) == expected


def test_split_query() -> None:
    assert split_query("key?token=1&x=2") == ("key", "token=1&x=2")
    assert split_query("key") == ("key", "")
    assert split_query("a?b?c") == ("a", "b?c")
    assert split_query("") == ("", "")


# -- connect (RTMP 7.2.1.1) --------------------------------------------------------------------


@pytest.mark.spec("RTMP 7.2.1.1")
def test_connect_reads_the_table_properties() -> None:
    obj = {"app": "/live/?authmod=adobe&user=u", "flashVer": "FMLE/3.0", "swfUrl": "s",
           "tcUrl": "rtmp://h/live", "fpad": False, "capabilities": 239.0,
           "audioCodecs": 3575.0, "videoCodecs": 252.0, "videoFunction": 1.0,
           "pageUrl": "p", "objectEncoding": 3.0, "type": "nonprivate"}
    c = request("connect", {"extra": 1}, "x", command_object=obj, msid=0)
    assert isinstance(c, Connect)
    assert c.app == "/live/?authmod=adobe&user=u"
    assert c.app_name == "live" and c.query == "authmod=adobe&user=u"
    assert c.tc_url == "rtmp://h/live" and c.flash_ver == "FMLE/3.0"
    assert c.swf_url == "s" and c.page_url == "p" and c.fpad is False
    assert (c.capabilities, c.audio_codecs, c.video_codecs, c.video_function) == (
        239.0, 3575.0, 252.0, 1.0)
    assert c.object_encoding == 3
    assert c.command_object["type"] == "nonprivate"  # unknown properties are kept
    assert c.user_arguments == ({"extra": 1}, "x")


@pytest.mark.spec("RTMP 7.2.1.1")
def test_connect_lenient_defaults() -> None:
    # A command object that is not an object reads as {}; wrong types read as ""/None.
    for bad in (None, "live", 3.0, [1, 2]):
        c = request("connect", command_object=bad)
        assert isinstance(c, Connect)
        assert c.command_object == {} and c.app == "" and c.tc_url == ""
        assert c.object_encoding == 0 and c.flash_ver is None
    c = request("connect", command_object={"app": 5.0, "tcUrl": None, "objectEncoding": "3",
                                           "fpad": 1.0, "audioCodecs": "x", "swfUrl": 1.0})
    assert isinstance(c, Connect)
    assert (c.app, c.tc_url, c.object_encoding, c.fpad, c.audio_codecs, c.swf_url) == (
        "", "", 0, None, None, None)
    assert c.command_object["app"] == 5.0  # kept as sent


@pytest.mark.spec("RTMP 7.2.1.1")
def test_connect_flashver_spellings() -> None:
    assert Connect({"flashver": "LNX 9,0,124,2"}).flash_ver == "LNX 9,0,124,2"  # the table's
    assert Connect({"flashVer": "a", "flashver": "b"}).flash_ver == "a"  # [impl] clients'


@pytest.mark.spec("RTMP 7.2.1.1")
@pytest.mark.parametrize(("app", "name", "query"), [
    ("live", "live", ""), ("/live/", "live", ""), ("live/?a=1", "live", "a=1"),
    ("live/sub", "live/sub", ""), ("//", "", ""), ("?x=1", "", "x=1"),
])
def test_connect_app_name_and_query(app: str, name: str, query: str) -> None:
    c = Connect({"app": app})
    assert (c.app_name, c.query) == (name, query)


@pytest.mark.spec("RTMP 7.2.1.1")
def test_connect_encodes_like_the_encoder() -> None:
    made = Connect.create("live", "rtmp://h/live", "arg", flash_ver="X", object_encoding=3)
    expected = commands.connect(
        commands.connect_command_object("live", "rtmp://h/live", flash_ver="X",
                                        object_encoding=3), "arg")
    msg = made.to_message()
    assert msg == expected
    assert msg.type == MessageType.COMMAND_AMF0 and msg.message_stream_id == 0
    decoded = decode_command(msg)
    assert decoded.transaction_id == 1  # RTMP 7.2.1.1: always 1
    assert decode_request(decoded) == made


# -- NetConnection calls with a stream name ----------------------------------------------------


@pytest.mark.spec("RTMP 7.2.1.2")
@pytest.mark.parametrize("cls", [ReleaseStream, FCPublish, FCUnpublish, FCSubscribe,
                                 GetStreamLength])
def test_named_calls(cls: type[Request]) -> None:
    got = request(cls.name, "key?token=1", msid=0)
    assert got == cls("key?token=1")  # type: ignore[call-arg]
    assert got.base_name == "key"  # type: ignore[attr-defined]
    # Lenient: a missing or non-string name reads as "".
    assert request(cls.name, msid=0) == cls("")  # type: ignore[call-arg]
    assert request(cls.name, 5.0, msid=0) == cls("")  # type: ignore[call-arg]
    assert request(cls.name, None, msid=0) == cls("")  # type: ignore[call-arg]
    msg = cls("k").to_message(4)  # type: ignore[call-arg]
    back = decode_command(msg)
    assert (back.name, back.transaction_id, back.command_object, back.arguments,
            back.message_stream_id) == (cls.name, 4, None, ["k"], 0)


@pytest.mark.spec("RTMP 7.2.1.3")
def test_create_stream() -> None:
    assert request("createStream", msid=0) == CreateStream()
    assert request("createStream", "ignored", msid=0) == CreateStream()
    assert CreateStream().to_message(2) == commands.create_stream(2)
    assert CreateStream().to_message(5, object_encoding=3) == commands.create_stream(5, 3)


@pytest.mark.spec("RTMP 7.2.1")
def test_close() -> None:
    assert request("close", msid=0) == Close()
    back = decode_command(Close().to_message())
    assert (back.name, back.transaction_id, back.arguments) == ("close", 0, [])


# -- publish (RTMP 7.2.2.6) --------------------------------------------------------------------


@pytest.mark.spec("RTMP 7.2.2.6")
@pytest.mark.parametrize(("sent", "kind"), [
    ("live", StreamType.LIVE), ("record", StreamType.RECORD), ("append", StreamType.APPEND),
    ("LIVE", StreamType.LIVE), ("Record", StreamType.RECORD),
])
def test_publish_types(sent: str, kind: StreamType) -> None:
    assert request("publish", "key", sent) == Publish("key", kind)


@pytest.mark.spec("RTMP 7.2.2.6")
def test_publish_lenient_defaults() -> None:
    assert request("publish") == Publish("", StreamType.LIVE)  # nothing at all
    assert request("publish", "key") == Publish("key", StreamType.LIVE)  # no type: live
    assert request("publish", "key", None) == Publish("key", StreamType.LIVE)
    assert request("publish", "key", 1.0) == Publish("key", StreamType.LIVE)
    assert request("publish", 7.0, "record") == Publish("", StreamType.RECORD)
    # Deviation (FMLE): an unknown type is published live; the text is kept for strict mode.
    odd = request("publish", "key", "liveish")
    assert odd == Publish("key", StreamType.LIVE, "liveish")
    assert isinstance(odd, Publish) and odd.unknown_type == "liveish"


@pytest.mark.spec("RTMP 7.2.2.6")
def test_publish_name_and_query() -> None:
    p = Publish("key?token=abc&x=1")
    assert (p.base_name, p.query) == ("key", "token=abc&x=1")
    assert (Publish("key").base_name, Publish("key").query) == ("key", "")


@pytest.mark.spec("RTMP 7.2.2.6")
def test_publish_encodes_like_the_encoder() -> None:
    assert Publish("k", StreamType.RECORD).to_message(message_stream_id=3) == commands.publish(
        "k", StreamType.RECORD, 3)
    assert Publish("k").to_message() == commands.publish("k")  # msid 1, txn 0
    odd = decode_command(Publish("k", unknown_type="xyz").to_message(message_stream_id=2))
    assert odd.arguments == ["k", "xyz"] and odd.message_stream_id == 2


# -- play (RTMP 7.2.2.1) and play2 (RTMP 7.2.2.2) ----------------------------------------------


@pytest.mark.spec("RTMP 7.2.2.1")
def test_play_defaults() -> None:
    # RTMP 7.2.2.1: start -2, duration -1, reset true when left out.
    assert request("play", "s") == Play("s", -2, -1, True)
    assert request("play") == Play("", -2, -1, True)
    assert request("play", "s", 5.0) == Play("s", 5, -1, True)
    assert request("play", "s", 5.0, 10.0) == Play("s", 5, 10, True)
    assert request("play", "s", -1000.0, -1000.0, False) == Play("s", -1000, -1000, False)


@pytest.mark.spec("RTMP 7.2.2.1")
def test_play_lenient_wrong_types() -> None:
    assert request("play", 3.0, "5", True, "no") == Play("", -2, -1, True)
    assert request("play", "s", math.inf, math.nan, 1.0) == Play("s", -2, -1, True)
    assert request("play", "s", None, None, None) == Play("s", -2, -1, True)


@pytest.mark.spec("RTMP 7.2.2.1")
def test_play_base_name() -> None:
    assert Play("flv:movie?x=1").base_name == "movie"
    assert Play("FLV:movie").base_name == "movie"
    assert Play("mp4:movie.mp4").base_name == "mp4:movie.mp4"
    assert Play("movie?x=1").query == "x=1"


@pytest.mark.spec("RTMP 7.2.2.1")
def test_play_encodes_like_the_encoder() -> None:
    assert Play("s", -2000, -1000, True).to_message(message_stream_id=4) == commands.play(
        "s", 4, -2000, -1000, True)
    assert Play("s", reset=None).to_message() == commands.play("s", reset=None)
    assert decode_command(Play("s", reset=None).to_message()).arguments == ["s", -2, -1]


@pytest.mark.spec("RTMP 7.2.2.2")
def test_play2_parameters() -> None:
    params = {"streamName": "b", "oldStreamName": "a", "start": 5.0, "len": 9.0,
              "offset": 2.0, "transition": "switch"}
    p = request("play2", params)
    assert isinstance(p, Play2)
    assert (p.stream_name, p.old_stream_name, p.start, p.duration, p.offset, p.transition) == (
        "b", "a", 5.0, 9.0, 2.0, "switch")


@pytest.mark.spec("RTMP 7.2.2.2")
def test_play2_lenient_defaults() -> None:
    for args in ((), (None,), ("b",), (3.0,)):
        p = request("play2", *args)
        assert p == Play2({})
    p = Play2({"streamName": "", "start": "x", "len": math.inf, "offset": True})
    assert (p.stream_name, p.start, p.duration, p.offset, p.transition) == (
        None, -2, -1, None, None)
    assert Play2({"streamName": 4.0}).stream_name is None


# -- deleteStream, closeStream (RTMP 7.2.2.3, 7.2.2) -------------------------------------------


@pytest.mark.spec("RTMP 7.2.2.3")
def test_delete_stream() -> None:
    assert request("deleteStream", 3.0, msid=0) == DeleteStream(3)
    assert request("deleteStream", 3.9, msid=0) == DeleteStream(3)  # a fraction is cut
    # Lenient: no id, or one that is no finite number, means the stream it came on.
    assert request("deleteStream", msid=5) == DeleteStream(5)
    assert request("deleteStream", "2", msid=5) == DeleteStream(5)
    assert request("deleteStream", math.nan, msid=6) == DeleteStream(6)
    assert request("deleteStream", None, msid=0) == DeleteStream(0)


@pytest.mark.spec("RTMP 7.2.2.3")
def test_delete_stream_goes_on_stream_zero() -> None:
    msg = DeleteStream(7).to_message()
    assert msg == commands.delete_stream(7) and msg.message_stream_id == 0
    assert DeleteStream(7).to_message(message_stream_id=7).message_stream_id == 7


@pytest.mark.spec("RTMP 7.2.2")
def test_close_stream() -> None:
    assert request("closeStream", msid=2) == CloseStream()
    assert request("closeStream", 1.0, msid=2) == CloseStream()
    assert CloseStream().to_message(message_stream_id=2).message_stream_id == 2


# -- receiveAudio / receiveVideo (RTMP 7.2.2.4, 7.2.2.5) ---------------------------------------


@pytest.mark.spec("RTMP 7.2.2.4", "RTMP 7.2.2.5")
@pytest.mark.parametrize("cls", [ReceiveAudio, ReceiveVideo])
def test_receive_flags(cls: type[Request]) -> None:
    assert request(cls.name, True) == cls(True)  # type: ignore[call-arg]
    assert request(cls.name, False) == cls(False)  # type: ignore[call-arg]
    assert request(cls.name) == cls(True)  # type: ignore[call-arg]  # missing: true
    assert request(cls.name, 0.0) == cls(False)  # type: ignore[call-arg]  # by its truth
    assert request(cls.name, "") == cls(False)  # type: ignore[call-arg]
    assert request(cls.name, "false") == cls(True)  # type: ignore[call-arg]
    assert request(cls.name, None) == cls(False)  # type: ignore[call-arg]
    back = decode_command(cls(False).to_message(message_stream_id=3))  # type: ignore[call-arg]
    assert (back.arguments, back.message_stream_id) == ([False], 3)


# -- seek, pause (RTMP 7.2.2.7, 7.2.2.8) -------------------------------------------------------


@pytest.mark.spec("RTMP 7.2.2.7")
def test_seek() -> None:
    assert request("seek", 1500.0) == Seek(1500)
    assert request("seek") == Seek(0)
    assert request("seek", "10") == Seek(0)
    assert request("seek", math.inf) == Seek(0)
    assert Seek(-5).position == 0 and Seek(1500.7).position == 1500
    assert Seek(250).to_message(message_stream_id=2) == commands.seek(250, 2)


@pytest.mark.spec("RTMP 7.2.2.8")
def test_pause() -> None:
    assert request("pause", True, 2000.0) == Pause(True, 2000)
    assert request("pause", False, 2000.0) == Pause(False, 2000)
    assert request("pause") == Pause(True, -1)  # missing flag: pause
    assert request("pause", 0.0) == Pause(False, -1)
    assert request("pause", True, "x") == Pause(True, -1)
    assert Pause(True, -1).position is None and Pause(True, 0).position == 0
    assert Pause(False, 1234.9).position == 1234
    assert Pause(False, 10).to_message(message_stream_id=3) == commands.pause(False, 10, 3)


# -- round trips -------------------------------------------------------------------------------

_text = st.text(max_size=20)
_number = st.floats(allow_nan=False, allow_infinity=False)
_value = st.one_of(st.none(), st.booleans(), _number, _text)
_object = st.dictionaries(st.text(min_size=1, max_size=8), _value, max_size=5)
_kind = st.sampled_from(list(StreamType))

_requests = st.one_of(
    st.builds(Connect, _object, st.tuples() | st.tuples(_value) | st.tuples(_value, _object)),
    st.just(Close()),
    st.just(CreateStream()),
    st.builds(ReleaseStream, _text),
    st.builds(FCPublish, _text),
    st.builds(FCUnpublish, _text),
    st.builds(FCSubscribe, _text),
    st.builds(GetStreamLength, _text),
    st.builds(Publish, _text, _kind),
    st.builds(lambda n, t: Publish(n, StreamType.LIVE, t),
              _text, _text.filter(lambda t: t.lower() not in ("live", "record", "append"))),
    st.builds(Play, _text, _number, _number, st.booleans()),
    st.builds(Play2, _object),
    st.builds(DeleteStream, st.integers(0, 2**53)),
    st.just(CloseStream()),
    st.builds(ReceiveAudio, st.booleans()),
    st.builds(ReceiveVideo, st.booleans()),
    st.builds(Seek, _number),
    st.builds(Pause, st.booleans(), _number),
)


@pytest.mark.spec("RTMP 7.1.1", "RTMP 7.2.1", "RTMP 7.2.2")
@given(_requests, st.sampled_from([0, 3]), st.integers(0, 2**31), st.integers(0, 2**24))
def test_round_trip(req: Request, encoding: int, txn: int, msid: int) -> None:
    msg = req.to_message(txn, object_encoding=encoding, message_stream_id=msid)
    assert isinstance(msg, Message)
    assert msg.type == (MessageType.COMMAND_AMF3 if encoding == 3 else MessageType.COMMAND_AMF0)
    if encoding == 3:
        assert msg.data[:1] == b"\x00"  # RTMP 7.1.1: the AMF0 format selector
    decoded = decode_command(msg)
    assert decoded.name == req.name
    assert decoded.transaction_id == txn and decoded.message_stream_id == msid
    assert decoded.command_object == (req.command_object if isinstance(req, Connect) else None)
    assert decode_request(decoded) == req


@pytest.mark.spec("RTMP 7.2")
@given(st.sampled_from(sorted(REQUEST_TYPES)), st.lists(_value | _object, max_size=5),
       st.sampled_from([0, 3]))
def test_any_arguments_decode_without_error(name: str, args: list[Any], encoding: int) -> None:
    # Whatever a peer sends, reading it never raises: the lenient defaults cover it, and
    # the value read encodes again.
    got = request(name, *args, command_object=args[0] if args else None, encoding=encoding)
    assert decode_request(decode_command(got.to_message(3))) == got


# -- Enhanced RTMP capabilities in connect (ERTMP connect table) --------------------------------


@pytest.mark.spec("ERTMP Enhancing NetConnection connect Command")
def test_connect_reads_the_enhanced_caps() -> None:
    obj = {"app": "live", "fourCcList": ["av01", "vp09", "hvc1", "Opus", "*"],
           "videoFourCcInfoMap": {"*": 4.0, "vp09": 3.0},
           "audioFourCcInfoMap": {"Opus": 3.0}, "capsEx": 3.0}
    c = request("connect", command_object=obj, msid=0)
    assert isinstance(c, Connect)
    caps = c.enhanced_caps
    assert caps.fourcc_list == ("av01", "vp09", "hvc1", "Opus", "*")
    assert dict(caps.video_fourcc_info_map) == {"*": FOURCC_CAN_FORWARD, "vp09": 3}
    assert caps.caps_ex == CAPS_EX_RECONNECT | CAPS_EX_MULTITRACK and caps.enhanced
    assert caps.has(CAPS_EX_RECONNECT) and caps.has(CAPS_EX_MULTITRACK)
    assert not caps.has(CAPS_EX_MOD_EX) and not caps.has(CAPS_EX_TIMESTAMP_NANO_OFFSET)
    # "When this wildcard key exists, it overrides the flags set on ... specific codecs."
    assert caps.fourcc_flags("vp09", video=True) == FOURCC_CAN_FORWARD
    assert caps.fourcc_flags("Opus", video=False) == FOURCC_CAN_DECODE | FOURCC_CAN_ENCODE
    assert caps.fourcc_flags("fLaC", video=False) == 0
    assert caps.supports("vvc1", video=True)  # "*" in the list
    # Round trip through the wire: to_properties() is what a peer reads back.
    again = request("connect", command_object={"app": "live", **caps.to_properties()}, msid=0)
    assert isinstance(again, Connect) and again.enhanced_caps == caps


@pytest.mark.spec("ERTMP Enhancing NetConnection connect Command")
def test_enhanced_caps_are_read_leniently() -> None:
    legacy = Connect({"app": "live"}).enhanced_caps
    assert legacy == EnhancedCaps() and not legacy.enhanced and not legacy.has(CAPS_EX_RECONNECT)
    assert legacy.to_properties() == {}
    c = Connect({"fourCcList": "hvc1", "videoFourCcInfoMap": ["hvc1"], "capsEx": "3",
                 "audioFourCcInfoMap": {"Opus": "x", "toolong": 4.0, "mp4a": -1.0,
                                        "fLaC": math.inf, ".mp3": 4.0}})
    caps = c.enhanced_caps
    assert caps.fourcc_list == () and dict(caps.video_fourcc_info_map) == {}
    assert dict(caps.audio_fourcc_info_map) == {".mp3": 4} and caps.caps_ex is None
    # An ECMA array of indices (how some encoders write arrays) reads in index order;
    # entries that are no FourCC are skipped; capsEx keeps its 32 bits.
    odd = Connect({"fourCcList": {"1": "hvc1", "0": "av01", "2": 5.0, "x": "vp09"},
                   "capsEx": 15.9}).enhanced_caps
    assert odd.fourcc_list == ("av01", "hvc1") and odd.caps_ex == 15
    assert not odd.supports("vp09", video=True) and odd.supports("hvc1", video=True)


@given(st.dictionaries(st.sampled_from(["fourCcList", "videoFourCcInfoMap", "audioFourCcInfoMap",
                                        "capsEx", "app"]),
                       st.recursive(st.none() | st.booleans() | st.floats() | st.text(max_size=5),
                                    lambda inner: st.lists(inner, max_size=4)
                                    | st.dictionaries(st.text(max_size=5), inner, max_size=4),
                                    max_leaves=12)))
@example({"fourCcList": {"\u00b2": "hvc1"}})  # "²".isdigit() is true; int("²") raises
@example({"fourCcList": {"1" * 5000: "hvc1"}})  # int() refuses a 5,000-digit string
@pytest.mark.spec("ERTMP Enhancing NetConnection connect Command")
def test_enhanced_caps_never_raise(obj: dict[str, Any]) -> None:
    caps = Connect(obj).enhanced_caps
    assert all(len(f) == 4 or f == "*" for f in caps.fourcc_list)
    assert caps.caps_ex is None or 0 <= caps.caps_ex < 2**32
    assert EnhancedCaps.from_object(caps.to_properties()) == caps

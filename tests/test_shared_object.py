"""RTMP 7.1.3: shared object messages (types 19 and 16), decoded and encoded.

Every byte vector here is built by hand with ``struct.pack`` from the documented
layout (refs/shared-objects.md), never from :func:`rtmp.shared_object.encode`:

    [type 16: U8 0x00] name U16+UTF-8, version U32, flags U32 + U32,
    events: U8 type, U32 length, data
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtmp import LimitExceededError, ProtocolError
from rtmp.message import Message, MessageType
from rtmp.shared_object import (
    SharedObjectMessage,
    SOEvent,
    SOEventType,
    SOLimits,
    decode,
    describe,
    encode,
    from_message,
    summary,
    to_message,
)

SPEC = pytest.mark.spec("RTMP 7.1.3", "RTMP 7.1.3 [de-facto]")


# -- the layout, field by field (refs/shared-objects.md) -----------------------


def bare(text: str) -> bytes:
    """A bare string: U16 byte length + UTF-8, no AMF marker."""
    raw = text.encode("utf-8")
    return struct.pack(">H", len(raw)) + raw


def header(name: str, version: int = 0, persistent: bool = False, amf3: bool = False) -> bytes:
    prefix = b"\x00" if amf3 else b""
    return prefix + bare(name) + struct.pack(">III", version, 2 if persistent else 0, 0)


def event(kind: int, data: bytes = b"") -> bytes:
    return struct.pack(">BI", kind, len(data)) + data


def amf0_number(value: float) -> bytes:
    return b"\x00" + struct.pack(">d", value)  # AMF0 2.2


def amf0_string(text: str) -> bytes:
    return b"\x02" + bare(text)  # AMF0 2.4


AMF0_TRUE = b"\x01\x01"  # AMF0 2.3
AMF0_NULL = b"\x05"  # AMF0 2.7
AMF3_INT_5 = b"\x04\x05"  # AMF3 3.6: integer marker, U29 5
AMF3_STRING_HI = b"\x06\x05hi"  # AMF3 3.8: marker, U29 (2 << 1 | 1), the bytes


# -- decoding hand-built bodies ------------------------------------------------


class TestHeader:
    @SPEC
    def test_name_version_flags(self) -> None:
        so = decode(header("chat", version=7, persistent=True))
        assert so == SharedObjectMessage("chat", 7, True, (), False)

    @SPEC
    def test_transient_flag_zero(self) -> None:
        so = decode(header("room/lobby", version=0xFFFFFFFF))
        assert so.persistent is False and so.version == 0xFFFFFFFF and so.events == ()

    @SPEC
    def test_type16_leading_format_byte(self) -> None:
        so = decode(header("chat", 3, amf3=True), amf3=True)
        assert so == SharedObjectMessage("chat", 3, False, (), True)
        assert so.message_type == MessageType.SHARED_OBJECT_AMF3

    @SPEC
    def test_type16_other_format_byte_refused(self) -> None:
        with pytest.raises(ProtocolError, match=r"0x03, not the format byte 0x00.*RTMP 7\.1\.3"):
            decode(b"\x03" + header("chat"), amf3=True)

    @SPEC
    def test_utf8_name(self) -> None:
        assert decode(header("día")).name == "día"

    @SPEC
    @pytest.mark.parametrize("cut", [0, 1, 3, 6, 13])
    def test_truncated_header(self, cut: int) -> None:
        body = header("chat")[:cut]
        with pytest.raises(ProtocolError) as info:
            decode(body)
        assert "RTMP 7.1.3" in str(info.value)

    @SPEC
    def test_name_not_utf8(self) -> None:
        body = struct.pack(">H", 2) + b"\xff\xfe" + struct.pack(">III", 0, 0, 0)
        with pytest.raises(ProtocolError, match="UTF-8"):
            decode(body)


class TestEvents:
    @SPEC
    @pytest.mark.parametrize(
        "kind, made",
        [
            (1, SOEvent.use()),
            (2, SOEvent.release()),
            (8, SOEvent.clear()),
            (11, SOEvent.use_success()),
        ],
    )
    def test_events_without_data(self, kind: int, made: SOEvent) -> None:
        so = decode(header("o") + event(kind))
        assert so.events == (made,)
        assert so.events[0].type == SOEventType(kind)

    @SPEC
    def test_request_change_amf0(self) -> None:
        so = decode(header("o") + event(3, bare("count") + amf0_number(42.0)))
        assert so.events == (SOEvent.request_change("count", 42.0),)

    @SPEC
    def test_change_amf0_object(self) -> None:
        obj = b"\x03" + bare("a") + AMF0_TRUE + b"\x00\x00\x09"  # AMF0 2.5
        so = decode(header("o") + event(4, bare("slot") + obj))
        assert so.events == (SOEvent.change("slot", {"a": True}),)

    @SPEC
    @pytest.mark.parametrize("kind", [5, 9, 10])
    def test_key_only_events(self, kind: int) -> None:
        so = decode(header("o") + event(kind, bare("name")))
        assert so.events == (SOEvent(SOEventType(kind), key="name"),)

    @SPEC
    def test_send_message_handler_is_full_amf0_string(self) -> None:
        data = amf0_string("onChat") + amf0_string("hi") + amf0_number(1.0)
        so = decode(header("o") + event(6, data))
        assert so.events == (SOEvent.send_message("onChat", "hi", 1.0),)

    @SPEC
    def test_send_message_without_arguments(self) -> None:
        so = decode(header("o") + event(6, amf0_string("ping")))
        assert so.events[0].handler == "ping" and so.events[0].args == ()

    @SPEC
    def test_send_message_handler_not_a_string(self) -> None:
        with pytest.raises(ProtocolError, match="handler"):
            decode(header("o") + event(6, amf0_number(1.0)))

    @SPEC
    def test_status_code_then_level(self) -> None:
        data = bare("SharedObject.NoWriteAccess") + bare("error")
        so = decode(header("o") + event(7, data))
        assert so.events == (SOEvent.status("SharedObject.NoWriteAccess", "error"),)

    @SPEC
    def test_status_swapped_order_tolerated(self) -> None:
        """Quirk: one server writes level before code; a known level first is swapped back."""
        data = bare("warning") + bare("SharedObject.Flush.Failed")
        so = decode(header("o") + event(7, data))
        assert so.events[0].code == "SharedObject.Flush.Failed"
        assert so.events[0].level == "warning"

    @SPEC
    def test_several_events_in_one_message(self) -> None:
        body = (
            header("o", 4)
            + event(11)
            + event(8)
            + event(4, bare("a") + amf0_number(1.0))
            + event(4, bare("b") + amf0_string("x"))
        )
        so = decode(body)
        assert [e.type for e in so.events] == [11, 8, 4, 4]
        assert so.events[2:] == (SOEvent.change("a", 1.0), SOEvent.change("b", "x"))

    @SPEC
    @pytest.mark.parametrize("kind", [0, 12, 13, 14, 200])
    def test_unknown_event_skipped_by_length(self, kind: int) -> None:
        body = header("o") + event(kind, b"\x01\x02\x03\xff") + event(5, bare("k"))
        so = decode(body)
        assert so.events[0] == SOEvent(kind, raw=b"\x01\x02\x03\xff")
        assert so.events[0].type == kind and so.events[0].name == f"unknown event {kind}"
        assert so.events[1] == SOEvent.success("k")

    @SPEC
    def test_change_without_value_reads_none(self) -> None:
        so = decode(header("o") + event(4, bare("k")))
        assert so.events == (SOEvent.change("k", None),)

    @SPEC
    def test_avmplus_value_in_type19(self) -> None:
        """Quirk: some clients send 0x11 + AMF3 values inside type 19 (AMF0 3.1)."""
        so = decode(header("o") + event(3, bare("n") + b"\x11" + AMF3_INT_5))
        assert so.events == (SOEvent.request_change("n", 5),)


class TestType16Values:
    @SPEC
    def test_bare_amf3_value(self) -> None:
        body = header("o", amf3=True) + event(4, bare("greeting") + AMF3_STRING_HI)
        so = decode(body, amf3=True)
        assert so.events == (SOEvent.change("greeting", "hi"),)
        assert so.amf3

    @SPEC
    def test_amf0_with_avmplus_value_tolerated(self) -> None:
        body = header("o", amf3=True) + event(3, bare("n") + b"\x11" + AMF3_INT_5)
        assert decode(body, amf3=True).events == (SOEvent.request_change("n", 5),)

    @SPEC
    def test_amf3_dictionary_still_read(self) -> None:
        """0x11 is also the AMF3 dictionary marker (AMF3 3.15): empty, weak keys off."""
        body = header("o", amf3=True) + event(4, bare("d") + b"\x11\x01\x00")
        value = decode(body, amf3=True).events[0].value
        assert type(value).__name__ == "Dictionary" and len(value) == 0

    @SPEC
    def test_send_message_in_type16(self) -> None:
        data = amf0_string("onMsg") + amf0_string("hi") + b"\x11" + AMF3_INT_5
        so = decode(header("o", amf3=True) + event(6, data), amf3=True)
        assert so.events == (SOEvent.send_message("onMsg", "hi", 5),)


class TestMalformed:
    @SPEC
    def test_lying_event_length(self) -> None:
        body = header("o") + struct.pack(">BI", 4, 1000) + bare("k") + amf0_number(1.0)
        with pytest.raises(ProtocolError, match=r"claims 1000 data bytes.*RTMP 7\.1\.3"):
            decode(body)

    @SPEC
    def test_truncated_event_header(self) -> None:
        with pytest.raises(ProtocolError, match="event 1 header"):
            decode(header("o") + b"\x04\x00\x00")

    @SPEC
    def test_key_overruns_event(self) -> None:
        with pytest.raises(ProtocolError, match="overruns"):
            decode(header("o") + event(5, struct.pack(">H", 10) + b"abc"))

    @SPEC
    def test_bytes_after_key_of_success(self) -> None:
        with pytest.raises(ProtocolError, match="after its fields"):
            decode(header("o") + event(5, bare("k") + b"\x00"))

    @SPEC
    def test_use_with_data(self) -> None:
        with pytest.raises(ProtocolError, match="has none"):
            decode(header("o") + event(1, b"\x00"))

    @SPEC
    def test_value_shorter_than_event(self) -> None:
        data = bare("k") + amf0_number(1.0) + AMF0_NULL
        with pytest.raises(ProtocolError, match="after its value"):
            decode(header("o") + event(4, data))

    @SPEC
    def test_truncated_value(self) -> None:
        data = bare("k") + amf0_number(1.0)[:5]
        with pytest.raises(ProtocolError, match=r"value.*RTMP 7\.1\.3"):
            decode(header("o") + event(4, data))

    @SPEC
    def test_event_cannot_read_into_the_next(self) -> None:
        """A value is bounded by its own event's length, never by the body's."""
        number = amf0_number(1.0)
        body = header("o") + event(4, bare("k") + number[:4]) + number[4:]
        with pytest.raises(ProtocolError):
            decode(body)

    @SPEC
    def test_errors_are_rtmp_errors(self) -> None:
        from rtmp import RTMPError

        with pytest.raises(RTMPError):
            decode(b"\xff")


class TestLimits:
    @SPEC
    def test_name_length(self) -> None:
        with pytest.raises(LimitExceededError) as info:
            decode(header("x" * 11), limits=SOLimits(max_name_length=10))
        assert info.value.limit == "max_name_length" and "RTMP 7.1.3" in str(info.value)
        assert info.value.clause == "RTMP 7.1.3 [de-facto]"

    @SPEC
    def test_key_length(self) -> None:
        body = header("o") + event(5, bare("k" * 11))
        with pytest.raises(LimitExceededError, match="max_name_length"):
            decode(body, limits=SOLimits(max_name_length=10))

    @SPEC
    def test_events_per_message(self) -> None:
        body = header("o") + event(1) * 4
        assert len(decode(body, limits=SOLimits(max_events=4)).events) == 4
        with pytest.raises(LimitExceededError, match=r"max_events.*RTMP 7\.1\.3|RTMP 7\.1\.3.*max_events"):
            decode(body + event(1), limits=SOLimits(max_events=4))

    @SPEC
    def test_value_depth(self) -> None:
        nested = b"\x0a" + struct.pack(">I", 1)  # AMF0 2.12 strict array of one element
        value = nested * 6 + AMF0_NULL
        body = header("o") + event(4, bare("k") + value)
        assert decode(body, limits=SOLimits(max_value_depth=6)).events[0].value == [[[[[[None]]]]]]
        with pytest.raises(ProtocolError, match=r"max_depth.*RTMP 7\.1\.3|RTMP 7\.1\.3.*max_depth"):
            decode(body, limits=SOLimits(max_value_depth=5))

    @SPEC
    def test_message_size(self) -> None:
        body = header("o") + event(12, b"\x00" * 100)
        with pytest.raises(LimitExceededError, match="max_message_size"):
            decode(body, limits=SOLimits(max_message_size=len(body) - 1))
        assert decode(body, limits=SOLimits(max_message_size=len(body))).events[0].type == 12

    @SPEC
    def test_one_mebibyte_message_with_default_limits(self) -> None:
        value = b"\x0c" + struct.pack(">I", 1 << 19) + b"a" * (1 << 19)  # AMF0 2.14 long string
        body = header("big") + event(4, bare("k") + value)
        assert len(decode(body).events[0].value) == 1 << 19
        with pytest.raises(LimitExceededError):
            decode(body + event(12, b"\x00" * (1 << 20)))

    def test_limits_validated(self) -> None:
        with pytest.raises(ValueError):
            SOLimits(max_value_depth=0)
        with pytest.raises(ValueError):
            SOLimits(max_events=-1)


# -- encoding, compared with the hand-built layout -----------------------------


class TestEncode:
    @SPEC
    def test_type19_bytes(self) -> None:
        so = SharedObjectMessage(
            "chat", 2, True,
            (SOEvent.use_success(), SOEvent.clear(), SOEvent.change("n", 1.0),
             SOEvent.success("n"), SOEvent.status("SharedObject.Bad", "error")),
        )
        assert encode(so) == (
            header("chat", 2, persistent=True)
            + event(11) + event(8)
            + event(4, bare("n") + amf0_number(1.0))
            + event(5, bare("n"))
            + event(7, bare("SharedObject.Bad") + bare("error"))
        )

    @SPEC
    def test_type16_bytes(self) -> None:
        so = SharedObjectMessage(
            "o", 0, False, (SOEvent.request_change("n", 5), SOEvent.remove("x")), amf3=True
        )
        assert encode(so) == (
            header("o", amf3=True) + event(3, bare("n") + AMF3_INT_5) + event(9, bare("x"))
        )

    @SPEC
    def test_send_message_bytes(self) -> None:
        so = SharedObjectMessage("o", 0, False, (SOEvent.send_message("onChat", "hi"),))
        assert encode(so) == header("o") + event(6, amf0_string("onChat") + amf0_string("hi"))

    @SPEC
    def test_unknown_event_written_back_raw(self) -> None:
        so = SharedObjectMessage("o", 0, False, (SOEvent(13, raw=b"\xaa\xbb"),))
        assert encode(so) == header("o") + event(13, b"\xaa\xbb")

    @SPEC
    @pytest.mark.parametrize("amf3", [False, True])
    def test_use_release_request_remove(self, amf3: bool) -> None:
        so = SharedObjectMessage(
            "o", 9, False, (SOEvent.use(), SOEvent.request_remove("k"), SOEvent.release()), amf3
        )
        assert encode(so) == header("o", 9, amf3=amf3) + event(1) + event(10, bare("k")) + event(2)

    def test_local_mistakes_are_value_errors(self) -> None:
        with pytest.raises(ValueError):
            encode(SharedObjectMessage("o", 0, False, (SOEvent(SOEventType.CHANGE),)))
        with pytest.raises(ValueError):
            encode(SharedObjectMessage("x" * 70000))
        with pytest.raises(ValueError):
            encode(SharedObjectMessage("o", 0, False, (SOEvent(SOEventType.STATUS),)))
        with pytest.raises(ValueError):
            SharedObjectMessage("o", version=-1)
        with pytest.raises(ValueError):
            SOEvent(256)

    @SPEC
    def test_message_round_trip(self) -> None:
        so = SharedObjectMessage("o", 1, False, (SOEvent.use(),), amf3=True)
        msg = to_message(so, stream_id=0, timestamp=5)
        assert msg.type == MessageType.SHARED_OBJECT_AMF3 and msg.timestamp == 5
        assert msg.data == header("o", 1, amf3=True) + event(1)
        assert from_message(msg) == so
        type19 = Message(MessageType.SHARED_OBJECT_AMF0, header("o") + event(2))
        assert from_message(type19).events == (SOEvent.release(),)
        with pytest.raises(ValueError):
            from_message(Message(MessageType.COMMAND_AMF0, b""))

    @SPEC
    def test_describe_one_line_per_event(self) -> None:
        body = (header("o", 3) + event(4, bare("n") + amf0_number(2.0))
                + event(6, amf0_string("go")) + event(14, b"\x00"))
        so = decode(body)
        lines = describe(so)
        assert lines == [
            "Change 'n' = 2.0  (RTMP 7.1.3 [de-facto])",
            "SendMessage go()  (RTMP 7.1.3 [de-facto])",
            "unknown event 14, 1 data bytes skipped  (RTMP 7.1.3 [de-facto])",
        ]
        assert summary(so).startswith("shared object 'o' version 3 transient AMF0, 3 events")


# -- round trips ---------------------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_amf0_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False), _text),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(_text.filter(bool), children, max_size=3),
    ),
    max_leaves=8,
)
_amf3_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**28), 2**28 - 1),
              st.floats(allow_nan=False), _text, st.binary(max_size=6)),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(_text.filter(bool), children, max_size=3),
    ),
    max_leaves=8,
)


def _events(values: Any) -> Any:
    key = _text
    return st.one_of(
        st.sampled_from([SOEvent.use(), SOEvent.release(), SOEvent.clear(), SOEvent.use_success()]),
        st.builds(SOEvent.request_change, key, values),
        st.builds(SOEvent.change, key, values),
        st.builds(SOEvent.success, key),
        st.builds(SOEvent.remove, key),
        st.builds(SOEvent.request_remove, key),
        st.builds(lambda h, a: SOEvent.send_message(h, *a), _text, st.lists(values, max_size=3)),
        st.builds(SOEvent.status, _text.filter(lambda t: t not in ("error", "warning", "status")),
                  st.sampled_from(["error", "warning", "status"])),
        st.builds(lambda t, r: SOEvent(t, raw=r), st.integers(12, 255), st.binary(max_size=8)),
    )


def _messages(amf3: bool) -> Any:
    return st.builds(
        SharedObjectMessage,
        _text,
        st.integers(0, 0xFFFFFFFF),
        st.booleans(),
        st.lists(_events(_amf3_values if amf3 else _amf0_values), max_size=6).map(tuple),
        st.just(amf3),
    )


class TestRoundTrip:
    @SPEC
    @settings(max_examples=150)
    @given(_messages(False))
    def test_type19(self, so: SharedObjectMessage) -> None:
        assert decode(encode(so)) == so

    @SPEC
    @settings(max_examples=150)
    @given(_messages(True))
    def test_type16(self, so: SharedObjectMessage) -> None:
        assert decode(encode(so), amf3=True) == so

    @SPEC
    @settings(max_examples=150)
    @given(st.binary(max_size=64), st.booleans())
    def test_garbage_is_an_rtmp_error_or_a_message(self, junk: bytes, amf3: bool) -> None:
        from rtmp import RTMPError

        for body in (junk, header("o", amf3=amf3) + junk):
            try:
                decode(body, amf3=amf3)
            except RTMPError as exc:
                assert "RTMP 7.1.3" in str(exc)


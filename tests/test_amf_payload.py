"""rtmp.amf: command and data payloads of message types 20/18 (AMF0) and 17/15 (AMF3)."""

from __future__ import annotations

import pytest

from rtmp import MessageType, amf0, amf3
from rtmp.amf import FORMAT_SELECTOR_AMF0, decode_payload, encode_payload

CONNECT = ["connect", 1, {"app": "live", "objectEncoding": 3}]
# RTMP 7.2.1.1 connect, object_encoding 0: plain AMF0 values.
CONNECT_AMF0 = (
    bytes.fromhex("02 0007") + b"connect"
    + bytes.fromhex("00 3FF0000000000000")
    + bytes.fromhex("03 0003") + b"app" + bytes.fromhex("02 0004") + b"live"
    + bytes.fromhex("000E") + b"objectEncoding" + bytes.fromhex("00 4008000000000000")
    + bytes.fromhex("000009")
)
# The same with object_encoding 3: selector, AMF0 name and txn, then 0x11 + AMF3 object.
CONNECT_AMF3 = (
    b"\x00"
    + bytes.fromhex("02 0007") + b"connect"
    + bytes.fromhex("00 3FF0000000000000")
    + bytes.fromhex("11 0A 0B 01 07") + b"app" + bytes.fromhex("06 09") + b"live"
    + bytes.fromhex("1D") + b"objectEncoding" + bytes.fromhex("04 03 01")
)


class TestEncode:
    @pytest.mark.spec("RTMP 7.1.1", "AMF0 2.1")
    def test_amf0(self) -> None:
        assert encode_payload(CONNECT, 0) == CONNECT_AMF0

    @pytest.mark.spec("RTMP 7.1.1", "AMF0 3.1")
    def test_amf3_switches_non_scalars(self) -> None:
        assert encode_payload(CONNECT, 3) == CONNECT_AMF3

    @pytest.mark.spec("RTMP 7.1.1", "AMF0 3.1")
    def test_amf3_scalars_stay_amf0(self) -> None:
        payload = encode_payload(["onStatus", 0, None, amf0.UNDEFINED, True, "s"], 3)
        assert payload == b"\x00" + amf0.encode_all(["onStatus", 0, None, amf0.UNDEFINED, True, "s"])

    @pytest.mark.spec("RTMP 7.1.1", "AMF0 3.1", "AMF3 2.2")
    def test_every_switched_value_has_fresh_tables(self) -> None:
        payload = encode_payload(["x", {"k": "v"}, {"k": "v"}], 3)
        half = bytes.fromhex("11 0A 0B 01 03 6B 06 03 76 01")
        assert payload.endswith(half + half)

    @pytest.mark.spec("RTMP 7.1.1", "AMF0 2.9")
    def test_amf0_payload_is_one_reference_context(self) -> None:
        info = {"code": "x"}
        payload = encode_payload(["_result", 1, info, info], 0, use_references=True)
        assert payload.endswith(b"\x07\x00\x00")
        decoded = decode_payload(payload, MessageType.COMMAND_AMF0)
        assert decoded[3] is decoded[2] and decoded[3] == info

    @pytest.mark.spec("AMF0 2.9 [impl: ffmpeg ff_amf_tag_size has no reference case]")
    def test_no_amf0_references_by_default(self) -> None:
        info = {"code": "x"}
        payload = encode_payload(["_result", 1, info, info], 0)
        assert payload == amf0.encode_all(["_result", 1, info, dict(info)])
        cyclic: list = []
        cyclic.append(cyclic)
        with pytest.raises(amf0.EncodeError, match="cycle"):
            encode_payload(["x", cyclic], 0)

    def test_bad_object_encoding(self) -> None:
        with pytest.raises(ValueError, match="object_encoding"):
            encode_payload([], 1)

    @pytest.mark.spec("RTMP 7.1.1")
    def test_unencodable_value(self) -> None:
        with pytest.raises(amf0.EncodeError):
            encode_payload([object()], 0)
        with pytest.raises(amf0.EncodeError):
            encode_payload([object()], 3)


class TestDecode:
    @pytest.mark.spec("RTMP 7.1.1")
    def test_amf0_command(self) -> None:
        assert decode_payload(CONNECT_AMF0, MessageType.COMMAND_AMF0) == CONNECT
        assert decode_payload(CONNECT_AMF0, 18) == CONNECT

    @pytest.mark.spec("RTMP 7.1.1", "AMF0 3.1")
    def test_amf3_command(self) -> None:
        assert decode_payload(CONNECT_AMF3, MessageType.COMMAND_AMF3) == CONNECT
        assert decode_payload(CONNECT_AMF3, MessageType.DATA_AMF3) == CONNECT

    @pytest.mark.spec("RTMP 7.1.1")
    def test_selector_followed_by_plain_amf0(self) -> None:
        assert decode_payload(b"\x00" + CONNECT_AMF0, 17) == CONNECT

    @pytest.mark.spec("RTMP 7.1.2")
    def test_empty_payloads(self) -> None:
        assert decode_payload(b"", 17) == [] and decode_payload(b"", 20) == []
        assert decode_payload(b"\x00", 15) == []

    @pytest.mark.spec("RTMP 7.1.1 [impl: selector byte omitted]")
    def test_missing_selector_tolerated_before_a_string(self) -> None:
        assert decode_payload(CONNECT_AMF0, 17) == CONNECT
        with pytest.raises(amf0.DecodeError, match="format selector"):
            decode_payload(CONNECT_AMF0, 17, strict=True)

    @pytest.mark.spec("RTMP 7.1.1")
    def test_other_first_bytes_are_refused(self) -> None:
        with pytest.raises(amf0.DecodeError, match="offset 0: type 17 payload starts with 0x05"):
            decode_payload(b"\x05", 17)

    @pytest.mark.spec("RTMP 7.1.1 [impl: pure AMF3 payload]")
    def test_pure_amf3_after_the_selector(self) -> None:
        payload = b"\x00" + amf3.encode_all(["connect", 1, {"app": "live"}, "app"])
        assert decode_payload(payload, 17) == ["connect", 1, {"app": "live"}, "app"]
        with pytest.raises(amf0.DecodeError):
            decode_payload(payload, 17, strict=True)

    @pytest.mark.spec("RTMP 7.1.2", "AMF0 2.10")
    def test_data_message_metadata(self) -> None:
        metadata = amf0.ECMAArray(duration=0.0, width=640.0)
        payload = encode_payload(["@setDataFrame", "onMetaData", metadata], 0)
        decoded = decode_payload(payload, MessageType.DATA_AMF0)
        assert decoded == ["@setDataFrame", "onMetaData", metadata]
        assert type(decoded[2]) is amf0.ECMAArray

    def test_other_message_types_are_refused(self) -> None:
        with pytest.raises(ValueError, match="message type 8"):
            decode_payload(b"", 8)

    @pytest.mark.spec("RTMP 7.1.1")
    def test_malformed(self) -> None:
        with pytest.raises(amf0.DecodeError):
            decode_payload(CONNECT_AMF3[:-2], 17)
        with pytest.raises(amf0.DecodeError):
            decode_payload(b"\x00\x02\x00", 17)

    def test_selector_constant(self) -> None:
        assert FORMAT_SELECTOR_AMF0 == 0

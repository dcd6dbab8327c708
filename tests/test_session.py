"""RTMP 5.4 and 7.1.7 handled by the sans-IO session: acks, windows, bandwidth, pings."""

from __future__ import annotations

from typing import List

import pytest

from rtmp import Message, MessageType
from rtmp import control, user_control
from rtmp.chunk import ChunkDecoder, ChunkEncoder
from rtmp.control import LimitType
from rtmp.session import Session


def wire(*messages: Message, chunk_size: int = 128) -> bytes:
    encoder = ChunkEncoder(chunk_size)
    return b"".join(encoder.encode(m) for m in messages)


def peer_decoder(session: Session) -> ChunkDecoder:
    """The decoder of the peer that receives everything ``session`` sends."""
    if not hasattr(session, "test_peer"):
        session.test_peer = ChunkDecoder()  # type: ignore[attr-defined]
    return session.test_peer  # type: ignore[attr-defined,no-any-return]


def replies(session: Session) -> List[Message]:
    """What the session wants to send, decoded by a peer that has seen all of it."""
    decoder = peer_decoder(session)
    decoder.receive_data(session.pending_replies())
    return list(decoder.messages())


def media(ts: int, size: int = 1000) -> Message:
    return Message(type=MessageType.VIDEO, data=bytes(size), timestamp=ts, message_stream_id=1)


class TestAcknowledgement:
    @pytest.mark.spec("RTMP 5.4.3", "RTMP 5.4.4")
    def test_ack_sent_when_window_crossed(self) -> None:
        session = Session()
        session.receive_data(wire(control.window_ack_size(3000)))
        assert session.next_message() is None  # handled inside
        assert session.ack_window == 3000
        assert replies(session) == []
        data = wire(*[media(i) for i in range(1, 4)], chunk_size=128)
        session.receive_data(data[:2000])
        assert not session.has_replies()
        session.receive_data(data[2000:])
        acks = replies(session)
        assert [m.type for m in acks] == [MessageType.ACKNOWLEDGEMENT]
        assert control.parse_acknowledgement(acks[0].data) == session.bytes_received

    @pytest.mark.spec("RTMP 5.4.3")
    def test_no_ack_before_window_known(self) -> None:
        session = Session()
        session.receive_data(wire(*[media(i) for i in range(10)]))
        assert [m.type for m in iter(session.next_message, None)] == [9] * 10
        assert not session.has_replies()

    @pytest.mark.spec("RTMP 5.4.3")
    def test_sequence_number_wraps(self) -> None:
        session = Session()
        session.ack_window = 100
        session.bytes_received = (1 << 32) - 50
        session._acknowledged = session.bytes_received
        session.receive_data(wire(media(0, 200)))
        (ack,) = replies(session)
        assert control.parse_acknowledgement(ack.data) == session.bytes_received - (1 << 32)

    @pytest.mark.spec("RTMP 5.4.3")
    def test_peer_acknowledgement_recorded(self) -> None:
        session = Session()
        session.receive_data(wire(control.acknowledgement(4242)))
        assert session.next_message() is None and session.peer_acknowledged == 4242


class TestSetPeerBandwidth:
    def feed(self, session: Session, size: int, limit: int) -> List[Message]:
        session.receive_data(wire(control.set_peer_bandwidth(size, limit)))
        assert session.next_message() is None
        return replies(session)

    @pytest.mark.spec("RTMP 5.4.5")
    def test_hard_limit_answered_with_window_ack_size(self) -> None:
        session = Session()
        (answer,) = self.feed(session, 2_500_000, LimitType.HARD)
        assert answer.type == MessageType.WINDOW_ACK_SIZE
        assert control.parse_window_ack_size(answer.data) == 2_500_000
        assert session.peer_bandwidth == 2_500_000
        assert self.feed(session, 2_500_000, LimitType.HARD) == []  # unchanged: no answer

    @pytest.mark.spec("RTMP 5.4.5")
    def test_soft_limit_takes_the_smaller(self) -> None:
        session = Session()
        self.feed(session, 1_000_000, LimitType.HARD)
        assert self.feed(session, 5_000_000, LimitType.SOFT) == []
        assert session.peer_bandwidth == 1_000_000
        (answer,) = self.feed(session, 500_000, LimitType.SOFT)
        assert control.parse_window_ack_size(answer.data) == 500_000

    @pytest.mark.spec("RTMP 5.4.5")
    def test_soft_limit_without_previous(self) -> None:
        session = Session()
        self.feed(session, 700_000, LimitType.SOFT)
        assert session.peer_bandwidth == 700_000

    @pytest.mark.spec("RTMP 5.4.5")
    def test_dynamic_ignored_unless_previous_was_hard(self) -> None:
        session = Session()
        assert self.feed(session, 1_000_000, LimitType.DYNAMIC) == []
        assert session.peer_bandwidth is None
        self.feed(session, 1_000_000, LimitType.HARD)
        (answer,) = self.feed(session, 2_000_000, LimitType.DYNAMIC)
        assert session.peer_bandwidth == 2_000_000
        assert session.peer_limit_type == LimitType.HARD
        assert answer.type == MessageType.WINDOW_ACK_SIZE

    @pytest.mark.spec("RTMP 5.4.5")
    def test_no_answer_when_window_already_sent(self) -> None:
        session = Session()
        peer = peer_decoder(session)
        peer.receive_data(session.send(control.window_ack_size(2_500_000)))
        assert [m.type for m in peer.messages()] == [MessageType.WINDOW_ACK_SIZE]
        assert self.feed(session, 2_500_000, LimitType.HARD) == []


class TestPing:
    @pytest.mark.spec("RTMP 7.1.7")
    def test_ping_request_answered(self) -> None:
        session = Session()
        session.receive_data(wire(user_control.ping_request(987654)))
        assert session.next_message() is None
        (pong,) = replies(session)
        event = user_control.decode(pong.data)
        assert event.name == "PING_RESPONSE" and event.timestamp == 987654

    @pytest.mark.spec("RTMP 7.1.7")
    def test_ping_response_recorded_and_other_events_delivered(self) -> None:
        session = Session()
        session.receive_data(wire(user_control.ping_response(5), user_control.stream_begin(1)))
        msg = session.next_message()
        assert msg is not None and user_control.decode(msg.data).name == "STREAM_BEGIN"
        assert session.last_ping_response == 5


class TestDeliverControl:
    @pytest.mark.spec("RTMP 5.4", "RTMP 5.4.1", "RTMP 5.4.2")
    def test_control_messages_delivered_after_handling(self) -> None:
        session = Session(deliver_control=True)
        session.receive_data(wire(
            control.set_chunk_size(512), user_control.ping_request(1),
            user_control.ping_response(1),
        ))
        kinds = [m.type for m in iter(session.next_message, None)]
        assert kinds == [1, 4, 4]
        assert session.in_chunk_size == 512
        session.receive_data(wire(control.abort(9)))
        assert session.next_message().type == MessageType.ABORT  # type: ignore[union-attr]


class TestStrictControlStream:
    @pytest.mark.spec("RTMP 5.4")
    def test_strict_rejects_control_on_a_media_stream(self) -> None:
        wrong = control.window_ack_size(1000).replace(message_stream_id=1)
        lenient = Session()
        lenient.receive_data(wire(wrong))
        assert lenient.next_message() is None and lenient.ack_window == 1000
        strict = Session(strict=True)
        strict.receive_data(wire(wrong))
        with pytest.raises(Exception, match="RTMP 5.4"):
            strict.next_message()


class TestSending:
    @pytest.mark.spec("RTMP 5.4.1")
    def test_set_chunk_size_switches_after_the_message(self) -> None:
        session = Session()
        first = session.send(control.set_chunk_size(1000))
        assert session.out_chunk_size == 1000
        data = first + session.send(media(0, 900))
        decoder = ChunkDecoder()
        decoder.receive_data(data)
        assert [m.type for m in decoder.messages()] == [1, 9]

    @pytest.mark.spec("RTMP 5.3.1.2.1")
    def test_note_sent_keeps_state(self) -> None:
        session = Session()
        msg = media(10)
        session.note_sent(msg)
        assert session.send(media(20))[0] >> 6 == 2

    @pytest.mark.spec("RTMP 5.3.1.2.1", "RTMP 5.4.1", "RTMP 7.2.1.1")
    @pytest.mark.parametrize("before", ["fresh", "acked", "chunk-size"])
    def test_send_repeated_is_send(self, before: str) -> None:
        """connect's replies are chunked once and reused: the peer reads the same
        messages as from send(), and the messages after them too, whatever the session
        sent before (a repeated batch starts each chunk stream with a type 0 header)."""
        from rtmp.netconnection import _connect_replies

        batch = _connect_replies(2_500_000, 4096, 0, 1.0, True)
        later = [user_control.stream_begin(1), media(0, 5000), media(40, 5000),
                 control.window_ack_size(1000), *batch[4:]]
        results = []
        for repeated in (False, True, True):  # the second repeated call uses the cache
            session = Session()
            sent = b""
            if before == "acked":
                sent += session.send(control.acknowledgement(77))
            elif before == "chunk-size":
                sent += session.send(control.set_chunk_size(300))
            if repeated:
                sent += session.send_repeated(batch)
            else:
                sent += b"".join(session.send(m) for m in batch)
            assert session.out_chunk_size == 4096 and session.window_ack_size_sent == 2_500_000
            sent += b"".join(session.send(m) for m in later)
            decoder = ChunkDecoder()
            decoder.receive_data(sent)
            results.append([(m.type, m.data, m.timestamp, m.message_stream_id, m.csid)
                            for m in decoder.messages()])
        assert results[0] == results[1] == results[2]
        assert len(results[0]) == len(batch) + len(later) + (before != "fresh")

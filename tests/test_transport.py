"""The blocking transport over real loopback sockets: handshake, messages, timeouts, EOF."""

from __future__ import annotations

import socket
import threading
import time
from typing import Iterator, List, Optional, Tuple

import pytest

import rtmp
from rtmp import ConnectionClosedError, HandshakeError, Message, MessageType, ProtocolError
from rtmp import control, user_control
from rtmp.chunk import encode_type0
from rtmp.streams import (LivePlayer, LiveStream, defer_writes, end_deferred_writes,
                          flush_deferred_writes)
from rtmp.transport import Transport, open_connection


@pytest.fixture
def pair() -> Iterator[Tuple[Transport, Transport]]:
    """A client and a server transport on a TCP loopback connection, handshake done."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    client_sock = open_connection("127.0.0.1", port, timeout=5)
    server_sock, _ = listener.accept()
    listener.close()
    client = Transport(client_sock, role="client", conn_id="c", read_timeout=5)
    server = Transport(server_sock, role="server", conn_id="s", read_timeout=5)
    thread = threading.Thread(target=server.handshake, args=(5,))
    thread.start()
    client.handshake(5)
    thread.join(5)
    yield client, server
    client.close()
    server.close()


def video(ts: int, size: int) -> Message:
    return Message(type=MessageType.VIDEO, data=bytes([ts % 256]) * size, timestamp=ts,
                   message_stream_id=1)


def _live_player_behind_a_small_send_buffer(
        server: Transport, name: str) -> Tuple[LiveStream, LivePlayer]:
    """A live stream with one started player on ``server``, whose send buffer is 4 KiB
    (so its writes go out in part); the queue is large enough never to drop."""
    server.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    live = LiveStream("live", name)
    player = LivePlayer(server, 1, name=name, max_queue_bytes=64 << 20)
    live.attach(player)
    player.start()
    return live, player

class TestTransport:
    @pytest.mark.spec("RTMP 5.2.1", "RTMP 5.3")
    def test_messages_both_ways_with_chunk_size_changes(
        self, pair: Tuple[Transport, Transport]
    ) -> None:
        client, server = pair
        client.set_chunk_size(4096)
        sent = [video(i * 40, 10_000 + i) for i in range(5)]
        client.write_messages(sent[:2])
        for msg in sent[2:]:
            client.write_message(msg)
        got = [server.read_message() for _ in sent]
        assert [m.replace(chunk_stream_id=None) for m in got] == sent
        assert server.in_chunk_size == 4096 and client.out_chunk_size == 4096
        server.write_message(Message(type=20, data=b"reply"))
        assert client.read_message().data == b"reply"
        assert client.remote_addr is not None and client.remote_addr[0] == "127.0.0.1"
        assert server.bytes_received > 50_000 and client.bytes_sent > 50_000

    @pytest.mark.spec("RTMP 5.4.3", "RTMP 5.4.4")
    def test_acknowledgements_flow_back(self, pair: Tuple[Transport, Transport]) -> None:
        client, server = pair
        server.send_window_ack_size(10_000)
        client.write_message(Message(type=20, data=b"go"))
        assert server.read_message().data == b"go"
        client.write_message(Message(type=20, data=b"x"))
        server.read_message()  # client has now processed Window Ack Size
        time.sleep(0.05)
        server.write_messages([video(i, 4000) for i in range(10)])
        for _ in range(10):
            client.read_message()
        client.write_message(Message(type=20, data=b"end"))
        server.session.deliver_control = True
        kinds = []
        while True:
            msg = server.read_message()
            kinds.append(msg.type)
            if msg.type == 20:
                break
        assert MessageType.ACKNOWLEDGEMENT in kinds
        assert server.session.peer_acknowledged >= 40_000

    @pytest.mark.spec("RTMP 7.1.7")
    def test_ping_answered_inside(self, pair: Tuple[Transport, Transport]) -> None:
        client, server = pair
        server.write_message(user_control.ping_request(777))
        server.write_message(user_control.stream_begin(1))
        msg = client.read_message()  # the ping is answered, Stream Begin delivered
        assert user_control.decode(msg.data).name == "STREAM_BEGIN"
        client.write_message(Message(type=20, data=b"after"))
        assert server.read_message().data == b"after"
        assert server.session.last_ping_response == 777

    @pytest.mark.spec("RTMP 5.3.1.2.1")
    def test_prechunked_fan_out(self, pair: Tuple[Transport, Transport]) -> None:
        client, server = pair
        msg = video(100, 9000)
        shared = encode_type0(msg, server.out_chunk_size)
        server.write_prechunked(shared, msg)
        server.write_message(video(140, 9000))
        assert client.read_message().timestamp == 100
        assert client.read_message().timestamp == 140

    @pytest.mark.spec("RTMP 5.3.1.2.1", "RTMP 5.4.1")
    def test_fan_out_batch(self, pair: Tuple[Transport, Transport]) -> None:
        """write_fanout: pre-chunked bytes, messages to chunk, and bytes made for another
        chunk size, in one write; the encoder goes on from the last of each chunk stream."""
        client, server = pair
        size = server.out_chunk_size
        first, second, third = video(100, 300), video(140, 9000), video(180, 50)
        status = Message(type=20, data=b"status", message_stream_id=1)
        stale = video(220, 700)
        server.write_fanout([
            (encode_type0(first, size), first, size),
            (encode_type0(second, size), second, size),
            (None, status, 0),
            (encode_type0(third, size), third, size),
            (encode_type0(stale, 64), stale, 64),  # made for another size: chunked again
        ])
        server.write_message(video(260, 20))  # the encoder knows where the stream stands
        got = [client.read_message() for _ in range(6)]
        assert [(m.type, m.timestamp, len(m.data)) for m in got] == [
            (9, 100, 300), (9, 140, 9000), (20, 0, 6), (9, 180, 50), (9, 220, 700), (9, 260, 20)]

    @pytest.mark.spec("RTMP 5.3.1", "RTMP 5.4.1")
    def test_fan_out_batch_gathered_through_a_small_send_buffer(
        self, pair: Tuple[Transport, Transport]
    ) -> None:
        """write_fanout hands the kernel its parts with ``sendmsg`` (no joined copy): with a
        send buffer far smaller than the batch, and more parts than one call takes, each
        call sends part of a part and the rest follows in order; a Set Chunk Size in the
        middle re-chunks what follows it."""
        client, server = pair
        server.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        size = server.out_chunk_size
        early = [video(i, 37 + i % 300) for i in range(1500)]  # > one sendmsg's 1024 buffers
        late = [video(2000 + i, 20_000 + i) for i in range(20)]
        items: List[Tuple[Optional[bytes], Message, int]] = [
            (encode_type0(m, size), m, size) for m in early]
        items.append((None, control.set_chunk_size(1000), 0))
        items += [(encode_type0(m, size), m, size) for m in late]  # made for 128: re-chunked
        got: List[Message] = []
        reader = threading.Thread(
            target=lambda: got.extend(client.read_message() for _ in range(len(early + late))))
        reader.start()
        server.write_fanout(items)
        reader.join(20)
        assert [(m.timestamp, m.data) for m in got] == [(m.timestamp, m.data)
                                                        for m in early + late]
        assert client.in_chunk_size == 1000 == server.out_chunk_size
        assert server.bytes_sent >= sum(len(m.data) for m in early + late)

    @pytest.mark.spec("RTMP 7.2.2.1", "RTMP 5.3.1", "RTMP 5.4.1")
    def test_live_burst_through_a_small_send_buffer_arrives_whole_and_in_order(
        self, pair: Tuple[Transport, Transport]
    ) -> None:
        """A publisher's burst fanned out to a live player whose connection has a small send
        buffer: the player's writer sends its batches with sendmsg, in part each time, while
        the server changes its chunk size in the middle (what was queued for the old size
        is chunked again); the player gets every message whole, once and in order."""
        client, server = pair
        live, player = _live_player_behind_a_small_send_buffer(server, "burst")
        sent: List[Message] = []
        for i in range(400):
            if i % 50 == 0:
                data = bytes([0x17, 1]) + bytes([i % 251]) * (30_000 + i)  # AVC keyframe
            elif i % 3:
                data = bytes([0x27, 1]) + bytes([i % 251]) * (3_000 + 17 * i)  # inter-frame
            else:
                data = bytes([0xAF, 1]) + bytes([i % 251]) * 300  # AAC frame
            kind = MessageType.VIDEO if data[0] != 0xAF else MessageType.AUDIO
            sent.append(Message(type=kind, data=data, timestamp=i * 10, message_stream_id=1))
        got: List[Message] = []
        reader = threading.Thread(target=lambda: got.extend(
            client.read_message(timeout=10) for _ in range(len(sent))))
        reader.start()
        for i, message in enumerate(sent):
            live.publish_message(message)
            if i == 200:
                server.set_chunk_size(1500)
        reader.join(30)
        player.close()
        assert [(m.type, m.timestamp, m.data) for m in got] == [
            (m.type, m.timestamp, m.data) for m in sent]
        assert player.stats.dropped_messages == 0 and client.in_chunk_size == 1500

    @pytest.mark.spec("RTMP 7.2.2.1", "RTMP 5.3.1")
    def test_deferred_writes_from_the_publishers_thread_keep_order(
        self, pair: Tuple[Transport, Transport]
    ) -> None:
        """defer_writes(): the publishing thread writes to the player itself, once per
        flush, never waiting: through a small send buffer most flushes send part of a
        batch, the transport keeps the rest and sends it before anything else, while
        another thread writes to the same connection (pings, as the player's own
        connection thread does with its replies) and the player's writer sends what the
        flushes left.  Every message arrives whole, once, in order, with the other
        thread's messages between them."""
        client, server = pair
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)  # (loopback)
        live, player = _live_player_behind_a_small_send_buffer(server, "deferred")
        sent: List[Message] = []
        for i in range(300):
            if i % 40 == 0:
                data = bytes([0x17, 1]) + bytes([i % 251]) * (20_000 + i)  # AVC keyframe
            else:
                data = bytes([0x27, 1]) + bytes([i % 251]) * (2_000 + 31 * i)  # inter-frame
            sent.append(Message(type=MessageType.VIDEO, data=data, timestamp=i * 10,
                                message_stream_id=1))
        replies = 50
        got: List[Message] = []
        reader = threading.Thread(target=lambda: (time.sleep(0.2), got.extend(
            client.read_message(timeout=10) for _ in range(len(sent) + replies))))
        reader.start()
        pinger = threading.Thread(target=lambda: [
            (time.sleep(0.2 if n == 0 else 0.001),
             server.write_message(Message(type=20, data=b"reply %d" % n)))
            for n in range(replies)])
        defer_writes()
        try:
            pinger.start()
            for i, message in enumerate(sent):
                live.publish_message(message)
                if i % 7 == 6:
                    flush_deferred_writes()  # where a publisher's thread would read again
        finally:
            end_deferred_writes()
        pinger.join(10)
        reader.join(30)
        player.close()
        media = [m for m in got if m.type == MessageType.VIDEO]
        assert [(m.timestamp, m.data) for m in media] == [(m.timestamp, m.data) for m in sent]
        assert [m.data for m in got if m.type == 20] == [b"reply %d" % n for n in range(replies)]
        assert player.stats.dropped_messages == 0

    @pytest.mark.spec("RTMP 5.3.1", "RTMP 5.3.1.2.1")
    def test_fan_out_nowait_keeps_what_did_not_fit_for_the_next_write(
        self, pair: Tuple[Transport, Transport]
    ) -> None:
        """write_fanout_nowait never waits: with the peer not reading, it sends what fits
        and keeps the rest; the next write of any kind (another nowait, a plain message,
        the half-close of finish()) sends that rest first, so no chunk is split by
        another message; the peer gets everything in order."""
        client, server = pair
        server.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        size = server.out_chunk_size
        batches = [[video(10 * (3 * b + i), 60_000 + 7 * i) for i in range(3)] for b in range(2)]
        left = [server.write_fanout_nowait([(encode_type0(m, size), m, size) for m in batch])
                for batch in batches]
        assert left[0] and left[1] and left[1] > left[0]  # nothing waited; the rest is kept
        reply = Message(type=20, data=b"after the fan-out")
        last = video(1000, 90_000)
        got: List[Message] = []
        reader = threading.Thread(target=lambda: got.extend(
            client.read_message(timeout=10) for _ in range(8)))
        reader.start()
        server.write_message(reply)  # waits for room: the kept rest goes out first
        assert server.write_fanout_nowait([(encode_type0(last, size), last, size)]) is not None
        closer = threading.Thread(target=lambda: (reader.join(10), client.close()))
        closer.start()
        server.finish(10)  # the half-close sends what the last nowait kept first
        closer.join(10)
        assert [(m.timestamp, len(m.data)) for m in got] == [
            (m.timestamp, len(m.data)) for m in batches[0] + batches[1] + [reply, last]]
        assert got[6].data == reply.data and got[7].data == last.data

    def test_read_timeout(self, pair: Tuple[Transport, Transport]) -> None:
        client, _ = pair
        start = time.monotonic()
        with pytest.raises(rtmp.TimeoutError):
            client.read_message(timeout=0.2)
        assert time.monotonic() - start < 2
        with pytest.raises(TimeoutError):  # also the built-in
            client.read_message(timeout=0.05)

    def test_read_timeout_rearms(self, pair: Tuple[Transport, Transport]) -> None:
        """A short wait after a long one is not stretched to the long one (SO_RCVTIMEO
        is set again when the wait differs), and data within the wait is read."""
        client, server = pair
        with pytest.raises(rtmp.TimeoutError):
            client.read_message(timeout=0.3)
        start = time.monotonic()
        with pytest.raises(rtmp.TimeoutError):
            client.read_message(timeout=0.05)
        assert time.monotonic() - start < 0.25
        timer = threading.Timer(0.1, server.write_message, (Message(type=20, data=b"late"),))
        timer.start()
        assert client.read_message(timeout=5).data == b"late"
        timer.join()

    @pytest.mark.parametrize("write_timeout", [30.0, None])
    def test_large_write_waits_for_room(self, pair: Tuple[Transport, Transport],
                                        write_timeout: Optional[float]) -> None:
        """A write bigger than the socket buffers goes out in parts as the peer reads
        (with or without a write timeout)."""
        client, server = pair
        client.write_timeout = write_timeout
        big = Message(type=MessageType.VIDEO, data=bytes(range(256)) * 32768, timestamp=0,
                      message_stream_id=1)  # 8 MiB
        got: List[Message] = []

        def late_reader() -> None:
            time.sleep(0.5)  # the writer has to wait for room meanwhile
            got.append(server.read_message(timeout=20))

        reader = threading.Thread(target=late_reader)
        reader.start()
        cpu = time.thread_time()
        client.write_message(big)
        cpu = time.thread_time() - cpu
        reader.join(20)
        assert got and got[0].data == big.data
        assert cpu < 0.25, f"the writer spun for {cpu:.2f} s of CPU instead of waiting"

    def test_write_timeout_when_the_peer_never_reads(self) -> None:
        """write_timeout bounds the whole write; the transport is unusable afterwards."""
        listener = socket.create_server(("127.0.0.1", 0))
        client_sock = open_connection("127.0.0.1", listener.getsockname()[1], timeout=5)
        server_sock, _ = listener.accept()
        listener.close()
        sender = Transport(client_sock, role="client", write_timeout=0.3)
        try:
            start = time.monotonic()
            with pytest.raises(rtmp.TimeoutError):
                for _ in range(64):  # 64 x 1 MiB, far more than loopback buffers hold
                    sender.write_message(Message(type=MessageType.VIDEO, data=bytes(1 << 20),
                                                 message_stream_id=1))
            assert time.monotonic() - start < 5
            assert sender.closed
            # So is a fan-out batch, gathered with sendmsg: the same bound, the same error.
            sender._closed = False
            messages = [Message(type=MessageType.VIDEO, data=bytes(1 << 20), timestamp=i,
                                message_stream_id=1) for i in range(4)]
            with pytest.raises(rtmp.TimeoutError):
                sender.write_fanout([(encode_type0(m, 128), m, 128) for m in messages])
            assert sender.closed
        finally:
            sender.close()
            server_sock.close()

    def test_clean_eof(self, pair: Tuple[Transport, Transport]) -> None:
        client, server = pair
        client.write_message(Message(type=20, data=b"bye"))
        client.close()
        client.close()  # twice is fine
        assert server.read_message().data == b"bye"
        with pytest.raises(ConnectionClosedError):
            server.read_message()
        with pytest.raises(ConnectionClosedError):
            client.write_message(Message(type=20, data=b"late"))

    @pytest.mark.spec("RTMP 5.3.1")
    def test_eof_mid_message_is_a_protocol_error(self, pair: Tuple[Transport, Transport]) -> None:
        client, server = pair
        data = client.session.send(video(0, 1000))
        client.sock.sendall(data[:300])
        client.sock.shutdown(socket.SHUT_WR)
        with pytest.raises(ProtocolError):
            server.read_message()

    def test_close_wakes_a_blocked_reader(self, pair: Tuple[Transport, Transport]) -> None:
        client, server = pair
        errors: List[BaseException] = []

        def reader() -> None:
            try:
                server.read_message(timeout=10)
            except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
                errors.append(exc)

        thread = threading.Thread(target=reader)
        thread.start()
        time.sleep(0.1)
        server.shutdown()
        thread.join(5)
        assert not thread.is_alive()
        assert errors and isinstance(errors[0], ConnectionClosedError)

    def test_concurrent_writers_never_mix_chunks(self, pair: Tuple[Transport, Transport]) -> None:
        client, server = pair

        def writer(csid: int) -> None:
            for i in range(50):
                client.write_message(Message(type=9, data=bytes([csid]) * 700, timestamp=i,
                                             message_stream_id=1, chunk_stream_id=csid))

        threads = [threading.Thread(target=writer, args=(c,)) for c in (4, 6, 7)]
        for t in threads:
            t.start()
        got = [server.read_message() for _ in range(150)]
        for t in threads:
            t.join()
        for msg in got:
            assert msg.data == bytes([msg.csid]) * 700

    def test_bad_role(self) -> None:
        a, b = socket.socketpair()
        with pytest.raises(ValueError):
            Transport(a, role="peer")
        a.close()
        b.close()


class TestHandshakeOverSockets:
    @pytest.mark.spec("RTMP 5.2.2")
    def test_wrong_version_is_a_handshake_error(self) -> None:
        a, b = socket.socketpair()
        server = Transport(b, role="server")
        a.sendall(b"\x06" + bytes(1536))
        with pytest.raises(HandshakeError):
            server.handshake(2)
        a.close()
        server.close()

    @pytest.mark.spec("RTMP 5.2.1")
    def test_silent_peer_times_out(self) -> None:
        a, b = socket.socketpair()
        server = Transport(b, role="server")
        with pytest.raises(rtmp.TimeoutError):
            server.handshake(0.3)
        a.close()
        server.close()

    @pytest.mark.spec("RTMP 5.2.1")
    def test_peer_closing_mid_handshake(self) -> None:
        a, b = socket.socketpair()
        client = Transport(b, role="client")
        a.sendall(b"\x03" + bytes(100))
        a.close()
        with pytest.raises(HandshakeError):
            client.handshake(2)
        client.close()


def test_open_connection_refused() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    with pytest.raises(ConnectionClosedError, match="cannot connect"):
        open_connection("127.0.0.1", port, timeout=2)


def test_control_builders_round_trip_over_transport(pair: Tuple[Transport, Transport]) -> None:
    client, server = pair
    client.send_set_peer_bandwidth(1_000_000, 0)
    client.write_message(Message(type=20, data=b"sync"))
    assert server.read_message().data == b"sync"
    assert server.session.peer_bandwidth == 1_000_000
    assert control.parse_window_ack_size(control.window_ack_size(5).data) == 5


def test_descriptors_above_1023_work() -> None:
    """A server with many connections gets socket numbers past select()'s limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        pytest.skip(f"RLIMIT_NOFILE is {soft}")
    ballast = []
    try:
        while True:
            a, b = socket.socketpair()
            ballast += [a, b]
            if b.fileno() > 1030:
                break
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        client_sock = open_connection("127.0.0.1", port, timeout=5)
        server_sock, _ = listener.accept()
        listener.close()
        assert server_sock.fileno() > 1023
        client = Transport(client_sock, role="client", read_timeout=5)
        server = Transport(server_sock, role="server", read_timeout=5)
        thread = threading.Thread(target=server.handshake, args=(5,))
        thread.start()
        client.handshake(5)
        thread.join(5)
        client.write_message(Message(type=20, data=b"high fd"))
        assert server.read_message().data == b"high fd"
        with pytest.raises(rtmp.TimeoutError):
            server.read_message(timeout=0.05)
        client.close()
        server.close()
    finally:
        for sock in ballast:
            sock.close()

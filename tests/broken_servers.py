"""Deliberately broken RTMP servers, to prove every conformance check can fail.

:class:`BrokenProxy` sits in front of a working server (our :class:`rtmp.Server`) and
breaks exactly one rule, named by ``rule``.  It does its own handshake with the client
(:class:`rtmp.handshake.ServerHandshake`, whose S0/S1/S2 a handshake rule rewrites), a
plain handshake with the upstream server, and then decodes every message in both
directions with :class:`rtmp.chunk.ChunkDecoder` and re-chunks it with
:class:`rtmp.chunk.ChunkEncoder`, so a rule can drop, rewrite or mis-chunk a single kind of
message, or decode the client's chunks the wrong way.  With ``rule=None`` the proxy is
transparent: the probe passes through it exactly as against the server itself.

Every rule breaks one clause; ``RULES`` lists them with what they do.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import replace
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

from rtmp import commands, control, user_control
from rtmp._bytes import U32, U32LE
from rtmp.amf0 import ECMAArray
from rtmp.chunk import EXTENDED_TIMESTAMP_MARK, ChunkDecoder, ChunkEncoder, ChunkInfo
from rtmp.chunk import encode_basic_header
from rtmp.handshake import HANDSHAKE_SIZE, ClientHandshake, ServerHandshake
from rtmp.message import (
    PROTOCOL_CONTROL_TYPES,
    SHARED_OBJECT_TYPES,
    Message,
    MessageType,
    split_aggregate,
)
from rtmp.shared_object import SOEventType, from_message, to_message
from rtmp.user_control import UserControlEvent

logger = logging.getLogger(__name__)

#: Every rule and the behaviour it gives the server (one broken clause each).
RULES: Dict[str, str] = {
    "s0-version-4": "S0 is 4 whatever C0 asked (RTMP 5.2.2)",
    "s1-nonzero": "S1 bytes 4-7 are not zero in the simple handshake (RTMP 5.2.3)",
    "s2-not-echo": "S2 does not repeat C1's random bytes (RTMP 5.2.4)",
    "s2-early": "S0, S1 and S2 are sent as soon as C0 arrives (RTMP 5.2.1)",
    "bad-digest": "S1 of the digest handshake carries an invalid digest (HS-FP9)",
    "result-txn": "_result/_error carry the transaction id plus one (RTMP 7.2)",
    "create-stream-txn": "createStream's _result carries another transaction id (RTMP 7.2.1.3)",
    "drop-window-ack-size": "no Window Acknowledgement Size is ever sent (RTMP 5.4.4)",
    "drop-peer-bandwidth": "no Set Peer Bandwidth is ever sent (RTMP 5.4.5)",
    "drop-stream-begin": "no Stream Begin events (RTMP 7.1.7)",
    "control-csid3": "protocol control messages go out on chunk stream 3 (RTMP 5.4)",
    "amf0-only": "the connect _result says objectEncoding 0 whatever was asked (RTMP 7.2.1.1)",
    "ignore-amf3-commands": "type 17 commands are ignored (RTMP 7.1.1)",
    "no-connect-result": "connect is never answered (RTMP 7.2.1.1)",
    "no-acknowledgement": "the server never acknowledges (RTMP 5.4.3)",
    "window-plus-one": "Window Acknowledgement Size answers are one byte off (RTMP 5.4.5)",
    "ping-wrong": "Ping Responses carry another timestamp (RTMP 7.1.7)",
    "publish-level-error": "Publish.Start is sent with level error (RTMP 7.2.2.6)",
    "late-subscribe": "a player gets no media for 1.5 s after Play.Start (RTMP 7.2.2.1)",
    "corrupt-audio": "relayed audio has one byte changed (RTMP 7.1.4)",
    "corrupt-video": "relayed video has one byte changed (RTMP 7.1.5)",
    "metadata-width": "relayed onMetaData has another width (RTMP 7.1.2)",
    "drop-sequence-headers": "AAC/AVC sequence headers are never relayed",
    "accept-duplicate": "a second publisher of a name is told Publish.Start (RTMP 7.2.2.6)",
    "silent-unpublish": "players are not told when the publisher leaves (RTMP 7.1.7)",
    "no-call-error": "unknown calls get no _error (RTMP 7.2.1.2)",
    "ignore-delete-stream": "deleteStream is ignored (RTMP 7.2.2.3)",
    "drop-audio": "no audio reaches players (RTMP 7.1.4)",
    "type1-delta": "type 1 deltas are read one off (RTMP 5.3.1.2.2)",
    "type2-delta": "type 2 deltas are read one off (RTMP 5.3.1.2.3)",
    "type3-delta": "type 3 headers that start a message get a wrong delta (RTMP 5.3.1.2.4)",
    "drop-csid-2byte": "messages on chunk streams 64-319 are lost (RTMP 5.3.1.1)",
    "drop-csid-3byte": "messages on chunk streams 320+ are lost (RTMP 5.3.1.1)",
    "csid-limit-32": "a chunk on chunk stream 32 or above closes the session (a limit, like "
                     "nginx-rtmp's max_streams 32; RTMP 5.3.1.1)",
    "media-stream-0": "players get media on message stream 0, not their own stream, like "
                      "node-media-server 4 (RTMP 7.2.1.3)",
    "ignore-set-chunk-size": "the client's Set Chunk Size is ignored (RTMP 5.4.1)",
    "ignore-abort": "Abort Message is ignored (RTMP 5.4.2)",
    "aggregate-no-offset": "aggregate sub-messages keep their own timestamps (RTMP 7.1.6)",
    "ignore-receive-audio": "receiveAudio is ignored (RTMP 7.2.2.4)",
    "no-interleave": "a message whose chunks were interleaved with another chunk stream's is "
                     "garbled (RTMP 5.3)",
    "extended-timestamp-clamp": "extended timestamps are read as 0xFFFFFF (RTMP 5.3.1.3)",
    "type3-no-extended-in": "type 3 continuations are read without the extended field "
                            "(RTMP 5.3.1.3)",
    "type3-no-extended-out": "type 3 continuations are written without the extended field "
                             "(RTMP 5.3.1.3)",
    "no-shared-objects": "shared object messages are ignored, like a server without them "
                         "(RTMP 7.1.3)",
    "so-no-use-success": "a shared object Use gets Clear and the slots but no Use Success "
                         "(RTMP 7.3.2 [de-facto])",
    "so-no-change": "shared object Change events never reach the other users "
                    "(RTMP 7.3.2 [de-facto])",
    "so-no-send-message": "shared object SendMessage events are not delivered "
                          "(RTMP 7.3.2 [de-facto])",
    "so-frozen-version": "shared object messages always carry version 0 (RTMP 7.1.3 "
                         "[de-facto]: the version goes up with every change)",
    "caps-ex-text": "the connect _result states capsEx as a string (ERTMP Enhancing "
                    "NetConnection connect Command: a number)",
    "drop-ertmp-sequence-starts": "Enhanced RTMP SequenceStart packets are never relayed "
                                  "(ERTMP Enhanced Video / Enhanced Audio)",
}

#: The shared object event each so-* rule removes from what the server sends.
_SO_DROPS = {
    "so-no-use-success": SOEventType.USE_SUCCESS,
    "so-no-change": SOEventType.CHANGE,
    "so-no-send-message": SOEventType.SEND_MESSAGE,
}


class _Decoder(ChunkDecoder):
    """A chunk decoder that can ignore Set Chunk Size or Abort (the broken server's reader)."""

    def __init__(self, ignore: Tuple[int, ...] = ()) -> None:
        super().__init__()
        self.ignore = ignore

    def _apply_chunk_control(self, message: Message) -> None:
        if message.type in self.ignore:
            return
        super()._apply_chunk_control(message)


def _read(sock: socket.socket, count: int, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    data = bytearray()
    while len(data) < count:
        piece = sock.recv(count - len(data))
        if not piece:
            raise ConnectionError("closed during the handshake")
        data += piece
    return bytes(data)


def _command(msg: Message) -> Optional[commands.Command]:
    if msg.type not in (MessageType.COMMAND_AMF0, MessageType.COMMAND_AMF3):
        return None
    return commands.decode_command(msg)


def _flip_last(msg: Message) -> Message:
    data = bytearray(msg.data)
    data[-1] ^= 0x55
    return msg.replace(data=bytes(data))


def _is_sequence_header(msg: Message) -> bool:
    if msg.type == MessageType.AUDIO:
        return msg.data[:2] == b"\xaf\x00"
    if msg.type == MessageType.VIDEO:
        return len(msg.data) > 1 and msg.data[0] & 0x0F == 7 and msg.data[1] == 0
    return False


def _is_sequence_start(msg: Message) -> bool:
    """ERTMP Enhanced Video / Audio: an ExVideoTagHeader or ExAudioTagHeader whose packet
    type (no ModEx, no multitrack) is SequenceStart (0)."""
    data = msg.data
    if not data or data[0] & 0x0F != 0:
        return False
    if msg.type == MessageType.VIDEO:
        return bool(data[0] & 0x80)
    return msg.type == MessageType.AUDIO and data[0] >> 4 == 9


def _no_delay(sock: socket.socket) -> None:
    """Forward each write at once, as the two ends' transports (rtmp/transport.py) send:
    without it a small message behind another waited out the peer's delayed ACK."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _Session:
    """One client connection through the proxy."""

    def __init__(self, proxy: BrokenProxy, client: socket.socket) -> None:
        self.proxy = proxy
        self.rule = proxy.rule
        self.client = client
        _no_delay(client)
        self.upstream: Optional[socket.socket] = None
        self.lock = threading.Lock()
        self.mute_media_until = 0.0
        self.first_fmt: Dict[int, int] = {}
        self.got: Dict[int, int] = {}
        self.lengths: Dict[int, int] = {}
        self.interleaved: set = set()

    # -- handshakes ---------------------------------------------------------------------------

    def handshake_client(self) -> bytes:
        rule = self.rule
        c0 = _read(self.client, 1)
        if rule == "s2-early":  # RTMP 5.2.1 broken: S2 before C1
            self.client.sendall(b"\x03" + bytes(2 * HANDSHAKE_SIZE))
            _read(self.client, 2 * HANDSHAKE_SIZE)
            return b""
        shaker = ServerHandshake()
        shaker.receive_data(b"\x03")  # whatever C0 said (s0-version-4 answers 4 anyway)
        s0 = shaker.data_to_send()
        if rule == "s0-version-4":
            s0 = b"\x04"
        elif c0 != b"\x03":
            self.client.close()
            return b""
        shaker.receive_data(_read(self.client, HANDSHAKE_SIZE))
        out = bytearray(s0 + shaker.data_to_send())
        if rule == "s1-nonzero" and not shaker.digest_used:
            out[5:9] = b"\x01\x02\x03\x04"
        elif rule == "s2-not-echo":
            out[1 + HANDSHAKE_SIZE + 100] ^= 0xFF
        elif rule == "bad-digest" and shaker.digest_used:
            out[1 + 1500] ^= 0xFF
        self.client.sendall(bytes(out))
        shaker.receive_data(_read(self.client, HANDSHAKE_SIZE))
        return shaker.trailing_data

    def handshake_upstream(self) -> bytes:
        sock = socket.create_connection(self.proxy.upstream, timeout=5.0)
        _no_delay(sock)
        self.upstream = sock
        shaker = ClientHandshake(digest=False)
        sock.sendall(shaker.data_to_send())
        shaker.receive_data(_read(sock, 1 + 2 * HANDSHAKE_SIZE))
        sock.sendall(shaker.data_to_send())
        return shaker.trailing_data

    # -- pumping ----------------------------------------------------------------------------------

    def run(self) -> None:
        try:
            client_rest = self.handshake_client()
            if self.client.fileno() == -1:
                return
            upstream_rest = self.handshake_upstream()
            ignore: Tuple[int, ...] = ()
            if self.rule == "ignore-set-chunk-size":
                ignore = (MessageType.SET_CHUNK_SIZE,)
            elif self.rule == "ignore-abort":
                ignore = (MessageType.ABORT,)
            c2s = _Decoder(ignore)
            if self.rule in ("type1-delta", "type2-delta", "type3-delta", "no-interleave"):
                c2s.on_chunk = self._note_chunk
            s2c = _Decoder()
            assert self.upstream is not None
            other = threading.Thread(target=self.pump, name="broken-s2c", daemon=True,
                                     args=(self.upstream, self.client, s2c, self.to_client,
                                           upstream_rest))
            other.start()
            self.pump(self.client, self.upstream, c2s, self.to_server, client_rest)
            other.join(5.0)
        except Exception:  # noqa: BLE001 - a broken session just ends
            logger.debug("broken proxy session ended", exc_info=True)
        finally:
            self.close()

    def pump(self, source: socket.socket, sink: socket.socket, decoder: _Decoder,
             rewrite: Callable[[Message, _Decoder], List[Message]], first: bytes) -> None:
        encoder = ChunkEncoder()
        data = first
        try:
            while True:
                if data:
                    decoder.receive_data(data)
                    out = []
                    for msg in decoder.messages():
                        for new in rewrite(msg, decoder):
                            out.append(self.encode(encoder, new, sink is self.client))
                    if out:
                        with self.lock:
                            sink.sendall(b"".join(out))
                source.settimeout(None)
                data = source.recv(65536)
                if not data:
                    return
        except Exception:  # noqa: BLE001
            logger.debug("broken proxy pump ended", exc_info=True)
        finally:
            self.close()

    def encode(self, encoder: ChunkEncoder, msg: Message, to_client: bool) -> bytes:
        size = encoder.chunk_size
        if (to_client and self.rule == "type3-no-extended-out"
                and msg.timestamp >= EXTENDED_TIMESTAMP_MARK and len(msg.data) > size):
            # RTMP 5.3.1.3 broken: the extended field is left out of continuations.
            csid = msg.csid
            head = (encode_basic_header(0, csid) + EXTENDED_TIMESTAMP_MARK.to_bytes(3, "big")
                    + len(msg.data).to_bytes(3, "big") + bytes((msg.type,))
                    + U32LE.pack(msg.message_stream_id) + U32.pack(msg.timestamp))
            cont = encode_basic_header(3, csid)
            pieces = [msg.data[i:i + size] for i in range(0, len(msg.data), size)]
            encoder.note_sent(msg)
            return head + pieces[0] + b"".join(cont + p for p in pieces[1:])
        wire = encoder.encode(msg)
        if msg.type == MessageType.SET_CHUNK_SIZE:
            encoder.set_chunk_size(control.parse_set_chunk_size(msg.data))
        return wire

    def _note_chunk(self, info: ChunkInfo) -> None:
        csid = info.chunk_stream_id
        if not info.continuation:
            self.first_fmt[csid] = info.fmt
            self.got[csid] = 0
        self.got[csid] = self.got.get(csid, 0) + info.size
        for other, count in self.got.items():  # another message is waiting for chunks
            if other != csid and 0 < count < self.lengths.get(other, 0):
                self.interleaved.add(other)
        self.lengths[csid] = info.length

    # -- the rules -----------------------------------------------------------------------------

    def to_server(self, msg: Message, decoder: _Decoder) -> List[Message]:
        """Client -> server: what the broken server *reads*."""
        rule = self.rule
        csid = msg.csid
        if rule == "ignore-set-chunk-size" and msg.type == MessageType.SET_CHUNK_SIZE:
            return []  # the decoder above kept reading 128-byte chunks
        if rule == "ignore-amf3-commands" and msg.type == MessageType.COMMAND_AMF3:
            return []
        if rule == "drop-csid-2byte" and 64 <= csid <= 319:
            return []
        if rule == "drop-csid-3byte" and csid >= 320:
            return []
        if rule == "csid-limit-32" and csid >= 32:
            self.close()
            return []
        if rule == "extended-timestamp-clamp" and msg.timestamp > EXTENDED_TIMESTAMP_MARK:
            return [msg.replace(timestamp=EXTENDED_TIMESTAMP_MARK)]
        if (rule == "type3-no-extended-in" and msg.timestamp >= EXTENDED_TIMESTAMP_MARK
                and len(msg.data) > decoder.chunk_size):
            # The 4 repeated bytes are taken as payload at every chunk boundary.
            size, ext = decoder.chunk_size, U32.pack(msg.timestamp)
            pieces = [msg.data[i:i + size] for i in range(0, len(msg.data), size)]
            return [msg.replace(data=(pieces[0] + b"".join(ext + p for p in pieces[1:]))
                                [:len(msg.data)])]
        if rule in ("type1-delta", "type2-delta", "type3-delta"):
            fmt = int(rule[4])
            if self.first_fmt.get(csid) == fmt and msg.type in (8, 9):
                return [msg.replace(timestamp=msg.timestamp + 1)]
        if rule == "no-interleave" and csid in self.interleaved:
            self.interleaved.discard(csid)
            return [_flip_last(msg)]
        if rule == "aggregate-no-offset" and msg.type == MessageType.AGGREGATE:
            # FLV E.4.1 layout: the first sub-message's own timestamp, before the offset.
            first = int.from_bytes(msg.data[4:7], "big") | msg.data[7] << 24
            shift = msg.timestamp - first
            return [sub.replace(timestamp=sub.timestamp - shift) for sub in split_aggregate(msg)]
        if rule == "ignore-receive-audio":
            cmd = _command(msg)
            if cmd is not None and cmd.name == commands.RECEIVE_AUDIO:
                return []
        if rule == "ignore-delete-stream":
            cmd = _command(msg)
            if cmd is not None and cmd.name == commands.DELETE_STREAM:
                return []
        if rule == "no-shared-objects" and msg.type in SHARED_OBJECT_TYPES:
            return []
        return [msg]

    def to_client(self, msg: Message, decoder: _Decoder) -> List[Message]:
        """Server -> client: what the broken server *sends*."""
        rule = self.rule
        kind = msg.type
        cmd = _command(msg)
        event = user_control.decode(msg.data) if kind == MessageType.USER_CONTROL else None
        if rule == "drop-window-ack-size" and kind == MessageType.WINDOW_ACK_SIZE:
            return []
        if rule == "drop-peer-bandwidth" and kind == MessageType.SET_PEER_BANDWIDTH:
            return []
        if rule == "no-acknowledgement" and kind == MessageType.ACKNOWLEDGEMENT:
            return []
        if rule == "drop-audio" and kind == MessageType.AUDIO:
            return []
        if rule == "control-csid3" and kind in PROTOCOL_CONTROL_TYPES:
            return [msg.replace(chunk_stream_id=3)]
        if rule == "window-plus-one" and kind == MessageType.WINDOW_ACK_SIZE:
            return [control.window_ack_size(control.parse_window_ack_size(msg.data) + 1)]
        if event is not None:
            if rule == "drop-stream-begin" and event.event == UserControlEvent.STREAM_BEGIN:
                return []
            if rule == "silent-unpublish" and event.event == UserControlEvent.STREAM_EOF:
                return []
            if rule == "ping-wrong" and event.event == UserControlEvent.PING_RESPONSE:
                assert event.timestamp is not None
                return [user_control.ping_response(event.timestamp + 1)]
        if cmd is not None:
            return self._command_to_client(cmd, msg)
        if rule == "so-frozen-version" and kind in SHARED_OBJECT_TYPES:
            so = from_message(msg)
            return [to_message(replace(so, version=0), msg.message_stream_id, msg.timestamp)]
        if rule in _SO_DROPS and kind in SHARED_OBJECT_TYPES:
            so = from_message(msg)
            kept = tuple(e for e in so.events if e.type != _SO_DROPS[rule])
            return [to_message(replace(so, events=kept), msg.message_stream_id, msg.timestamp)]
        if rule == "media-stream-0" and kind in (
                MessageType.AUDIO, MessageType.VIDEO, MessageType.AGGREGATE,
                MessageType.DATA_AMF0, MessageType.DATA_AMF3):
            msg = msg.replace(message_stream_id=0)
        if kind in (MessageType.AUDIO, MessageType.VIDEO):
            if time.monotonic() < self.mute_media_until:
                return []
            if rule == "corrupt-audio" and kind == MessageType.AUDIO:
                return [_flip_last(msg)]
            if rule == "corrupt-video" and kind == MessageType.VIDEO:
                return [_flip_last(msg)]
            if rule == "drop-sequence-headers" and _is_sequence_header(msg):
                return []
            if rule == "drop-ertmp-sequence-starts" and _is_sequence_start(msg):
                return []
        if rule == "metadata-width" and kind == MessageType.DATA_AMF0:
            values = commands.decode_data(msg)
            if len(values) >= 2 and values[0] == commands.ON_METADATA:
                props = ECMAArray(values[1])
                props["width"] = 1.0
                return [commands.encode_data(commands.ON_METADATA, props,
                                             message_stream_id=msg.message_stream_id,
                                             timestamp=msg.timestamp)]
        return [msg]

    def _command_to_client(self, cmd: commands.Command, msg: Message) -> List[Message]:
        rule = self.rule
        if cmd.name in (commands.RESULT, commands.ERROR):
            if rule == "no-connect-result" and cmd.transaction_id == 1:
                return []
            if rule == "no-call-error" and cmd.name == commands.ERROR:
                return []
            if rule == "result-txn" or (rule == "create-stream-txn" and cmd.transaction_id != 1
                                        and cmd.arguments and isinstance(cmd.arguments[0], float)):
                cmd.transaction_id += 1
                return [cmd.to_message(msg.timestamp)]
            props = cmd.command_object
            if rule == "caps-ex-text" and isinstance(props, dict) and "capsEx" in props:
                props["capsEx"] = str(props["capsEx"])
                return [cmd.to_message(msg.timestamp)]
            if rule == "amf0-only" and cmd.transaction_id == 1 and cmd.info is not None:
                cmd.info["objectEncoding"] = 0
                return [cmd.to_message(msg.timestamp)]
        if cmd.name == commands.ON_STATUS:
            code = cmd.code
            info = cmd.info
            if rule == "publish-level-error" and code == commands.NETSTREAM_PUBLISH_START:
                assert info is not None
                info["level"] = "error"
                return [cmd.to_message(msg.timestamp)]
            if rule == "accept-duplicate" and code == commands.NETSTREAM_PUBLISH_BAD_NAME:
                return [commands.on_status(commands.NETSTREAM_PUBLISH_START, "ok",
                                           msg.message_stream_id)]
            if rule == "silent-unpublish" and code in (
                    commands.NETSTREAM_PLAY_UNPUBLISH_NOTIFY, commands.NETSTREAM_PLAY_STOP):
                return []
            if rule == "late-subscribe" and code == commands.NETSTREAM_PLAY_START:
                self.mute_media_until = time.monotonic() + 1.5
        return [msg]

    def close(self) -> None:
        for sock in (self.client, self.upstream):
            if sock is None:
                continue
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


class BrokenProxy:
    """A server on 127.0.0.1 (free port) that is ``upstream`` with one rule broken."""

    def __init__(self, upstream: Tuple[str, int], rule: Optional[str] = None) -> None:
        if rule is not None and rule not in RULES:
            raise ValueError(f"unknown rule {rule!r}; known: {', '.join(RULES)}")
        self.upstream = upstream
        self.rule = rule
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.address: Tuple[str, int] = self._listener.getsockname()[:2]
        self._sessions: List[_Session] = []
        self._threads: List[threading.Thread] = []
        self._stop = threading.Event()
        self._accept_thread = threading.Thread(target=self._accept, name="broken-accept",
                                               daemon=True)

    def url(self, app: str = "live") -> str:
        return f"rtmp://127.0.0.1:{self.address[1]}/{app}"

    def start(self) -> BrokenProxy:
        self._accept_thread.start()
        return self

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            session = _Session(self, client)
            thread = threading.Thread(target=session.run, name="broken-session", daemon=True)
            self._sessions.append(session)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._listener.close()
        for session in self._sessions:
            session.close()
        self._accept_thread.join(2.0)
        for thread in self._threads:
            thread.join(2.0)

    def __enter__(self) -> BrokenProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

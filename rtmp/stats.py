"""What a running server reports over HTTP (issue 20): streams, connections, metrics.

Theory of operation
-------------------
Nothing here runs on the media path.  The publisher's and the players' threads only
do what they did before: plain integer adds to ``LiveStream.bytes_in``
and :class:`rtmp.streams.PlayerStats`.  This module reads those counters (without
their locks: they are indicative) from the HTTP side:

* :func:`streams_report`, :func:`connections_report` and :func:`server_report`
  build the JSON documents of ``GET /api/streams``, ``/api/connections`` and
  ``/api/server`` (schema: refs/http-api.md);
* :func:`prometheus_text` builds ``GET /metrics`` (Prometheus text exposition
  format 0.0.4);
* :class:`RateMeter` samples every stream's bytes in and out and video frames in once
  a second (on the HTTP server's own thread) and gives the bit rates and the frame
  rate over the last 5 s;
* :func:`video_info`, :func:`audio_info` and :func:`metadata_info` read the codecs
  from the sequence headers (FLV E.4.2.1 / E.4.3.1 and the ERTMP FourCC headers) and
  width, height and frame rate from ``onMetaData`` (FLV E.5) or the H.264 SPS.
"""

from __future__ import annotations

import collections
import re
import threading
import time
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Deque, Dict, Iterable, List, NamedTuple, Optional, Tuple

from . import commands, ertmp, flv
from .errors import ProtocolError
from .flvmeta import metadata_codec
from .message import Message, MessageType
from .streams import CONFIG_SEQUENCE, LivePlayer, LiveStream

if TYPE_CHECKING:  # pragma: no cover
    from .server import Server, ServerConnection

__all__ = [
    "RATE_WINDOW",
    "RateMeter",
    "Rates",
    "video_info",
    "audio_info",
    "metadata_info",
    "tracks_info",
    "avc_dimensions",
    "avc_sps_info",
    "streams_report",
    "connections_report",
    "server_report",
    "prometheus_text",
    "public_config",
    "format_address",
]

#: Seconds the bit rates are averaged over.
RATE_WINDOW = 5.0
#: ServerConfig fields never reported (secrets, and callables or objects with no JSON form).
SECRET_FIELDS = frozenset({"password", "username", "http_token", "ssl_context", "push_client"})


def format_address(addr: Optional[Tuple[str, int]]) -> Optional[str]:
    """``host:port`` (``[v6]:port``), or None."""
    if not addr:
        return None
    host, port = str(addr[0]), int(addr[1])
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# -- codecs and picture size --------------------------------------------------------------


def video_info(message: Optional[Message]) -> Optional[Dict[str, Any]]:
    """FLV E.4.3.1 / ERTMP Enhanced Video: the codec of a video sequence header.

    ``{"codec": "H.264", "fourcc": "avc1", "enhanced": False, "profile": 100, "level": 31,
    "width": 854, "height": 480, "frame_rate": 30.0}`` (profile, level and the SPS's size
    and frame rate for AVC only, from the AVCDecoderConfigurationRecord), or None.
    """
    if message is None:
        return None
    try:
        header = flv.VideoTagHeader.parse(message.data)
    except flv.FLVError:
        return {"codec": "unknown", "fourcc": None, "enhanced": False}
    info: Dict[str, Any] = {"codec": header.codec_name, "fourcc": header.fourcc,
                            "enhanced": header.is_enhanced}
    record = message.data[header.header_size:]
    if header.fourcc == "avc1" and len(record) >= 4 and record[0] == 1:
        # ISO 14496-15 5.2.4.1: configurationVersion, AVCProfileIndication, compat, level.
        info["profile"], info["level"] = record[1], record[3]
        sps = avc_sps_info(record)
        if sps is not None:
            info.update(sps)
    return info


def audio_info(message: Optional[Message]) -> Optional[Dict[str, Any]]:
    """FLV E.4.2.1 / ERTMP Enhanced Audio: the codec of an audio sequence header, or None."""
    if message is None:
        return None
    try:
        header = flv.AudioTagHeader.parse(message.data)
    except flv.FLVError:
        return {"codec": "unknown", "fourcc": None, "enhanced": False}
    return {"codec": header.codec_name, "fourcc": header.fourcc, "enhanced": header.is_enhanced}


def metadata_info(message: Optional[Message]) -> Dict[str, Any]:
    """FLV E.5: width, height, frame rate and data rates from an ``onMetaData`` message."""
    out: Dict[str, Any] = {}
    if message is None:
        return out
    try:
        values = commands.strip_set_data_frame(commands.decode_data(message))
    except (ProtocolError, ValueError):
        return out
    props = values[1] if len(values) > 1 and isinstance(values[1], dict) else {}
    for key, name in (("width", "width"), ("height", "height"), ("framerate", "frame_rate"),
                      ("videodatarate", "video_kbps"), ("audiodatarate", "audio_kbps")):
        value = props.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            out[name] = float(value) if name == "frame_rate" or name.endswith("kbps") else int(value)
    encoder = props.get("encoder")
    if isinstance(encoder, str):
        out["encoder"] = encoder[:200]
    # FLV E.5 / ERTMP Enhancing onMetaData: a CodecID, or a FOURCC as a number or string.
    for key, name, video in (("videocodecid", "video_codec", True),
                             ("audiocodecid", "audio_codec", False)):
        codec = metadata_codec(props.get(key), video=video)
        if codec is not None:
            out[name] = codec
    return out


def tracks_info(stream: LiveStream) -> List[Dict[str, Any]]:
    """ERTMP Multitrack: the codec of every track with a sequence header, in the order a
    late joiner gets them: ``[{"media": "video", "track": 0, "codec": "HEVC", "fourcc":
    "hvc1"}, ...]`` (legacy headers are track 0, with a null FourCC unless AVC/HEVC)."""
    out: List[Dict[str, Any]] = []
    for (kind, what, track_id), message in stream.track_configs():
        if what != CONFIG_SEQUENCE:
            continue
        video = kind == MessageType.VIDEO
        tracks = ertmp.video_tracks(message.data) if video else ertmp.audio_tracks(message.data)
        track = next((t for t in tracks if t.track_id == track_id), None)
        if track is not None:
            row: Dict[str, Any] = {"codec": track.codec_name, "fourcc": track.fourcc}
        else:
            info = (video_info if video else audio_info)(message) or {}
            row = {"codec": info.get("codec", "unknown"), "fourcc": info.get("fourcc")}
        out.append({"media": "video" if video else "audio", "track": track_id, **row})
    return out


class _Bits:
    """An MSB-first bit reader over an RBSP (ITU-T H.264 7.2: ue(v) Exp-Golomb)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def bit(self) -> int:
        byte = self.pos >> 3
        if byte >= len(self.data):
            raise ValueError("SPS truncated")
        value = (self.data[byte] >> (7 - (self.pos & 7))) & 1
        self.pos += 1
        return value

    def bits(self, n: int) -> int:
        value = 0
        for _ in range(n):
            value = (value << 1) | self.bit()
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("Exp-Golomb code too long")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        value = self.ue()
        return (value + 1) // 2 if value & 1 else -(value // 2)


def _skip_scaling_list(bits: _Bits, size: int) -> None:
    """ITU-T H.264 7.3.2.1.1.1 scaling_list()."""
    last, following = 8, 8
    for _ in range(size):
        if following:
            following = (last + bits.se() + 256) % 256
        last = following or last


def avc_dimensions(record: bytes) -> Optional[Tuple[int, int]]:
    """ISO 14496-15 5.2.4.1 / ITU-T H.264 7.3.2.1.1: (width, height) from the first SPS
    of an AVCDecoderConfigurationRecord, cropping applied; None if it cannot be read."""
    info = avc_sps_info(record)
    return None if info is None else (info["width"], info["height"])


def _vui_frame_rate(bits: _Bits) -> Optional[float]:
    """ITU-T H.264 E.1.1 vui_parameters() up to the timing info: frames/s, or None.

    E.2.1: a frame lasts 2 * num_units_in_tick / time_scale seconds.
    """
    if bits.bit():  # aspect_ratio_info_present_flag
        if bits.bits(8) == 255:  # aspect_ratio_idc Extended_SAR
            bits.bits(32)  # sar_width, sar_height
    if bits.bit():  # overscan_info_present_flag
        bits.bit()
    if bits.bit():  # video_signal_type_present_flag
        bits.bits(4)  # video_format, video_full_range_flag
        if bits.bit():  # colour_description_present_flag
            bits.bits(24)
    if bits.bit():  # chroma_loc_info_present_flag
        bits.ue()
        bits.ue()
    if not bits.bit():  # timing_info_present_flag
        return None
    units, scale = bits.bits(32), bits.bits(32)
    if units == 0 or scale == 0:
        return None
    return round(scale / (2 * units), 3)


def avc_sps_info(record: bytes) -> Optional[Dict[str, Any]]:
    """ISO 14496-15 5.2.4.1 / ITU-T H.264 7.3.2.1.1: ``{"width", "height"}`` (cropping
    applied) and, when the VUI has timing info, ``"frame_rate"``, from the first SPS of an
    AVCDecoderConfigurationRecord; None if it cannot be read."""
    try:
        if len(record) < 8 or record[5] & 0x1F == 0:
            return None
        length = int.from_bytes(record[6:8], "big")
        nal = record[8:8 + length]
        if len(nal) < max(4, length) or nal[0] & 0x1F != 7:  # truncated, or not an SPS
            return None
        rbsp = nal[1:].replace(b"\x00\x00\x03", b"\x00\x00")  # emulation prevention
        bits = _Bits(rbsp)
        profile = bits.bits(8)
        bits.bits(16)  # constraint flags, level_idc
        bits.ue()  # seq_parameter_set_id
        chroma_format, separate_planes = 1, 0
        if profile in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
            chroma_format = bits.ue()
            if chroma_format == 3:
                separate_planes = bits.bit()
            bits.ue()  # bit_depth_luma_minus8
            bits.ue()  # bit_depth_chroma_minus8
            bits.bit()  # qpprime_y_zero_transform_bypass_flag
            if bits.bit():  # seq_scaling_matrix_present_flag
                for i in range(8 if chroma_format != 3 else 12):
                    if bits.bit():
                        _skip_scaling_list(bits, 16 if i < 6 else 64)
        bits.ue()  # log2_max_frame_num_minus4
        poc_type = bits.ue()
        if poc_type == 0:
            bits.ue()
        elif poc_type == 1:
            bits.bit()
            bits.se()
            bits.se()
            for _ in range(min(bits.ue(), 255)):
                bits.se()
        bits.ue()  # max_num_ref_frames
        bits.bit()  # gaps_in_frame_num_value_allowed_flag
        width_mbs = bits.ue() + 1
        height_map = bits.ue() + 1
        frame_mbs_only = bits.bit()
        if not frame_mbs_only:
            bits.bit()  # mb_adaptive_frame_field_flag
        bits.bit()  # direct_8x8_inference_flag
        width = width_mbs * 16
        height = (2 - frame_mbs_only) * height_map * 16
        if bits.bit():  # frame_cropping_flag (7.4.2.1.1: CropUnitX / CropUnitY)
            left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
            chroma = 0 if separate_planes else chroma_format
            unit_x = 1 if chroma == 0 else (2 if chroma in (1, 2) else 1)
            unit_y = (1 if chroma in (0, 3) else (2 if chroma == 1 else 1)) * (2 - frame_mbs_only)
            width -= (left + right) * unit_x
            height -= (top + bottom) * unit_y
        if width <= 0 or height <= 0:
            return None
        info: Dict[str, Any] = {"width": width, "height": height}
        try:
            rate = _vui_frame_rate(bits) if bits.bit() else None  # vui_parameters_present_flag
        except ValueError:
            rate = None  # a VUI cut short: the size stands
        if rate is not None and 0 < rate <= 1000:
            info["frame_rate"] = rate
        return info
    except (ValueError, IndexError):
        return None


# -- bit rates ------------------------------------------------------------------------------


_Sample = Tuple[float, int, int, int]


class Rates(NamedTuple):
    """What :meth:`RateMeter.rates` measured over the window."""

    bits_in: int
    """Bits/s the publisher sent (payload)."""
    bits_out: int
    """Bits/s written to all the stream's players together (chunked)."""
    frames: float
    """Video frames/s the publisher sent."""


class RateMeter:
    """Bytes in and out of every live stream, sampled once a second; rates over RATE_WINDOW.

    In: the payload bytes the publisher sent (``LiveStream.bytes_in``).  Out: the
    bytes the stream's players' writers sent (chunk headers included), summed from each
    player's ``PlayerStats.sent_bytes`` growth (a player that left between two
    samples loses its last second).
    """

    def __init__(self, window: float = RATE_WINDOW) -> None:
        self.window = window
        self._lock = threading.Lock()
        # id(stream) -> (stream, samples of (time, bytes in, bytes out so far, video frames in))
        self._samples: Dict[int, Tuple[LiveStream, Deque[_Sample]]] = {}
        self._out: Dict[int, int] = {}  # id(stream) -> bytes out so far
        self._seen: Dict[LivePlayer, int] = {}  # player -> its sent_bytes at the last sample

    def sample(self, streams: Iterable[LiveStream], now: Optional[float] = None) -> None:
        """Record every stream's counters now (the HTTP server calls it once a second)."""
        now = time.monotonic() if now is None else now
        seen: Dict[LivePlayer, int] = {}
        with self._lock:
            samples: Dict[int, Tuple[LiveStream, Deque[_Sample]]] = {}
            out: Dict[int, int] = {}
            for stream in streams:
                key = id(stream)
                entry = self._samples.get(key)
                if entry is None or entry[0] is not stream:
                    entry = (stream, collections.deque(maxlen=int(self.window) + 2))
                total = self._out.get(key, 0) if entry[1] else 0
                for player in stream.snapshot_players():
                    sent = player.stats.sent_bytes
                    total += sent - self._seen.get(player, sent if not entry[1] else 0)
                    seen[player] = sent
                entry[1].append((now, stream.bytes_in, total, stream.video_frames_in))
                samples[key], out[key] = entry, total
            self._samples, self._out, self._seen = samples, out, seen

    def rates(self, stream: LiveStream) -> Rates:
        """Bit rates in and out and video frames/s over the last RATE_WINDOW seconds (zeros
        before two samples)."""
        with self._lock:
            entry = self._samples.get(id(stream))
            if entry is None or entry[0] is not stream or len(entry[1]) < 2:
                return Rates(0, 0, 0.0)
            samples = entry[1]
            last = samples[-1]
            first = samples[0]
            for sample in samples:
                if last[0] - sample[0] <= self.window + 0.5:
                    first = sample
                    break
        elapsed = last[0] - first[0]
        if elapsed <= 0:
            return Rates(0, 0, 0.0)
        return Rates(int(max(0, last[1] - first[1]) * 8 / elapsed),
                     int(max(0, last[2] - first[2]) * 8 / elapsed),
                     round(max(0, last[3] - first[3]) / elapsed, 2))


# -- the reports ----------------------------------------------------------------------------


@dataclass
class _Owners:
    """Which connection publishes or plays what (read from the connections' streams)."""

    publishers: Dict[int, "ServerConnection"]  # id(NetStream) -> connection
    players: Dict[LivePlayer, Tuple["ServerConnection", int]]  # player -> (conn, msid)


def _owners(server: "Server") -> _Owners:
    owners = _Owners({}, {})
    for conn in server.connections:
        for msid, ns in list(conn.streams.items()):
            if ns.state.publishing:
                owners.publishers[id(ns)] = conn
            player = ns.player
            if player is not None:
                owners.players[player] = (conn, msid)
    return owners


def _uptime(since: float, now: float) -> float:
    return round(max(0.0, now - since), 3)


def _player_report(player: LivePlayer, owner: Optional[Tuple["ServerConnection", int]],
                   now: float) -> Dict[str, Any]:
    stats = player.stats
    conn = owner[0] if owner else None
    return {
        "id": conn.id if conn else None,
        "stream_id": owner[1] if owner else player.message_stream_id,
        "address": format_address(conn.remote_addr) if conn else None,
        "uptime_s": _uptime(player.created, now),
        "bytes": stats.sent_bytes,
        "messages": stats.sent_messages,
        "dropped_frames": stats.dropped_messages,
        "dropped_bytes": stats.dropped_bytes,
        "queued_bytes": player.queued_bytes,
    }


def _stream_report(stream: LiveStream, owners: _Owners, meter: Optional[RateMeter],
                   now: float, relays: Optional[List[Dict[str, Any]]] = None) -> Dict[str, Any]:
    publisher: Optional[Dict[str, Any]] = None
    token = stream.publisher
    if token is not None:
        conn = owners.publishers.get(id(token))
        publisher = {
            "id": conn.id if conn else None,
            "address": format_address(conn.remote_addr) if conn else None,
            "uptime_s": _uptime(stream.published_at, now),
        }
    video, audio = video_info(stream.video_config), audio_info(stream.audio_config)
    meta = metadata_info(stream.metadata)
    width = meta.get("width") or (video or {}).get("width")
    height = meta.get("height") or (video or {}).get("height")
    rates = meter.rates(stream) if meter is not None else Rates(0, 0, 0.0)
    players = stream.snapshot_players()
    return {
        "name": stream.name,
        "live": stream.live,
        "publisher": publisher,
        "video": video,
        "audio": audio,
        "width": width,
        "height": height,
        "frame_rate": meta.get("frame_rate") or (video or {}).get("frame_rate")
        or (rates.frames or None),
        "frame_rate_measured": rates.frames,
        "metadata": meta,
        "tracks": tracks_info(stream),
        "bytes_in": stream.bytes_in,
        "messages_in": stream.messages_in,
        "bitrate_in": rates.bits_in,
        "bitrate_out": rates.bits_out,
        "player_count": len(players),
        "players": [_player_report(p, owners.players.get(p), now) for p in players],
        "relays": relays or [],
    }


def streams_report(server: "Server", meter: Optional[RateMeter] = None) -> Dict[str, Any]:
    """``GET /api/streams`` (refs/http-api.md): ``{"applications": {app: {"streams": [...]}}}``."""
    now = time.monotonic()
    owners = _owners(server)
    apps: Dict[str, Dict[str, Any]] = {}
    relays: Dict[Tuple[str, str], List[Dict[str, Any]]] = {}
    for info in server.relays:  # issue 19: the push targets (rtmp.relay.RelayInfo)
        relays.setdefault((info.app, info.stream), []).append(info.as_dict())
    for stream in sorted(server.hub.streams(), key=lambda s: s.key):
        app = apps.setdefault(stream.app, {"streams": []})
        app["streams"].append(_stream_report(stream, owners, meter, now, relays.get(stream.key)))
    return {"applications": apps}


def _connection_report(conn: "ServerConnection", now: float) -> Dict[str, Any]:
    transport = conn.transport
    streams = []
    for msid, ns in sorted(list(conn.streams.items())):
        role = "publishing" if ns.state.publishing else "playing" if ns.state.playing else "idle"
        streams.append({"stream_id": msid, "name": ns.name, "role": role})
    flash_ver = conn.connect_params.get("flashVer")
    return {
        "id": conn.id,
        "address": format_address(conn.remote_addr),
        "state": conn.state.value,
        "app": conn.app,
        "user": conn.user,
        "flash_ver": flash_ver[:200] if isinstance(flash_ver, str) else None,
        "uptime_s": _uptime(conn.created, now),
        "bytes_in": transport.bytes_received if transport else 0,
        "bytes_out": transport.bytes_sent if transport else 0,
        "streams": streams,
        # ERTMP Enhancing NetConnection connect Command: what the client stated it can do.
        "ertmp": conn.client_caps.to_properties() if conn.client_caps.enhanced else None,
    }


def connections_report(server: "Server") -> Dict[str, Any]:
    """``GET /api/connections`` (refs/http-api.md): ``{"connections": [...]}``."""
    now = time.monotonic()
    return {"connections": [_connection_report(c, now) for c in server.connections]}


def _without_credentials(entry: str) -> str:
    """A ``push`` entry (``[APP=]rtmp[s]://[user:pass@]host...[?query]``) with its
    credentials and query string (stream keys) hidden."""
    entry = re.sub(r"(rtmps?://)[^/@]*@", r"\1***@", entry, flags=re.I)
    return re.sub(r"\?.*$", "?***", entry)


def public_config(config: Any) -> Dict[str, Any]:
    """The server's configuration as JSON values, secrets and callbacks left out."""
    out: Dict[str, Any] = {}
    for item in fields(config):
        name = item.name
        if name in SECRET_FIELDS or name.startswith("on_"):
            continue
        value = getattr(config, name)
        if name == "push":  # issue 19: the targets, without user:password@
            out[name] = [_without_credentials(entry) for entry in value]
            continue
        if value is None or isinstance(value, (bool, int, float, str)):
            out[name] = value
        elif isinstance(value, (set, frozenset, list, tuple)) and all(
            isinstance(v, str) for v in value
        ):
            out[name] = sorted(value)  # e.g. record_all's application names
        else:
            out[name] = str(value)
    out["tls"] = config.ssl_context is not None
    return out


def _counts(server: "Server") -> Dict[str, int]:
    streams = server.hub.streams()
    return {
        "connections": server.connection_count,
        "streams": len(streams),
        "publishers": sum(1 for s in streams if s.live),
        "players": sum(len(s.players) for s in streams),
    }


def server_report(server: "Server", http_address: Optional[Tuple[str, int]] = None) -> Dict[str, Any]:
    """``GET /api/server`` (refs/http-api.md): version, uptime, counts, configuration."""
    from . import __version__  # the package's version (the package imports no module of ours)

    stats = server.stats
    return {
        "version": __version__,
        "uptime_s": _uptime(server.started_at, time.monotonic()),
        "rtmp_address": format_address(server.address),
        "http_address": format_address(http_address),
        "counts": _counts(server),
        "totals": _totals(server),
        "errors": dict(stats.errors_by_kind()),
        "config": public_config(server.config),
    }


def _totals(server: "Server") -> Dict[str, int]:
    """Monotonic counters: connections accepted, bytes in and out, frames dropped."""
    stats = server.stats
    received, sent = stats.bytes_received, stats.bytes_sent
    for conn in server.connections:
        transport = conn.transport
        if transport is not None:
            received += transport.bytes_received
            sent += transport.bytes_sent
    dropped = server.hub.ended_players_dropped
    for stream in server.hub.streams():
        dropped += sum(p.stats.dropped_messages for p in stream.snapshot_players())
    return {"accepted": stats.accepted, "bytes_received": received, "bytes_sent": sent,
            "dropped_frames": dropped}


# -- Prometheus -----------------------------------------------------------------------------


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


_RELAY_STATES = ("connecting", "live", "retrying", "looped")


def _relay_states(server: "Server") -> List[Tuple[Dict[str, str], float]]:
    """``rtmp_relays``: how many push targets are in each state (issue 19)."""
    states = collections.Counter(info.state for info in server.relays)
    return [({"direction": "push", "state": state}, states[state]) for state in _RELAY_STATES]


def prometheus_text(server: "Server", extra: Iterable[Tuple[str, str, str, List[Tuple[Dict[str, str], float]]]] = ()
                    ) -> str:
    """``GET /metrics``: the Prometheus text exposition format (version 0.0.4).

    ``extra``: more families as ``(name, type, help, [(labels, value), ...])`` (the HTTP
    server's own request counters).
    """
    counts = _counts(server)
    totals = _totals(server)
    families: List[Tuple[str, str, str, List[Tuple[Dict[str, str], float]]]] = [
        ("rtmp_up", "gauge", "1 while the server runs.", [({}, 1)]),
        ("rtmp_uptime_seconds", "gauge", "Seconds since the server started.",
         [({}, round(time.monotonic() - server.started_at, 3))]),
        ("rtmp_connections", "gauge", "Open RTMP connections.", [({}, counts["connections"])]),
        ("rtmp_streams", "gauge", "Live streams (published or waited for).",
         [({}, counts["streams"])]),
        ("rtmp_publishers", "gauge", "Streams being published.", [({}, counts["publishers"])]),
        ("rtmp_players", "gauge", "Live players.", [({}, counts["players"])]),
        ("rtmp_connections_accepted_total", "counter", "RTMP sockets accepted.",
         [({}, totals["accepted"])]),
        ("rtmp_received_bytes_total", "counter", "Bytes received from RTMP peers.",
         [({}, totals["bytes_received"])]),
        ("rtmp_sent_bytes_total", "counter", "Bytes sent to RTMP peers.",
         [({}, totals["bytes_sent"])]),
        ("rtmp_dropped_frames_total", "counter",
         "Media frames dropped for live players that could not keep up.",
         [({}, totals["dropped_frames"])]),
        ("rtmp_errors_total", "counter", "Refusals and failed sessions, by kind.",
         [({"kind": kind}, count) for kind, count in server.stats.errors_by_kind()]),
        ("rtmp_relays", "gauge", "Push targets of the live streams, by state.",
         _relay_states(server)),
    ]
    families.extend(extra)
    lines: List[str] = []
    for name, kind, help_text, samples in families:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            label_text = ""
            if labels:
                label_text = "{" + ",".join(f'{k}="{_escape_label(v)}"'
                                            for k, v in sorted(labels.items())) + "}"
            number = repr(float(value)) if isinstance(value, float) else str(int(value))
            lines.append(f"{name}{label_text} {number}")
    return "\n".join(lines) + "\n"

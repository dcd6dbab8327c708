"""rtmp.httpapi and rtmp.stats: the HTTP API, metrics and status page (issue 20).

A live :class:`rtmp.Server` with ``http_addr`` on loopback, our client publishing (AVC +
AAC with onMetaData, and an Enhanced RTMP HEVC + Opus stream) and playing, and plain
:mod:`http.client` requests.  The JSON schema is read from refs/http-api.md's tables,
so the documentation and the answers cannot drift apart.  Abuse of the HTTP side is in
tests/hostile/test_http_hostile.py; the page in a real browser in
tests/interop/test_http_status_page.py.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

import rtmp
from rtmp import cli, commands, stats
from rtmp.httpapi import HTTPLimits, HTTPServer
from rtmp.message import Message, MessageType
from rtmp.streams import StreamHub
from tests.peers import free_port
from tests.test_streams import AAC_FRAME, AAC_HEADER, HEVC_EX_HEADER, HEVC_EX_KEY, wait_for

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "refs" / "http-api.md"
TOKEN = "t0ken-for-tests"
PASSWORD = "pa55word-never-shown"

# FLV E.4.3.1 + ISO 14496-15 5.2.4.1: AVC sequence headers made by libx264 (ffmpeg -f flv).
AVC_HIGH_854x480 = bytes.fromhex(
    "17000000000164001fffe1001a6764001facd940d83de6f0110000030001000003003c0f18319601000668"
    "ebe3cb22c0fdf8f800")
AVC_BASELINE_1920x1080 = bytes.fromhex(
    "17000000000142c028ffe100196742c028da01e0089f97011000000300100000030320f1832a01000468ce0fc8")
AVC_BASELINE_320x240 = bytes.fromhex(
    "17000000000142c00dffe100166742c00dda0507ec0440000003004000000c83c50aa801000468ce0fc8")
AVC_HIGH444_640x360 = bytes.fromhex(
    "170000000001f4001effe1001b67f4001e919b281405ff138088000003000800000301e078b16cb001000668"
    "ebe3c44844fff8f800")
# ERTMP Enhanced Audio: SoundFormat 9 (ExHeader) | SequenceStart, FourCC "Opus", OpusHead.
OPUS_EX_HEADER = bytes([0x90]) + b"Opus" + b"OpusHead\x01\x02"
OPUS_EX_FRAME = bytes([0x91]) + b"Opus" + b"o" * 40


def _video(data: bytes, ts: int, msid: int) -> Message:
    return Message(type=MessageType.VIDEO, data=data, timestamp=ts, message_stream_id=msid)


def _audio(data: bytes, ts: int, msid: int) -> Message:
    return Message(type=MessageType.AUDIO, data=data, timestamp=ts, message_stream_id=msid)


class Live:
    """A server with HTTP, a publisher of ``live/cam`` (AVC+AAC) and ``live/ex`` (hvc1+Opus),
    and a player of each."""

    def __init__(self, **config: Any) -> None:
        options: Dict[str, Any] = dict(addr="127.0.0.1:0", http_addr="127.0.0.1:0",
                                       http_token=TOKEN, require_auth=False)
        options.update(config)
        self.server = rtmp.Server(rtmp.ServerConfig(**options))
        self.server.start()
        self.clients: List[rtmp.Client] = []
        self._stop = threading.Event()
        self._threads: List[threading.Thread] = []

    @property
    def http_address(self) -> Tuple[str, int]:
        assert self.server.http is not None
        host, port = self.server.http.address
        return host, port

    def url(self, app: str = "live") -> str:
        host, port = self.server.address
        return f"rtmp://{host}:{port}/{app}"

    def client(self) -> rtmp.Client:
        client = rtmp.Client(rtmp.ClientConfig(connect_timeout=10, read_timeout=10))
        client.connect(self.url())
        self.clients.append(client)
        return client

    def publish(self, name: str, video_header: bytes, audio_header: bytes, key: bytes,
                audio_frame: bytes, metadata: Optional[Dict[str, Any]] = None) -> rtmp.Client:
        pub = self.client()
        pub.publish(name)
        msid = pub.stream_id or 1
        if metadata is not None:
            pub.write_message(commands.metadata(metadata, msid))
        pub.write_message(_video(video_header, 0, msid))
        pub.write_message(_audio(audio_header, 0, msid))

        def run() -> None:
            ts = 0
            while not self._stop.wait(0.04):
                ts += 40
                try:
                    pub.write_message(_video(key, ts, msid))
                    pub.write_message(_audio(audio_frame, ts, msid))
                except rtmp.RTMPError:
                    return

        thread = threading.Thread(target=run, name=f"test-publish-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)
        return pub

    def play(self, name: str) -> rtmp.Client:
        player = self.client()
        player.play(name)

        def run() -> None:
            while not self._stop.is_set():
                try:
                    player.read_message(timeout=0.5)
                except rtmp.TimeoutError:
                    continue
                except rtmp.RTMPError:
                    return

        thread = threading.Thread(target=run, name=f"test-play-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)
        return player

    def request(self, method: str, path: str, headers: Optional[Dict[str, str]] = None,
                body: Optional[bytes] = None) -> Tuple[int, Dict[str, str], bytes]:
        host, port = self.http_address
        conn = http.client.HTTPConnection(host, port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, \
                response.read()
        finally:
            conn.close()

    def get_json(self, path: str) -> Any:
        status, headers, body = self.request("GET", path)
        assert status == 200, body
        assert headers["content-type"] == "application/json"
        return json.loads(body)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        for client in self.clients:
            client.close()
        self.server.stop()


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    # A push target nobody listens on: every stream reports a relay that retries (issue 19).
    env = Live(require_auth=False, username="operator", password=PASSWORD,
               push=[f"rtmp://127.0.0.1:{free_port()}/relay"])
    try:
        env.publish("cam", AVC_HIGH_854x480, AAC_HEADER, bytes([0x17, 0x01, 0, 0, 0]) + b"K" * 900,
                    AAC_FRAME, {"width": 854, "height": 480, "framerate": 25.0,
                                "videodatarate": 800.0, "audiodatarate": 128.0, "encoder": "tests",
                                "videocodecid": 7.0, "audiocodecid": 10.0})
        # ERTMP Enhancing onMetaData: FOURCC codec ids, as a number (FFmpeg) or a string.
        env.publish("ex", HEVC_EX_HEADER, OPUS_EX_HEADER, HEVC_EX_KEY, OPUS_EX_FRAME,
                    {"videocodecid": 1752589105.0, "audiocodecid": "Opus"})
        env.play("cam")
        env.play("cam")
        env.play("ex")
        # Two rate samples (one a second) and a stream each with its players.
        assert wait_for(lambda: sum(len(s.players) for s in env.server.hub.streams()) == 3)
        time.sleep(2.2)
        yield env
    finally:
        env.close()


# -- the schema of refs/http-api.md ---------------------------------------------------------

_TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}


def documented_fields(endpoint: str) -> List[Tuple[str, List[str], bool]]:
    """``(path, types, optional)`` of the table under ``### `GET <endpoint>` ``."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split(f"### `GET {endpoint}`", 1)[1].split("\n#", 1)[0]
    rows = []
    for match in re.finditer(r"^\| `([^`]+)` \| ([^|]+) \|", section, re.M):
        path, kind = match.group(1), match.group(2).strip()
        optional = kind.endswith(", optional")
        kind = kind.replace(", optional", "")
        types = [t.strip() for t in kind.split(" or ")]
        assert all(t in _TYPES for t in types), f"{path}: unknown type {kind!r}"
        rows.append((path, types, optional))
    assert rows, f"no schema table for {endpoint} in {DOC}"
    return rows


def resolve(doc: Any, path: str) -> Tuple[List[Any], int]:
    """(the values at ``path``, the number of parent objects it should be in)."""
    current: List[Any] = [doc]
    parents = 1
    for part in path.split("."):
        key, many = (part[:-2], True) if part.endswith("[]") else (part, False)
        parents = len([c for c in current if isinstance(c, dict)])
        if key == "<app>":
            current = [v for c in current if isinstance(c, dict) for v in c.values()]
        else:
            current = [c[key] for c in current if isinstance(c, dict) and key in c]
        if many:
            current = [v for c in current if isinstance(c, list) for v in c]
    return current, parents


@pytest.mark.parametrize("endpoint", ["/api/streams", "/api/connections", "/api/server"])
def test_documented_fields_exist_with_their_types(live: Live, endpoint: str) -> None:
    doc = live.get_json(endpoint)
    for path, types, optional in documented_fields(endpoint):
        values, parents = resolve(doc, path)
        assert values, f"{endpoint}: {path} is documented but never present"
        if not optional:
            assert len(values) == parents, f"{endpoint}: {path} missing in some objects"
        for value in values:
            assert any(_TYPES[t](value) for t in types), \
                f"{endpoint}: {path} = {value!r}, documented as {' or '.join(types)}"


# -- /api/streams ---------------------------------------------------------------------------


def _stream(doc: Dict[str, Any], app: str, name: str) -> Dict[str, Any]:
    return next(s for s in doc["applications"][app]["streams"] if s["name"] == name)


@pytest.mark.spec("FLV E.4.3.1", "FLV E.4.2.1", "FLV E.5")
def test_streams_report_codecs_size_and_players(live: Live) -> None:
    doc = live.get_json("/api/streams")
    cam = _stream(doc, "live", "cam")
    publisher = live.clients[0]
    assert cam["live"] is True
    assert cam["video"] == {"codec": "H.264", "fourcc": "avc1", "enhanced": False,
                            "profile": 100, "level": 31, "width": 854, "height": 480,
                            "frame_rate": 30.0}  # the SPS says 30; onMetaData below 25
    assert cam["audio"] == {"codec": "AAC", "fourcc": None, "enhanced": False}
    assert (cam["width"], cam["height"], cam["frame_rate"]) == (854, 480, 25.0)
    assert cam["metadata"]["encoder"] == "tests"
    assert cam["metadata"]["video_codec"] == {"codec": "H.264", "codec_id": 7}
    assert cam["metadata"]["audio_codec"] == {"codec": "AAC", "codec_id": 10}
    assert cam["tracks"] == [{"media": "video", "track": 0, "codec": "H.264", "fourcc": "avc1"},
                             {"media": "audio", "track": 0, "codec": "AAC", "fourcc": None}]
    assert cam["player_count"] == 2 == len(cam["players"])
    ids = {c.id for c in live.server.connections}
    assert cam["publisher"]["id"] in ids
    assert {p["id"] for p in cam["players"]} <= ids
    assert all(p["bytes"] > 0 and p["dropped_frames"] == 0 for p in cam["players"])
    assert cam["publisher"]["uptime_s"] > 1.0
    assert publisher.stream_id is not None


@pytest.mark.spec("ERTMP Enhanced Video", "ERTMP Enhanced Audio", "ERTMP Enhancing onMetaData")
def test_streams_report_enhanced_rtmp_fourccs(live: Live) -> None:
    ex = _stream(live.get_json("/api/streams"), "live", "ex")
    assert ex["video"] == {"codec": "HEVC", "fourcc": "hvc1", "enhanced": True}
    assert ex["audio"] == {"codec": "Opus", "fourcc": "Opus", "enhanced": True}
    assert ex["metadata"] == {"video_codec": {"codec": "HEVC", "fourcc": "hvc1"},
                              "audio_codec": {"codec": "Opus", "fourcc": "Opus"}}
    assert ex["tracks"] == [{"media": "video", "track": 0, "codec": "HEVC", "fourcc": "hvc1"},
                            {"media": "audio", "track": 0, "codec": "Opus", "fourcc": "Opus"}]
    assert ex["width"] is None  # no onMetaData, no AVC SPS
    # No onMetaData: the measured rate (one picture every 40 ms, 25/s; wide bounds).
    assert 15 < ex["frame_rate"] == ex["frame_rate_measured"] < 30, ex
    assert ex["player_count"] == 1


def test_bit_rates_over_the_last_seconds(live: Live) -> None:
    cam = _stream(live.get_json("/api/streams"), "live", "cam")
    # 25 frames/s of 905 + 22 bytes: about 185 kbit/s in; two players: about twice out.
    assert 100_000 < cam["bitrate_in"] < 300_000, cam["bitrate_in"]
    assert 1.5 * cam["bitrate_in"] < cam["bitrate_out"] < 3 * cam["bitrate_in"], cam


def test_rate_meter_window() -> None:
    hub = StreamHub()
    stream = hub.publish("app", "s", object())
    meter = stats.RateMeter()
    assert meter.rates(stream) == (0, 0, 0.0)
    for second in range(10):
        stream.bytes_in = second * 1000
        stream.video_frames_in = second * 30 if second < 7 else 180 + (second - 6) * 25
        meter.sample([stream], now=100.0 + second)
    # 1000 bytes/s = 8000 bits/s; frames over the last 5 s: (255 - 120) / 5 = 27/s.
    assert meter.rates(stream) == (8000, 0, 27.0)
    meter.sample([], now=111.0)  # the stream ended: forgotten
    assert meter.rates(stream) == (0, 0, 0.0)


# -- codec helpers --------------------------------------------------------------------------


@pytest.mark.spec("FLV E.4.3.1")
@pytest.mark.parametrize("record,size,profile,rate", [
    (AVC_HIGH_854x480, (854, 480), 100, 30.0),
    (AVC_BASELINE_1920x1080, (1920, 1080), 66, 25.0),  # 1088 coded rows, 8 cropped
    (AVC_BASELINE_320x240, (320, 240), 66, 25.0),
    (AVC_HIGH444_640x360, (640, 360), 244, 30.0),
])
def test_avc_sps_size_and_rate(record: bytes, size: Tuple[int, int], profile: int,
                               rate: float) -> None:
    info = stats.video_info(_video(record, 0, 1))
    assert info is not None
    assert (info["width"], info["height"], info["profile"], info["frame_rate"]) == \
        (*size, profile, rate)
    assert stats.avc_dimensions(record[5:]) == size


@pytest.mark.spec("FLV E.4.3.1")
def test_broken_sequence_headers_are_reported_not_raised() -> None:
    assert stats.avc_dimensions(b"") is None
    assert stats.avc_dimensions(AVC_HIGH_854x480[5:30]) is None  # the record cut short
    assert stats.avc_dimensions(AVC_HIGH_854x480[5:16] + b"\x00" * 40) is None  # an SPS of zeros
    assert stats.video_info(_video(b"\x17\x00", 0, 1)) == {
        "codec": "unknown", "fourcc": None, "enhanced": False}
    assert stats.audio_info(_audio(b"", 0, 1))["codec"] == "unknown"  # type: ignore[index]
    assert stats.metadata_info(Message(type=MessageType.DATA_AMF0, data=b"\xff\xff")) == {}


# -- /api/connections, /api/server ------------------------------------------------------------


def test_connections_report(live: Live) -> None:
    doc = live.get_json("/api/connections")
    assert {c["id"] for c in doc["connections"]} == {c.id for c in live.server.connections}
    roles = sorted(s["role"] for c in doc["connections"] for s in c["streams"])
    assert roles == ["playing"] * 3 + ["publishing"] * 2
    assert all(c["address"].startswith("127.0.0.1:") for c in doc["connections"])


def test_server_report_has_no_secrets(live: Live) -> None:
    status, _, body = live.request("GET", "/api/server")
    assert status == 200
    text = body.decode()
    assert PASSWORD not in text and TOKEN not in text and "operator" not in text
    doc = json.loads(text)
    assert doc["version"] == rtmp.__version__
    assert doc["counts"] == {"connections": 5, "streams": 2, "publishers": 2, "players": 3}
    assert doc["config"]["max_connections"] == live.server.config.max_connections
    assert not {"password", "username", "http_token", "ssl_context", "on_connect"} & set(doc["config"])


# -- /metrics ---------------------------------------------------------------------------------

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
                     r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})? (-?[0-9.e+]+|NaN)$')


def parse_exposition(text: str) -> Dict[str, Tuple[str, List[Tuple[str, float]]]]:
    """Prometheus text format 0.0.4, strictly: HELP and TYPE before a family's samples,
    one family's samples together, counters named ``*_total``."""
    families: Dict[str, Tuple[str, List[Tuple[str, float]]]] = {}
    helped: Optional[str] = None
    current: Optional[str] = None
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped = line.split(" ")[2]
            assert helped not in families, f"{helped} twice"
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name == helped, f"TYPE {name} without its HELP"
            assert kind in ("counter", "gauge")
            assert kind != "counter" or name.endswith("_total")
            families[name] = (kind, [])
            current = name
        else:
            match = _SAMPLE.match(line)
            assert match, f"bad sample line {line!r}"
            assert match.group(1) == current, f"{line!r} outside its family"
            families[current][1].append((match.group(2) or "", float(match.group(3))))
    return families


def test_metrics_exposition_format(live: Live) -> None:
    status, headers, body = live.request("GET", "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    families = parse_exposition(body.decode())
    documented = re.findall(r"^\| `(rtmp_[a-z_]+)` \| (counter|gauge) \|",
                            DOC.read_text(encoding="utf-8"), re.M)
    assert documented and {n: k for n, k in documented} == {n: f[0] for n, f in families.items()}
    assert families["rtmp_connections"][1] == [("", 5.0)]
    assert families["rtmp_publishers"][1] == [("", 2.0)]
    assert families["rtmp_received_bytes_total"][1][0][1] > 10_000
    kinds = {labels for labels, _ in families["rtmp_errors_total"][1]}
    assert '{kind="timeout"}' in kinds and '{kind="crash"}' in kinds
    relays = dict(families["rtmp_relays"][1])  # the fixture's push target nobody listens on
    assert sum(relays.values()) == 2.0 and relays['{direction="push",state="live"}'] == 0.0


# -- the page -----------------------------------------------------------------------------------


def test_status_page_has_no_external_assets(live: Live) -> None:
    status, headers, body = live.request("GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    page = body.decode()
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"<(link|img|iframe)\b|\bsrc=", page)
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    assert "fetch(\"/api/streams\"" in page and "setInterval(refresh" in page


# -- authorization and actions ----------------------------------------------------------------


def _raw(address: Tuple[str, int], data: bytes) -> bytes:
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(data)
        out = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return out
            out += chunk


def test_host_must_be_loopback_without_a_token(live: Live) -> None:
    status, _, _ = live.request("GET", "/api/streams", {"Host": "attacker.example:8080"})
    assert status == 421
    status, _, _ = live.request("GET", "/api/streams", {"Host": "attacker.example",
                                                        "Authorization": f"Bearer {TOKEN}"})
    assert status == 200
    assert live.request("GET", "/api/streams", {"Host": "localhost:1"})[0] == 200
    answer = _raw(live.http_address, b"GET /metrics HTTP/1.0\r\n\r\n")  # no Host at all
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_drop_needs_the_token_and_closes_the_connection() -> None:
    env = Live()
    try:
        victim = env.client()
        conn_id = next(c.id for c in env.server.connections)
        assert env.request("POST", f"/api/connections/{conn_id}/drop")[0] == 401
        bad = {"Authorization": "Bearer wrong"}
        assert env.request("POST", f"/api/connections/{conn_id}/drop", bad)[0] == 401
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert env.request("GET", f"/api/connections/{conn_id}/drop", good)[0] == 405
        assert env.request("POST", "/api/connections/nope-1/drop", good)[0] == 404
        status, _, body = env.request("POST", f"/api/connections/{conn_id}/drop", good)
        assert (status, json.loads(body)) == (200, {"dropped": conn_id})
        assert wait_for(lambda: env.server.connection_count == 0)
        with pytest.raises(rtmp.RTMPError):
            victim.create_stream(timeout=5)
    finally:
        env.close()


@pytest.mark.spec("ERTMP Reconnect Request")
def test_reconnect_needs_the_token_and_sends_the_v2_onstatus() -> None:
    env = Live()
    try:
        statuses: List[rtmp.StatusEvent] = []
        client = rtmp.Client(rtmp.ClientConfig(connect_timeout=10, read_timeout=10,
                                               follow_reconnect_request=False,
                                               on_status=statuses.append))
        client.connect(env.url())
        env.clients.append(client)
        conn_id = next(c.id for c in env.server.connections)
        path = f"/api/connections/{conn_id}/reconnect"
        assert env.request("POST", path)[0] == 401
        good = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        assert env.request("GET", path, good)[0] == 405
        assert env.request("POST", "/api/connections/nope-1/reconnect", good)[0] == 404
        assert env.request("POST", path, good, b"[1]")[0] == 400
        assert env.request("POST", path, good, b'{"tcUrl": 5}')[0] == 400
        assert env.request("POST", path, good, b'{"other": "x"}')[0] == 400
        body = json.dumps({"tcUrl": "/other", "description": "moving"}).encode()
        status, _, answer = env.request("POST", path, good, body)
        assert status == 200
        assert json.loads(answer) == {"reconnect": conn_id, "tcUrl": "/other",
                                      "capsExReconnect": False}
        kept = commands.decode_command(client.read_message(timeout=5))  # not followed: kept
        assert kept.code == commands.NETCONNECTION_CONNECT_RECONNECT_REQUEST
        event = next(e for e in statuses if e.code == commands.NETCONNECTION_CONNECT_RECONNECT_REQUEST)
        assert (event.level, event.description, event.info.get("tcUrl")) == (
            "status", "moving", "/other")
        status, _, answer = env.request("POST", path, good)  # no body: the same server
        assert json.loads(answer)["tcUrl"] is None
        assert env.server.connection_count == 1  # the session goes on
    finally:
        env.close()


def test_drop_is_refused_without_a_configured_token() -> None:
    env = Live(http_token=None)
    try:
        env.client()
        conn_id = env.server.connections[0].id
        status, _, _ = env.request("POST", f"/api/connections/{conn_id}/drop",
                                   {"Authorization": "Bearer anything"})
        assert status == 403
        assert env.server.connection_count == 1
    finally:
        env.close()


def test_beyond_loopback_a_token_is_required() -> None:
    with pytest.raises(ValueError, match="http_token"):
        rtmp.ServerConfig(addr="127.0.0.1:0", http_addr="0.0.0.0:8080")
    with pytest.raises(ValueError, match="http_token"):
        rtmp.ServerConfig(addr="127.0.0.1:0", http_addr=":8080")
    rtmp.ServerConfig(addr="127.0.0.1:0", http_addr="0.0.0.0:8080", http_token="x")
    rtmp.ServerConfig(addr="127.0.0.1:0", http_addr="[::1]:0")
    server = rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0"))
    with pytest.raises(ValueError, match="http_token"):
        HTTPServer(server, "0.0.0.0:0")


def test_reads_need_the_token_when_not_on_loopback() -> None:
    # Tests bind loopback only: this server is told it is not, as one on 0.0.0.0 would be.
    server = rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0"))
    server.start()
    http = HTTPServer(server, "127.0.0.1:0", TOKEN, HTTPLimits())
    http.loopback = False
    http.start()
    try:
        address = http.address
        assert _raw(address, b"GET /api/streams HTTP/1.1\r\nHost: x\r\n\r\n").startswith(
            b"HTTP/1.1 401 ")
        assert b"WWW-Authenticate: Bearer" in _raw(address, b"GET /metrics HTTP/1.0\r\n\r\n")
        ok = _raw(address, f"GET /api/server HTTP/1.0\r\nAuthorization: Bearer {TOKEN}"
                           f"\r\n\r\n".encode())
        assert ok.startswith(b"HTTP/1.1 200 ")
        assert _raw(address, b"GET / HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 200 ")  # no data
    finally:
        http.stop()
        server.stop()


def _http_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("rtmp-http"))


def test_server_without_http_has_no_http_thread() -> None:
    before = _http_threads()
    server = rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0"))
    server.start()
    try:
        assert server.http is None
        assert _http_threads() == before
    finally:
        server.stop()


def test_stop_ends_the_http_threads() -> None:
    before = _http_threads()
    env = Live()
    address = env.http_address
    env.request("GET", "/api/server")
    assert _http_threads() > before
    env.close()
    assert wait_for(lambda: _http_threads() == before)
    with pytest.raises(OSError):
        socket.create_connection(address, timeout=2).close()


# -- the command line -----------------------------------------------------------------------------


@pytest.mark.parametrize("text,addr", [
    ("8080", "127.0.0.1:8080"), ("127.0.0.1:9000", "127.0.0.1:9000"), (":8080", ":8080"),
    ("[::1]:0", "[::1]:0"), ("localhost:", "localhost:8080"),
])
def test_http_flag_addresses(text: str, addr: str) -> None:
    assert cli._http_addr_arg(text) == addr


def test_http_flag_beyond_loopback_needs_a_token() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("RTMP_HTTP_TOKEN", None)
    result = subprocess.run([sys.executable, "-m", "rtmp", "serve", "--addr", "127.0.0.1:0",
                             "--http", "0.0.0.0:0"], capture_output=True, text=True,
                            timeout=30, env=env)
    assert result.returncode == 2
    assert "--http 0.0.0.0:0 is not a loopback address: it needs --http-token" in result.stderr


def test_a_failing_report_is_a_500_and_the_server_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    env = Live()
    try:
        def broken(*args: Any) -> Any:
            raise RuntimeError("a bug in a report")

        monkeypatch.setattr(stats, "streams_report", broken)
        status, _, body = env.request("GET", "/api/streams")
        assert (status, json.loads(body)) == (500, {"error": "internal error"})
        assert env.request("GET", "/api/server")[0] == 200
        assert env.server.http is not None and env.server.http.responses[500] == 1
    finally:
        env.close()


def test_http_port_taken_fails_start_and_frees_the_rtmp_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0", http_addr=f"127.0.0.1:{port}"))
        with pytest.raises(OSError):
            server.start()
        assert server.http is None and server._listener is None
        server.stop()

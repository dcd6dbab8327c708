"""ERTMP Enhanced Video/Audio against a real E-RTMP muxer: FFmpeg 8's FLV muxer, via PyAV.

Debian's ffmpeg 5.1 predates Enhanced RTMP; the PyAV wheel bundles libavformat 62 (FFmpeg 8),
whose FLV muxer writes ExVideoTagHeader / ExAudioTagHeader for HEVC, AV1, VP9, Opus, FLAC,
AC-3 and E-AC-3.  Every tag of such a file must parse with :mod:`rtmp.ertmp` in strict mode,
rebuild to the same bytes, and agree with FFmpeg's own demuxer on which packets are keyframes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from rtmp import ertmp, flv

av = pytest.importorskip("av", reason="PyAV (pip install av) bundles FFmpeg 8 with E-RTMP")

pytestmark = pytest.mark.interop

FRAMES = 12


def _encoder(name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
    except Exception:  # noqa: BLE001 - PyAV raises several kinds for a missing encoder
        return False
    return True


def _make(path: Path, video: str, audio: str) -> None:
    """A short FLV written by FFmpeg's muxer: FRAMES video frames, 10 audio frames."""
    container = av.open(str(path), "w", format="flv")
    vstream = container.add_stream(video, rate=10)
    vstream.width, vstream.height, vstream.pix_fmt = 64, 64, "yuv420p"
    vstream.options = {"g": "5"}  # a keyframe every 5 frames
    astream = container.add_stream(audio, rate=48000)
    for index in range(FRAMES):
        frame = av.VideoFrame(64, 64, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes([index * 20 % 256]) * plane.buffer_size)
        frame.pts = index
        for packet in vstream.encode(frame):
            container.mux(packet)
    samples = astream.codec_context.frame_size or 1024
    for index in range(10):
        chunk = av.AudioFrame(format=astream.format.name, layout=astream.layout.name, samples=samples)
        for plane in chunk.planes:
            plane.update(bytes(plane.buffer_size))
        chunk.sample_rate, chunk.pts = 48000, index * samples
        for packet in astream.encode(chunk):
            container.mux(packet)
    for stream in (vstream, astream):
        for packet in stream.encode():
            container.mux(packet)
    container.close()


def _rebuild(data: bytes, video: bool) -> bytes:
    header = ertmp.parse_video(data) if video else ertmp.parse_audio(data)
    if isinstance(header, ertmp.VideoHeader) and header.command is not None:
        return ertmp.build_video(header.frame_type, header.packet_type, mod_ex=header.mod_ex,
                                 command=header.command)
    tracks = [ertmp.TrackData(t.fourcc, t.payload(data), t.track_id, t.composition_time)
              for t in header.tracks]
    if isinstance(header, ertmp.VideoHeader):
        return ertmp.build_video(header.frame_type, header.packet_type, tracks,
                                 multitrack_type=header.multitrack_type, mod_ex=header.mod_ex)
    return ertmp.build_audio(header.packet_type, tracks, multitrack_type=header.multitrack_type,
                             mod_ex=header.mod_ex)


@pytest.mark.spec("ERTMP Enhanced Video", "ERTMP Enhanced Audio", "ERTMP Metadata Frame")
@pytest.mark.parametrize("video, audio, vfourcc, afourcc", [
    ("libx265", "libopus", "hvc1", "Opus"),
    ("libsvtav1", "ac3", "av01", "ac-3"),
    ("libvpx-vp9", "flac", "vp09", "fLaC"),
    ("libx265", "eac3", "hvc1", "ec-3"),
])  # fmt: skip
def test_ffmpeg_eflv_parses_strictly_and_round_trips(
    tmp_path: Path, video: str, audio: str, vfourcc: str, afourcc: str
) -> None:
    if not (_encoder(video) and _encoder(audio)):
        pytest.skip(f"this PyAV build has no {video} or {audio} encoder")
    path = tmp_path / "e.flv"
    _make(path, video, audio)
    seen: Dict[Tuple[str, int], List[int]] = {}
    keyframes = 0
    metadata = []
    for tag in flv.Reader(path, strict=True):
        if tag.type not in (flv.TAG_VIDEO, flv.TAG_AUDIO):
            continue
        is_video = tag.type == flv.TAG_VIDEO
        assert (ertmp.is_enhanced_video if is_video else ertmp.is_enhanced_audio)(tag.data)
        header = ertmp.parse_video(tag.data) if is_video else ertmp.parse_audio(tag.data)
        assert _rebuild(tag.data, is_video) == tag.data
        for track in header.tracks:
            assert track.known and track.fourcc == (vfourcc if is_video else afourcc)
            seen.setdefault((track.fourcc, track.track_id), []).append(track.packet_type)
            keyframes += track.is_keyframe
            if is_video and track.packet_type == ertmp.VideoPacketType.METADATA:
                metadata.append(ertmp.decode_metadata(track.payload(tag.data)))
                assert not flv.is_keyframe(tag)  # FFmpeg sends it with VideoFrameType 5
        assert flv.is_keyframe(tag) == (is_video and header.frame_type == 1
                                        and header.packet_type != ertmp.VideoPacketType.METADATA)
    # Per (FourCC, trackId): the sequence start comes before any coded frames.
    for key, packet_types in seen.items():
        assert packet_types[0] in (0, 4), f"{key} starts with packet type {packet_types[0]}"
        assert 1 in packet_types or 3 in packet_types, f"{key} has no coded frames"
    assert all(name == "colorInfo" for pairs in metadata for name, _ in pairs)
    # FFmpeg's demuxer agrees on the keyframes.
    with av.open(str(path)) as container:
        theirs = sum(1 for p in container.demux(video=0) if p.size and p.is_keyframe)
    assert keyframes == theirs >= 2


@pytest.mark.spec("ERTMP Enhanced Video", "ERTMP Enhanced Audio", "ERTMP Metadata Frame")
def test_rtmp_publish_trace_explains_ffmpeg_eflv(tmp_path: Path) -> None:
    """``rtmp publish FILE URL --trace`` of FFmpeg's HEVC+Opus E-FLV: every extended field
    is printed with its section; a colorInfo packet is Metadata, never a seek command."""
    import os
    import subprocess
    import sys

    from rtmp import Server, ServerConfig

    if not (_encoder("libx265") and _encoder("libopus")):
        pytest.skip("this PyAV build has no libx265 or libopus encoder")
    path = tmp_path / "hevc.flv"
    _make(path, "libx265", "libopus")
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root), PYTHONUNBUFFERED="1")
    with Server(ServerConfig(addr="127.0.0.1:0")) as server:
        host, port = server.address
        result = subprocess.run(
            [sys.executable, "-m", "rtmp", "publish", str(path), f"rtmp://{host}:{port}/live/e",
             "--fast", "--trace"], env=env, capture_output=True, timeout=120, cwd=root)
    assert result.returncode == 0, result.stderr.decode()
    text = result.stdout.decode()
    for needle in (
        "(RTMP 7.1.5, ERTMP Enhanced Video)",
        "ExVideoTagHeader: IsExVideoHeader 1, VideoFrameType 1 (KeyFrame), VideoPacketType 0"
        " (SequenceStart)  (ERTMP Enhanced Video)",
        "VideoFourCc 'hvc1' (HEVC)  (ERTMP Enhanced Video)",
        "bytes: HEVCDecoderConfigurationRecord  (ERTMP Enhanced Video)",
        "VideoFrameType 5 (Command), VideoPacketType 4 (Metadata)",
        "VideoPacketType Metadata: VideoFrameType is ignored  (ERTMP Enhanced Video)",
        "Metadata colorInfo = ",
        "compositionTimeOffset",
        "(RTMP 7.1.4, ERTMP Enhanced Audio)",
        "AudioFourCc 'Opus' (Opus)  (ERTMP Enhanced Audio)",
        "bytes: Opus ID header (RFC 7845 5.1)",
        "MultichannelConfig: audioChannelOrder 1 (Native), channelCount 2",
    ):
        assert needle in text, f"{needle!r} missing from the trace"
    assert "seek" not in text

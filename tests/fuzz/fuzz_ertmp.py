"""ERTMP Enhanced Video / Enhanced Audio: fuzz target for :mod:`rtmp.ertmp` and the
``rtmp.flv`` classifiers built on it.

The first input byte picks the medium (even: video, odd: audio); the rest is the message.
Contract: the only exception is :class:`rtmp.ertmp.DecodeError`, naming an ``ERTMP``
section; the tracks of what parses lie inside the message, in order; building it again from
what was parsed gives a message that parses to the same header (a parse, build, parse fixed
point); the never-raising helpers (``video_tracks``, ``split_video``, ``explain_video``,
``flv.is_keyframe``, ``flv.is_sequence_header``, ``flv.describe_tag``) never raise.
"""

from __future__ import annotations

import logging

from rtmp import ertmp, flv
from tests.fuzz._common import atheris_main

logger = logging.getLogger(__name__)


def _check(header: "ertmp.VideoHeader | ertmp.AudioHeader", data: bytes) -> None:
    end = 0
    for track in header.tracks:
        assert end <= track.start <= track.offset <= track.end <= len(data), (track, len(data))
        end = track.end


def _rebuild(header: "ertmp.VideoHeader | ertmp.AudioHeader", data: bytes) -> bytes:
    tracks = [ertmp.TrackData(t.fourcc, t.payload(data), t.track_id, t.composition_time)
              for t in header.tracks]
    if isinstance(header, ertmp.VideoHeader):
        if header.command is not None:
            return ertmp.build_video(header.frame_type, header.packet_type, mod_ex=header.mod_ex,
                                     command=header.command)
        return ertmp.build_video(header.frame_type, header.packet_type, tracks,
                                 multitrack_type=header.multitrack_type, mod_ex=header.mod_ex)
    return ertmp.build_audio(header.packet_type, tracks, multitrack_type=header.multitrack_type,
                             mod_ex=header.mod_ex)


def fuzz_one(data: bytes) -> None:
    """One fuzz input: a medium selector byte, then an audio or video message body."""
    if not data:
        return
    video, body = data[0] % 2 == 0, data[1:]
    parse = ertmp.parse_video if video else ertmp.parse_audio
    for allow in (False, True):
        try:
            header = parse(body, allow_unknown=allow)
        except ertmp.DecodeError as exc:
            assert exc.clause.startswith("ERTMP "), exc
            continue
        _check(header, body)
        again = _rebuild(header, body)
        header2 = parse(again, allow_unknown=allow)
        assert (header2.packet_type, header2.mod_ex, header2.multitrack_type) == (
            header.packet_type, header.mod_ex, header.multitrack_type)
        assert [(t.fourcc, t.track_id, t.composition_time, t.payload(again)) for t in header2.tracks] \
            == [(t.fourcc, t.track_id, t.composition_time, t.payload(body)) for t in header.tracks]
    tag = flv.Tag(flv.TAG_VIDEO if video else flv.TAG_AUDIO, 0, body)
    assert isinstance(flv.is_keyframe(tag), bool) and isinstance(flv.is_sequence_header(tag), bool)
    assert isinstance(flv.describe_tag(tag), str)
    if video:
        assert isinstance(ertmp.video_tracks(body), tuple) and isinstance(ertmp.explain_video(body), list)
    else:
        assert isinstance(ertmp.audio_tracks(body), tuple) and isinstance(ertmp.explain_audio(body), list)
    try:
        (ertmp.split_video if video else ertmp.split_audio)(body)
    except ertmp.DecodeError:
        pass


if __name__ == "__main__":
    atheris_main(fuzz_one)

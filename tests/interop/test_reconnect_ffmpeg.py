"""ERTMP Reconnect Request with a real publisher: ffmpeg (a legacy client: it states no capsEx)
publishes to our server while our player is asked to reconnect in the middle; ffmpeg, asked too,
goes on unharmed, and the player's file holds every packet of the source exactly once."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path
from typing import Any, List

import pytest

from rtmp import ConnectionState, Server, ServerConfig
from rtmp.client import ClientConfig
from rtmp.flvio import play_to_flv
from tests.interop.test_server_ffmpeg import ffmpeg_publish, packet_times, url_of
from tests.media import sample_flv
from tests.peers import ffprobe_json, stop_process
from tests.test_streams import wait_for

pytestmark = pytest.mark.interop


@pytest.mark.spec("ERTMP Reconnect Request")
def test_player_moves_mid_stream_of_ffmpeg_and_ffmpeg_ignores_the_request(tmp_path: Path) -> None:
    source = sample_flv()  # 4 s, H.264 25 fps (keyframe each second) + AAC
    want = packet_times(ffprobe_json(source))
    out = tmp_path / "copy.flv"
    errors: List[BaseException] = []
    with Server(ServerConfig(addr="127.0.0.1:0")) as server:
        url = url_of(server)

        def play() -> None:
            try:
                play_to_flv(url, out, config=ClientConfig(read_timeout=20, connect_timeout=10))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        player = threading.Thread(target=play, daemon=True)
        player.start()
        assert wait_for(lambda: any(c.state == ConnectionState.PLAYING
                                    for c in server.connections), 15)
        ffmpeg: Any = subprocess.Popen(ffmpeg_publish(url, source), stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE)
        try:
            def live_for(ms: int) -> bool:
                stream = server.hub.get("live", "key")
                return stream is not None and stream.video_frames_in >= ms // 40

            assert wait_for(lambda: live_for(1200), 20)
            by_state = {c.state: c for c in server.connections}
            publisher, watcher = by_state[ConnectionState.PUBLISHING], by_state[ConnectionState.PLAYING]
            assert publisher.request_reconnect() is False  # ffmpeg stated no capsEx Reconnect
            assert watcher.request_reconnect(description="planned restart") is True
            assert wait_for(lambda: watcher.state == ConnectionState.CLOSED, 10)
            _, err = ffmpeg.communicate(timeout=60)
            assert ffmpeg.returncode == 0, err
        finally:
            stop_process(ffmpeg)
        player.join(30)
        assert not player.is_alive() and not errors, errors
    got = packet_times(ffprobe_json(out))
    assert got == want  # every packet once, at its time, across the move

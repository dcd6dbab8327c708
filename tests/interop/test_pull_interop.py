"""Pull topologies with real servers (issue 19), packets compared with the source FLV.

* our origin -> nginx-rtmp edges (nginx ``pull`` from us) -> players;
* our edge pulling from an nginx-rtmp origin;
* two of ours chained, origin -> edge (``rtmp serve --pull`` in a subprocess);
* fault: the nginx-rtmp origin killed and restarted mid-stream: our edge's player gets
  ``NetStream.Play.UnpublishNotify``, waits while the pull retries, then goes on from a
  keyframe with the headers again.

Every player's audio and video must be the source's sequence headers, then the source's
messages from a keyframe on, byte for byte (``assert_relayed`` of the push topologies).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import List, Optional

import pytest

import rtmp
from rtmp import commands
from rtmp.flvio import publish_flv
from tests.interop.test_push_interop import (
    TIMEOUT,
    Player,
    assert_relayed,
    our_url,
    source_media,
    wait_for,
)
from tests.media import sample_flv
from tests.peers import NginxRtmp, free_port, stop_process, wait_port
from tests.test_pull import Watcher, players_of

pytestmark = pytest.mark.interop

#: nginx-rtmp's players start at a keyframe, with the video header (as ours do).
WAIT_KEY = "wait_key on; wait_video on;"


def _publisher(url: str, source: object) -> threading.Thread:
    """publish_flv on a thread; a publisher whose server is killed just ends."""
    def run() -> None:
        try:
            publish_flv(url, source)  # type: ignore[arg-type]
        except (rtmp.RTMPError, OSError):
            pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.spec("RTMP 7.2.2.1", "FLV E.4.3.1")
def test_our_origin_to_two_nginx_edges_pulling_from_us() -> None:
    source = sample_flv(seconds=5)
    media = source_media(source)
    origin = rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0"))
    origin.start()
    pull = f"pull rtmp://127.0.0.1:{origin.address[1]}/live; {WAIT_KEY}"
    try:
        with NginxRtmp(app_config=pull) as edge1, NginxRtmp(app_config=pull) as edge2:
            publisher = _publisher(our_url(origin, "live/cam"), source)
            assert wait_for(lambda: origin.hub.is_live("live", "cam"))
            players = [Player(edge1.url("live", "cam")), Player(edge1.url("live", "cam")),
                       Player(edge2.url("live", "cam"))]
            # Each edge pulls once for all its players: our origin has two players.
            assert wait_for(lambda: players_of(origin, "live", "cam") == 2)
            time.sleep(0.5)
            assert players_of(origin, "live", "cam") == 2
            publisher.join(TIMEOUT)
            for player in players:
                wait_for(lambda p=player: len(p.media) >= len(media) // 3)  # type: ignore[misc]
                assert_relayed(player.media, media, minimum=len(media) // 3)
                player.close()
    finally:
        origin.stop(5)


@pytest.mark.spec("RTMP 7.2.2.1", "FLV E.4.3.1")
def test_our_edge_pulling_from_an_nginx_origin() -> None:
    source = sample_flv(seconds=5)
    media = source_media(source)
    with NginxRtmp() as origin:
        edge = rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0",
                                             pull=[f"rtmp://127.0.0.1:{origin.port}/live"],
                                             pull_idle=1.0))
        edge.start()
        try:
            # The players come first: the pull waits on nginx for the publisher.
            players = [Player(our_url(edge, "live/cam")), Player(our_url(edge, "live/cam"))]
            assert wait_for(lambda: [r.state for r in edge.relays] == ["connecting"])
            publish_flv(origin.url("live", "cam"), source, realtime=True)
            for player in players:
                # nginx's UnpublishNotify reaches our players through the pull.
                assert player.done.wait(TIMEOUT), "the end of the stream did not reach us"
                assert_relayed(player.media, media, minimum=len(media) - 12)
            assert len(edge.puller.sessions) == 1
            info = edge.relays[0]
            assert info.direction == "pull" and info.reconnects == 0
            assert info.bytes_received > sum(len(m[1]) for m in media) // 2
            for player in players:
                player.close()
            assert wait_for(lambda: edge.relays == [], timeout=8)  # idle: closed
        finally:
            edge.stop(5)


@pytest.mark.spec("RTMP 7.2.2.1", "FLV E.4.3.1")
def test_two_of_ours_chained_origin_to_edge_through_the_command_line() -> None:
    source = sample_flv(seconds=4)
    media = source_media(source)
    origin = rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0"))
    origin.start()
    port = free_port()
    edge = subprocess.Popen(
        [sys.executable, "-m", "rtmp", "serve", "--addr", f"127.0.0.1:{port}",
         "--pull", f"live={our_url(origin, 'studio')}", "--pull-idle", "1s",
         "--pull-reconnect", "1s",
         "--log-level", "warning"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env=dict(os.environ))
    try:
        wait_port(port, 15, process=edge)
        player = Player(f"rtmp://127.0.0.1:{port}/live/cam")  # starts the pull
        assert wait_for(lambda: players_of(origin, "studio", "cam") == 1)
        publish_flv(our_url(origin, "studio/cam"), source, realtime=True)
        assert player.done.wait(TIMEOUT), "the end of the stream did not reach the edge"
        assert_relayed(player.media, media, minimum=len(media) - 12)
        player.close()
        # The last player left: the edge closes its pull within pull_idle (1 s).
        assert wait_for(lambda: players_of(origin, "studio", "cam") == 0, timeout=8)
    finally:
        stop_process(edge)
        origin.stop(5)


@pytest.mark.spec("RTMP 7.2.2.1", "FLV E.4.3.1")
def test_nginx_origin_killed_and_restarted_our_players_wait(
        monkeypatch: pytest.MonkeyPatch) -> None:
    source = sample_flv(seconds=12)
    media = source_media(source)
    origin = NginxRtmp().start()
    port = origin.port
    edge = rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0", pull_reconnect=1.0,
                                         pull=[f"rtmp://127.0.0.1:{port}/live"]))
    edge.start()
    restarted: Optional[NginxRtmp] = None
    watcher: Optional[Watcher] = None
    try:
        _publisher(origin.url("live", "cam"), source)
        watcher = Watcher(our_url(edge, "live/cam"))
        assert wait_for(lambda: len(watcher.video()) >= 10 if watcher else False)
        before = len(watcher.media)
        origin.stop()  # killed mid-stream (its publisher goes with it)
        assert wait_for(lambda: commands.NETSTREAM_PLAY_UNPUBLISH_NOTIFY in watcher.codes()
                        if watcher else False)
        assert wait_for(lambda: [r.state for r in edge.relays] == ["retrying"], timeout=10)
        time.sleep(1.0)
        import tests.peers

        monkeypatch.setattr(tests.peers, "free_port", lambda: port)
        restarted = NginxRtmp().start()
        second = _publisher(restarted.url("live", "cam"), source)
        back = time.monotonic()
        assert wait_for(lambda: len(watcher.media) > before + 20 if watcher else False)
        assert time.monotonic() - back < 10.0
        assert edge.relays[0].reconnects >= 1 and watcher.error is None
        codes: List[str] = watcher.codes()
        unpublished = codes.index(commands.NETSTREAM_PLAY_UNPUBLISH_NOTIFY)
        assert commands.NETSTREAM_PLAY_PUBLISH_NOTIFY in codes[unpublished:]
        second.join(TIMEOUT)
        # After the restart: the headers again, then the source from a keyframe on.
        assert_relayed(watcher.media[before:], media, minimum=len(media) // 4)
    finally:
        if watcher is not None:
            watcher.close()
        edge.stop(5)
        origin.stop()
        if restarted is not None:
            restarted.stop()

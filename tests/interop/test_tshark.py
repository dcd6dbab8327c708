"""Wireshark's RTMP dissector, an independent decoder, reads what our client and server say.

tshark captures loopback traffic while our client publishes an FLV to our server and another
of our clients plays it; tshark's ``rtmpt`` dissector then decodes the capture. It must find
the handshake, the commands in the order of RTMP 7.3.1, the Set Chunk Size we announced, and
exactly as many audio and video messages each way as the file holds, with no malformed packet.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import List

import pytest

import rtmp
from rtmp import flv
from rtmp.client import publish_flv
from tests.conftest import require_peer
from tests.media import sample_flv
from tests.peers import run, stop_process

pytestmark = pytest.mark.interop


def start_capture(tshark: str, port: int, out: Path) -> "subprocess.Popen[bytes]":
    process = subprocess.Popen([tshark, "-i", "lo", "-f", f"tcp port {port}", "-w", str(out),
                                "-q"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    assert process.stderr is not None
    deadline = time.monotonic() + 20
    seen = b""
    while b"Capturing on" not in seen:
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process(process)
            pytest.fail(f"tshark did not start capturing: {seen.decode(errors='replace')}")
        seen += process.stderr.readline()
    # "Capturing on" comes before dumpcap really captures: wait for the file's header too.
    while not (out.exists() and out.stat().st_size > 0):
        if time.monotonic() > deadline:
            stop_process(process)
            pytest.fail("tshark did not write its capture file")
        time.sleep(0.05)
    time.sleep(0.5)
    return process


def dissect(tshark: str, capture: Path, port: int, fields: List[str], display: str) -> List[str]:
    args = [tshark, "-r", str(capture), "-d", f"tcp.port=={port},rtmpt", "-Y", display,
            "-T", "fields", "-E", "separator=|"]
    for field in fields:
        args += ["-e", field]
    result = run(args, timeout=120, check=True)
    return result.stdout.decode().splitlines()


@pytest.mark.spec("RTMP 5.2.2", "RTMP 5.3.1", "RTMP 5.4.1", "RTMP 7.1.4", "RTMP 7.1.5",
                  "RTMP 7.3.1")
def test_wireshark_decodes_our_publish_and_play(tmp_path: Path) -> None:
    tshark = require_peer("tshark")
    source = sample_flv(seconds=3)
    tags = list(flv.Reader(source))
    audio = sum(1 for t in tags if t.type == 8)
    video = sum(1 for t in tags if t.type == 9)
    capture = tmp_path / "rtmp.pcapng"
    with rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0")) as server:
        port = server.address[1]
        url = f"rtmp://127.0.0.1:{port}/live/wire"
        tshark_process = start_capture(tshark, port, capture)
        try:
            received: List[rtmp.Message] = []
            ready = threading.Event()

            def player() -> None:
                with rtmp.Client(rtmp.ClientConfig(read_timeout=10)) as client:
                    client.connect(url)
                    client.play()
                    ready.set()
                    while sum(1 for m in received if m.type in (8, 9)) < audio + video:
                        try:
                            message = client.read_message(timeout=10)
                        except rtmp.RTMPError:
                            return
                        received.append(message)

            thread = threading.Thread(target=player)
            thread.start()
            assert ready.wait(20)
            publish_flv(url, source, realtime=False)
            thread.join(30)
            time.sleep(1.0)  # let the last segments reach the capture
        finally:
            stop_process(tshark_process, timeout=10)
            if tshark_process.stderr is not None:
                tshark_process.stderr.close()
    assert sum(1 for m in received if m.type == 8) == audio
    assert sum(1 for m in received if m.type == 9) == video

    # The handshake: C0/S0 carry version 3 (RTMP 5.2.2) on both connections.
    versions = dissect(tshark, capture, port, ["rtmpt.handshake.c0", "rtmpt.handshake.s0"],
                       "rtmpt.handshake.c0 || rtmpt.handshake.s0")
    assert sorted(line.replace("|", "") for line in versions) == ["03"] * 4  # 2 conns, C0+S0

    # Every message the dissector found, by type id, and the AMF strings of the commands.
    rows = dissect(tshark, capture, port, ["tcp.srcport", "rtmpt.header.typeid", "amf.string",
                                           "rtmpt.scm.chunksize"], "rtmpt")
    to_server = [r for r in rows if not r.startswith(f"{port}|")]
    to_client = [r for r in rows if r.startswith(f"{port}|")]

    def type_count(lines: List[str], type_id: str) -> int:
        return sum(line.split("|")[1].split(",").count(type_id) for line in lines)

    # The publisher's media reached the server, and the same counts went to the player.
    assert type_count(to_server, "0x08") == audio
    assert type_count(to_server, "0x09") == video
    assert type_count(to_client, "0x08") == audio
    assert type_count(to_client, "0x09") == video
    strings = " ".join(r.split("|")[2] for r in rows)
    for word in ("connect", "NetConnection.Connect.Success", "createStream", "publish",
                 "NetStream.Publish.Start", "play", "NetStream.Play.Start", "onMetaData",
                 "deleteStream"):
        assert word in strings, word
    order = [strings.index(w) for w in ("connect", "createStream", "publish,wire,live")
             if w in strings]
    assert order == sorted(order)
    assert any(r.split("|")[3] for r in rows), "no Set Chunk Size decoded"

    # Nothing the dissector could not parse.
    malformed = dissect(tshark, capture, port, ["frame.number"], "_ws.malformed")
    assert malformed == []

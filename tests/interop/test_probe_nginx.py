"""The conformance probe against nginx-rtmp (Debian's libnginx-mod-rtmp), started by the test.

The verdicts are those recorded in refs/conformance.md, where each deviation is explained
with its clause and what nginx does instead; a change in nginx (or in a check) shows up here
as a different verdict.  The probe must also finish in bounded time and leave no stream
published: a second run with the same names would be refused otherwise.
"""

from __future__ import annotations

import time
from typing import Dict, Iterator

import pytest

from rtmp import conformance
from rtmp.conformance import CHECKS, Status
from tests.interop.probe_record import SHORT_TIMEOUT, assert_short_waits
from tests.peers import NginxRtmp

pytestmark = pytest.mark.interop

TIMEOUT = 3.0
# SHORT_TIMEOUT (tests/interop/probe_record.py) is the wait of the checks below, and of
# the shared object checks: each recorded verdict of theirs is concluded only when the
# wait runs out (silence, or a close the check waits for), while nginx answers on loopback
# within milliseconds; an answer would still show as a changed verdict.  (Our own server's
# "not supported" test uses 1 s too.)

#: What nginx-rtmp 1.2.x (Debian) gets, as recorded in refs/conformance.md.
NGINX_VERDICTS: Dict[str, Status] = {name: Status.PASS for name in CHECKS}
NGINX_VERDICTS.update({
    "handshake.version-fallback": Status.WARN,  # closes on C0 = 4 instead of S0 = 3
    "connect.stream-begin": Status.FAIL,  # Stream Begin only on play/publish
    "ack.peer-bandwidth-answer": Status.WARN,  # Set Peer Bandwidth from a client ignored
    "relay.metadata": Status.WARN,  # "meta on": onMetaData rebuilt, custom fields dropped
    "relay.late-joiner": Status.WARN,  # same rebuilt onMetaData
    "command.unknown": Status.FAIL,  # unknown calls are not answered
    "stream.create": Status.WARN,  # every createStream returns 1
    "chunk.type3": Status.FAIL,  # type 3 after type 0 reuses delta 0
    "chunk.csid-2byte": Status.WARN,  # max_streams 32: chunk stream 64 refused (a limit)
    "chunk.csid-3byte": Status.WARN,  # idem, 320
    "chunk-size.large": Status.FAIL,  # chunk sizes above 10485760 close the session
    "chunk-size.lower": Status.FAIL,  # a lowered size misreads the bytes read with it
    "abort.partial": Status.FAIL,  # Abort Message not implemented
    "play.receive-audio": Status.FAIL,  # receiveAudio false does not stop the audio
    "ertmp.connect-caps": Status.WARN,  # _result states no E-RTMP support
    "ertmp.late-joiner": Status.FAIL,  # no Enhanced RTMP video is relayed (wait_key)
    "ertmp.multitrack-relay": Status.FAIL,  # idem: multitrack audio passes, video does not
})
#: RTMP 7.3.2: no shared objects; run apart (each waits for a Use answer that never comes).
SHARED_OBJECT_CHECKS = [name for name in CHECKS if name.startswith("so.")]
NGINX_VERDICTS.update({name: Status.SKIP for name in SHARED_OBJECT_CHECKS})
#: The recorded FAILs that end with the whole wait, and what the probe says for each: the
#: timeouts must be silence (``within SHORT_TIMEOUT s``), not a failure of another kind.
SHORT_WAIT: Dict[str, str] = {
    "command.unknown": "timeout: no _error for an unknown method within",
    "chunk-size.lower": "the server closed the connection after Set Chunk Size 128",
    "ertmp.late-joiner": "no HEVC frame reached the late joiner within",
    "ertmp.multitrack-relay": "timeout: no relayed video (multitrack)",
}
#: Measured checks: a loaded machine may make them slow (WARN), never FAIL.
TIMINGS = ("connect.timing", "timing.latency")


@pytest.fixture(scope="module")
def nginx() -> Iterator[NginxRtmp]:
    with NginxRtmp() as server:
        yield server


def url_of(nginx: NginxRtmp) -> str:
    return f"rtmp://127.0.0.1:{nginx.port}/{nginx.app}"


@pytest.mark.spec("RTMP 5.2", "RTMP 5.3", "RTMP 5.4", "RTMP 7.2")
def test_probe_verdicts_match_the_record(nginx: NginxRtmp) -> None:
    start = time.monotonic()
    outcomes = conformance.run(url_of(nginx), skip=["so", *SHORT_WAIT], timeout=TIMEOUT)
    outcomes += conformance.run(url_of(nginx), only=list(SHORT_WAIT), timeout=SHORT_TIMEOUT)
    elapsed = time.monotonic() - start
    assert sorted(o.check.name for o in outcomes) == sorted(n for n in CHECKS if n not in
                                                             SHARED_OBJECT_CHECKS)
    differ = []
    for outcome in outcomes:
        name, status = outcome.check.name, outcome.result.status
        allowed = {Status.PASS, Status.WARN} if name in TIMINGS else {NGINX_VERDICTS[name]}
        if status not in allowed:
            differ.append(f"{name}: {status.value} ({outcome.result.detail}), "
                          f"recorded {NGINX_VERDICTS[name].value}")
    assert not differ, "\n".join(differ) + "\n" + nginx.error_log()[-3000:]
    assert_short_waits(outcomes, SHORT_WAIT, SHORT_TIMEOUT)
    assert elapsed < 90
    whole_log = nginx.error_log(limit=50_000_000)  # a probe run logs far more than a tail
    assert "RTMP in chunk stream too big: 64 >= 32" in whole_log
    assert "too big RTMP chunk size:16777215" in whole_log
    for name, first in (("chunk.csid-2byte", 64), ("chunk.csid-3byte", 320)):
        detail = next(o.result.detail for o in outcomes if o.check.name == name)
        assert f"refused chunk stream id {first} (a limit)" in detail


@pytest.mark.spec("RTMP 7.2.2.6")
def test_probe_leaves_no_stream_published(nginx: NginxRtmp) -> None:
    """Publishing checks end their sessions: nginx logs a deleteStream/disconnect for each
    publish, and a fresh publisher can take a name a check just used."""
    conformance.run(url_of(nginx), only=["publish", "relay.audio"], timeout=TIMEOUT)
    log = nginx.error_log()
    assert log.count("publish: name='probe-") <= log.count("disconnect")
    ctx = conformance.Context(url_of(nginx), timeout=TIMEOUT)
    try:
        names = list(dict.fromkeys(line.split("name='")[1].split("'")[0]
                                   for line in log.splitlines()
                                   if "publish: name='probe-" in line))
        assert names
        for n, name in enumerate(names[-3:]):
            deadline = time.monotonic() + 5  # nginx ends a closed session asynchronously
            while True:
                conn = ctx.connection(f"reuse-{n}")
                _, status = conn.publish(name)
                if status.code == "NetStream.Publish.Start" or time.monotonic() > deadline:
                    break
                conn.close()
                time.sleep(0.1)
            assert status.code == "NetStream.Publish.Start", (name, status.info)
    finally:
        ctx.close_all()


@pytest.mark.spec("RTMP 7.3.2", "RTMP 7.3.2 [de-facto]")
def test_shared_objects_reported_not_supported(nginx: NginxRtmp) -> None:
    """nginx-rtmp ignores shared object messages (types 19 and 16): no answer, and the
    connection stays usable. The probe says "not supported" (SKIP) after one bounded wait
    per check, never FAIL and never a hang."""
    start = time.monotonic()
    outcomes = conformance.run(url_of(nginx), only=["so"], timeout=SHORT_TIMEOUT)
    elapsed = time.monotonic() - start
    assert [o.check.name for o in outcomes] == SHARED_OBJECT_CHECKS
    for outcome in outcomes:
        assert outcome.result.status is NGINX_VERDICTS[outcome.check.name], outcome.result.detail
        assert "not supported" in outcome.result.detail
        assert "the connection stays usable" in outcome.result.detail
    assert elapsed < len(outcomes) * (SHORT_TIMEOUT * 2 + 2)

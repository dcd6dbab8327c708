"""Fixtures of the hostile suite: one live server and healthy pair for the whole package.

The server, the healthy publisher/player pair and the log capture are started once
(package scope) because a healthy pair that streams through *every* case is the point:
each case ends with ``hostile.assert_healthy()`` (see :mod:`tests.hostile.harness`).
Cases that need other limits start their own server with
:func:`tests.hostile.harness.running_server`.
"""

from __future__ import annotations

import logging
from typing import Iterator

import pytest

from tests.hostile.harness import HealthyPair, HostileEnv, LogCapture, load_media, running_server
from tests.media import sample_flv

logger = logging.getLogger(__name__)


@pytest.fixture(scope="package")
def rtmp_log() -> Iterator[LogCapture]:
    """Every record of the ``rtmp`` loggers, from every thread."""
    capture = LogCapture()
    rtmp_logger = logging.getLogger("rtmp")
    old_level = rtmp_logger.level
    rtmp_logger.addHandler(capture)
    rtmp_logger.setLevel(logging.INFO)
    yield capture
    rtmp_logger.removeHandler(capture)
    rtmp_logger.setLevel(old_level)


@pytest.fixture(scope="package")
def hostile(rtmp_log: LogCapture) -> Iterator[HostileEnv]:
    """The shared server (short timeouts, default limits) with the healthy pair streaming."""
    media = load_media(sample_flv(seconds=2, width=160, height=120))
    with running_server() as server:
        host, port = server.address
        pair = HealthyPair(f"rtmp://{host}:{port}/live", media)
        pair.start()
        try:
            env = HostileEnv(server, pair, rtmp_log)
            pair.check(min_new=10)
            env.take_baseline()
            yield env
        finally:
            pair.stop()

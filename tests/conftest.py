"""Shared fixtures: the clause-table plugin, hypothesis profiles, real-peer lookup."""

from __future__ import annotations

import os
import shutil
from typing import Optional

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["tests.clausetable"]

settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=20_000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def find_peer(name: str) -> Optional[str]:
    """Path of a real peer program, or None."""
    for candidate in (name, f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        path = shutil.which(candidate)
        if path:
            return path
    return None


def require_peer(name: str) -> str:
    """The path of a peer program; skip without it, but fail in CI (a skip there hides a gap).

    The peers scripts/test installs: ffmpeg, ffprobe, nginx, rtmpdump, gst-launch-1.0,
    tshark, openssl and chromium (the HTTP status page's headless browser, issue 20).
    """
    path = find_peer(name)
    if path is None:
        message = f"real peer {name!r} is not installed (scripts/test installs it on Debian)"
        if IN_CI:
            pytest.fail(message + "; CI must have every peer")
        pytest.skip(message)
    return path


def require_module(name: str, what: str) -> None:
    """Import a Python package a real-peer test needs (``what`` says which and why); skip
    without it, but fail in CI, as :func:`require_peer` does for programs."""
    import importlib

    try:
        importlib.import_module(name)
    except ImportError:
        message = f"Python package {name!r} is not installed: {what}"
        if IN_CI:
            pytest.fail(message + "; CI must have every peer")
        pytest.skip(message)

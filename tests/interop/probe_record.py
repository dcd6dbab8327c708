"""What the probe interop tests share: a peer's recorded FAILs that end only when a wait
runs out are run with a short wait, and must say so."""

from __future__ import annotations

from typing import Dict, Iterable, Mapping

from rtmp.conformance.runner import Outcome

#: The wait of the checks whose recorded FAIL is silence (or a close the check waits for).
SHORT_TIMEOUT = 1.0


def assert_short_waits(outcomes: Iterable[Outcome], short_wait: Mapping[str, str],
                       timeout: float = SHORT_TIMEOUT) -> Dict[str, Outcome]:
    """Each check of ``short_wait`` said what was recorded for it and, when that is
    silence, that it waited the whole ``timeout``; returns the outcomes by check name."""
    by_name = {o.check.name: o for o in outcomes}
    for name, said in short_wait.items():
        detail = by_name[name].result.detail
        assert said in detail, detail
        if "closed the connection" not in said:  # silence, for the whole short wait
            assert f"within {timeout:g} s" in detail, detail
    return by_name

"""``python -m tests.soak.leaky_server serve ...``: our server with a leak put in on purpose.

``rtmp serve`` whose every accepted connection opens ``/dev/null`` and never closes it: one
descriptor lost per connection.  ``tests/test_soak.py`` runs a short soak against it to
show that the soak catches a real leak in a real server process (not only in made-up
figures).  Never used otherwise.
"""

from __future__ import annotations

import sys
from typing import IO, Any, List

from rtmp import cli
from rtmp import server as server_module

_LEAKED: List[IO[bytes]] = []
_start_connection = server_module.Server._start_connection


def _leaky_start_connection(self: server_module.Server, sock: Any, addr: Any) -> None:
    _LEAKED.append(open("/dev/null", "rb"))  # noqa: SIM115 - the leak is the point
    _start_connection(self, sock, addr)


if __name__ == "__main__":
    server_module.Server._start_connection = _leaky_start_connection  # type: ignore[method-assign]
    sys.exit(cli.main())

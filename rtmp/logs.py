"""Logging helpers: a per-connection adapter and the teaching trace logger.

Every line a connection logs carries its id (``[c7f3] ...``), as aioquic does.
The byte-by-byte protocol trace goes to the separate ``rtmp.trace`` logger,
which is silent unless someone attaches a handler (``--trace`` does).
"""

from __future__ import annotations

import logging
from typing import Any, MutableMapping, Tuple, Union

__all__ = ["AnyLogger", "ConnectionLoggerAdapter", "connection_logger", "trace_logger"]

#: What a component that logs accepts: a module logger or a connection's adapter.
AnyLogger = Union[logging.Logger, logging.LoggerAdapter]  # type: ignore[type-arg]

#: The teaching trace (issue 7): one line per chunk/message, citing its clause.
trace_logger = logging.getLogger("rtmp.trace")
trace_logger.propagate = False
trace_logger.addHandler(logging.NullHandler())


class ConnectionLoggerAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Prefix every record with ``[connection id]``."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> Tuple[Any, MutableMapping[str, Any]]:
        return f"[{self.extra['conn_id']}] {msg}", kwargs  # type: ignore[index]


def connection_logger(name: str, conn_id: str) -> ConnectionLoggerAdapter:
    """A logger adapter for module ``name`` that tags lines with ``conn_id``."""
    return ConnectionLoggerAdapter(logging.getLogger(name), {"conn_id": conn_id})

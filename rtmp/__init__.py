"""rtmp: a pure-Python Real-Time Messaging Protocol stack (client, server, codecs).

The public names (listed in the repository's ``refs/api.md``) are importable from here;
the codec modules are ``rtmp.amf0``, ``rtmp.amf3``, ``rtmp.flv`` and ``rtmp.ertmp``.  Heavy modules load
on first use.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from . import errors
from .errors import *  # noqa: F403 - the whole exception tree is public, as errors.__all__ lists it
from .message import Message, MessageType, StreamType

if TYPE_CHECKING:  # pragma: no cover
    from .client import Client, ClientConfig, ClientState
    from .commands import StatusEvent
    from .push import Push
    from .relay import RelayInfo
    from .server import ConnectionState, Server, ServerConfig, ServerConnection

__version__ = "0.1.0"

__all__ = [
    "StatusEvent",
    "Message",
    "MessageType",
    "StreamType",
    "Client",
    "ClientConfig",
    "ClientState",
    "Server",
    "ServerConfig",
    "ServerConnection",
    "ConnectionState",
    "Push",
    "RelayInfo",
]
__all__ += errors.__all__  # RTMPError, HandshakeError, ... (rtmp.errors)

_LAZY = {
    "Client": "client",
    "ClientConfig": "client",
    "ClientState": "client",
    "Server": "server",
    "ServerConfig": "server",
    "ServerConnection": "server",
    "ConnectionState": "server",
    "StatusEvent": "commands",
    "Push": "push",
    "RelayInfo": "relay",
    "amf0": None,
    "amf3": None,
    "flv": None,
    "ertmp": None,
}

logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    """PEP 562: import the client, server and codec modules on first use."""
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name] or name}", __name__)
        value = module if _LAZY[name] is None else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rtmp' has no attribute {name!r}")

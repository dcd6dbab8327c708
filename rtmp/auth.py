"""AUTH-ADOBE / AUTH-LLNW: publisher authentication as ffmpeg, FMLE and Wowza speak it.

No Adobe RTMP document defines this; our notes (``auth.md``) reconstruct it from ffmpeg's
``rtmpproto.c`` and from server implementations.  The exchange takes three connections,
each a fresh TCP connection and handshake; the client carries its credentials as a query
appended to the ``app`` and ``tcUrl`` of its ``connect`` command object::

    1. connect app="live"                       -> _error "... code=403 need auth; authmod=adobe ..."
    2. connect app="live?authmod=adobe&user=bob" -> _error "... ?reason=needauth&user=bob&salt=S&challenge=C&opaque=O"
    3. connect app="live?authmod=adobe&user=bob&challenge=c2&response=R&opaque=O" -> _result (or ?reason=authfailed)

with ``R = b64(md5(b64(md5(user + salt + password)) + (O or C) + c2))`` (AUTH-ADOBE hash).

Everything here is pure (no sockets); randomness comes from :mod:`secrets` unless a
``token`` function is given (tests pass a deterministic one).
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, field
from typing import Callable

from .errors import CommandError

logger = logging.getLogger(__name__)

__all__ = [
    "AUTHMOD_ADOBE",
    "AUTHMOD_LLNW",
    "AdobeAuthenticator",
    "AuthChallenge",
    "AuthResult",
    "AuthenticationError",
    "ClientAuth",
    "adobe_query",
    "adobe_response",
    "authfailed_description",
    "client_nonce",
    "llnw_query",
    "llnw_response",
    "needauth_description",
    "nosuchuser_description",
    "parse_description",
    "parse_query",
    "split_app_query",
    "stage0_description",
]

AUTHMOD_ADOBE = "adobe"
AUTHMOD_LLNW = "llnw"
#: AUTH-ADOBE stage 0: the marker that asks the client to come back with its user name.
NEED_AUTH = "code=403 need auth"
#: AUTH-LLNW: the digest's constants (realm, method, nonce count, qop) as ffmpeg fixes them.
LLNW_REALM = "live"
LLNW_METHOD = "publish"
LLNW_NC = "00000001"
LLNW_QOP = "auth"
#: The code of the ``_error`` info object carrying these descriptions (Appendix B).
REJECTED_CODE = "NetConnection.Connect.Rejected"

_REJECT_PREFIX = "[ AccessManager.Reject ] : "


class AuthenticationError(CommandError):
    """AUTH-ADOBE / AUTH-LLNW: authentication failed for good (bad credentials, no
    credentials, or a second challenge after a response was already sent)."""

    def __init__(self, reason: str, description: str = "") -> None:
        super().__init__(REJECTED_CODE, description or reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.reason} ({self.code}: {self.description})" if self.description else self.reason


# --------------------------------------------------------------------------------------
# Parsing.
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AuthChallenge:
    """AUTH-ADOBE: what an ``_error`` description says about authentication.

    ``authmod`` is ``"adobe"``, ``"llnw"`` or ``None`` (not an auth rejection);
    ``need_auth`` marks the stage-0 reply; ``reason`` is ``needauth``, ``authfailed``,
    ``nosuchuser`` or ``None``; ``params`` holds the ``key=value`` pairs after ``?reason``.
    """

    authmod: str | None
    need_auth: bool = False
    reason: str | None = None
    params: dict[str, str] = field(default_factory=dict)

    @property
    def user(self) -> str:
        return self.params.get("user", "")

    @property
    def salt(self) -> str:
        return self.params.get("salt", "")

    @property
    def challenge(self) -> str | None:
        return self.params.get("challenge")

    @property
    def opaque(self) -> str | None:
        return self.params.get("opaque")

    @property
    def nonce(self) -> str | None:
        return self.params.get("nonce")


def parse_description(description: str) -> AuthChallenge:
    """AUTH-ADOBE: parse an ``_error`` description the way ffmpeg's handle_connect_error does.

    ``authmod=`` is read up to the next space or ``]``; the parameters are the text after
    ``?reason=`` split on ``&``, each at its first ``=``.
    """
    authmod: str | None = None
    marker = description.find("authmod=")
    if marker >= 0:
        start = marker + len("authmod=")
        end = start
        while end < len(description) and description[end] not in " ];&":
            end += 1
        authmod = description[start:end] or None
    need_auth = NEED_AUTH in description
    reason: str | None = None
    params: dict[str, str] = {}
    query_at = description.find("?reason=")
    if query_at >= 0:
        params = parse_query(description[query_at + 1 :])
        reason = params.pop("reason", None)
    return AuthChallenge(authmod, need_auth, reason, params)


def parse_query(query: str) -> dict[str, str]:
    """AUTH-ADOBE: ``a=1&b=2`` (a leading ``?`` allowed) into a dict; values are not
    URL-decoded, since ffmpeg hashes and sends them exactly as they appear."""
    query = query.removeprefix("?")
    params: dict[str, str] = {}
    for item in query.split("&"):
        if not item:
            continue
        key, _, value = item.partition("=")
        params.setdefault(key, value)
    return params


def split_app_query(app: str) -> tuple[str, dict[str, str]]:
    """AUTH-ADOBE server checklist 1: ``"live?authmod=adobe&user=bob"`` ->
    ``("live", {"authmod": "adobe", "user": "bob"})``; strip before routing by app."""
    base, sep, query = app.partition("?")
    return base, (parse_query(query) if sep else {})


# --------------------------------------------------------------------------------------
# Hashes and client queries.
# --------------------------------------------------------------------------------------
def _b64_md5(*parts: str) -> str:
    return base64.b64encode(hashlib.md5("".join(parts).encode("utf-8")).digest()).decode("ascii")


def _hex_md5(*parts: str) -> str:
    return hashlib.md5("".join(parts).encode("utf-8")).hexdigest()


def adobe_response(
    user: str,
    salt: str,
    password: str,
    client_challenge: str,
    *,
    opaque: str | None = None,
    challenge: str | None = None,
) -> str:
    """AUTH-ADOBE hash: ``b64(md5(b64(md5(user+salt+password)) + (opaque or challenge) + c2))``.

    As ffmpeg: the server's opaque is used when it sent one, else its challenge (else
    nothing); ``client_challenge`` is the client's own ``challenge`` (c2).
    """
    h1 = _b64_md5(user, salt, password)  # AUTH-ADOBE hash: 24-char base64, '=' padded
    server_token = opaque if opaque is not None else (challenge or "")
    return _b64_md5(h1, server_token, client_challenge)


def adobe_query(user: str, client_challenge: str, response: str, opaque: str | None = None) -> str:
    """AUTH-ADOBE stage 2: the query the client appends to app and tcUrl."""
    query = f"?authmod={AUTHMOD_ADOBE}&user={user}&challenge={client_challenge}&response={response}"
    if opaque is not None:
        query += f"&opaque={opaque}"
    return query


def llnw_response(
    user: str,
    password: str,
    nonce: str,
    cnonce: str,
    app: str,
    *,
    nc: str = LLNW_NC,
    realm: str = LLNW_REALM,
    method: str = LLNW_METHOD,
    qop: str = LLNW_QOP,
) -> str:
    """AUTH-LLNW: the HTTP-Digest-like response, lowercase hex.

    ``HA1 = md5(user:live:password)``, ``HA2 = md5(publish:/app[/_definst_])`` (the
    instance is added when ``app`` has no ``/``), ``md5(HA1:nonce:nc:cnonce:auth:HA2)``.
    """
    ha1 = _hex_md5(user, ":", realm, ":", password)
    path = app if "/" in app else app + "/_definst_"
    ha2 = _hex_md5(method, ":/", path)
    return _hex_md5(ha1, ":", nonce, ":", nc, ":", cnonce, ":", qop, ":", ha2)


def llnw_query(user: str, nonce: str, cnonce: str, response: str, nc: str = LLNW_NC) -> str:
    """AUTH-LLNW stage 2: the query the client appends to app and tcUrl."""
    return (
        f"?authmod={AUTHMOD_LLNW}&user={user}&nonce={nonce}&cnonce={cnonce}"
        f"&nc={nc}&response={response}"
    )


def client_nonce() -> str:
    """AUTH-ADOBE c2 / AUTH-LLNW cnonce: 8 lowercase hex digits, as ffmpeg's ``%08x``."""
    return f"{secrets.randbits(32):08x}"


class ClientAuth:
    """AUTH-ADOBE / AUTH-LLNW, client side: turn each rejection into the next query.

    Keep one instance across the reconnects of one publish attempt::

        auth = ClientAuth(username, password)
        query = ""
        while True:
            connect with app + query and tcUrl + query
            on _error: query = auth.next_query(description, app)  # raises when hopeless

    The logic is ffmpeg's handle_connect_error, in its order.
    """

    def __init__(
        self,
        username: str | None,
        password: str | None,
        nonce: Callable[[], str] = client_nonce,
    ) -> None:
        self.username = username
        self.password = password
        self._nonce = nonce
        #: Whether a response has been sent already (ffmpeg's ``auth_tried``).
        self.tried = False

    def next_query(self, description: str, app: str) -> str:
        """The query for the next connect, or :class:`AuthenticationError`."""
        info = parse_description(description)
        if info.authmod not in (AUTHMOD_ADOBE, AUTHMOD_LLNW):
            raise AuthenticationError("connect rejected (not an authentication challenge)", description)
        if not self.username or self.password is None:
            raise AuthenticationError("authentication required, but no credentials set", description)
        if info.reason == "authfailed":
            raise AuthenticationError("incorrect username/password", description)
        if info.reason == "nosuchuser":
            raise AuthenticationError("incorrect username", description)
        if self.tried:
            raise AuthenticationError("authentication failed", description)
        if info.need_auth:  # AUTH-ADOBE stage 0 -> stage 1
            return f"?authmod={info.authmod}&user={self.username}"
        if info.reason != "needauth":
            raise AuthenticationError("unexpected authentication reply", description)
        self.tried = True
        cnonce = self._nonce()
        if info.authmod == AUTHMOD_ADOBE:
            response = adobe_response(
                info.user, info.salt, self.password, cnonce,
                opaque=info.opaque, challenge=info.challenge,
            )  # fmt: skip
            return adobe_query(info.user, cnonce, response, info.opaque)
        nonce = info.nonce or ""
        response = llnw_response(info.user, self.password, nonce, cnonce, split_app_query(app)[0])
        return llnw_query(info.user, nonce, cnonce, response)


# --------------------------------------------------------------------------------------
# Server side.
# --------------------------------------------------------------------------------------
def stage0_description(authmod: str = AUTHMOD_ADOBE) -> str:
    """AUTH-ADOBE stage 0: ask for the user name (FMS/crtmpserver wording)."""
    return f"{_REJECT_PREFIX}[ {NEED_AUTH}; authmod={authmod} ] : "


def needauth_description(
    user: str, salt: str, challenge: str, opaque: str | None = None
) -> str:
    """AUTH-ADOBE stage 1: the challenge.  Nothing may follow the last value (ffmpeg reads
    each value up to the next ``&`` or the end of the string)."""
    text = (f"{_REJECT_PREFIX}[ authmod={AUTHMOD_ADOBE} ] : "
            f"?reason=needauth&user={user}&salt={salt}&challenge={challenge}")
    if opaque is not None:
        text += f"&opaque={opaque}"
    return text


def authfailed_description(opaque: str | None = None, authmod: str = AUTHMOD_ADOBE) -> str:
    """AUTH-ADOBE stage 2 failure: ffmpeg stops with "Incorrect username/password"."""
    text = f"{_REJECT_PREFIX}[ authmod={authmod} ] : ?reason=authfailed"
    if opaque is not None:
        text += f"&opaque={opaque}"
    return text


def nosuchuser_description(authmod: str = AUTHMOD_ADOBE) -> str:
    """AUTH-ADOBE: unknown user (only when revealing that is acceptable)."""
    return f"{_REJECT_PREFIX}[ authmod={authmod} ] : ?reason=nosuchuser"


@dataclass(frozen=True)
class AuthResult:
    """The verdict on one connect: ``accepted``, or the ``description`` for the
    ``_error`` (``NetConnection.Connect.Rejected``) after which the server closes.

    ``app`` is the application name with the auth query removed; ``stage`` is one of
    ``"need-auth"``, ``"challenge"``, ``"failed"``, ``"accepted"``.
    """

    accepted: bool
    stage: str
    app: str
    description: str = ""
    user: str | None = None


def _token() -> str:
    return secrets.token_urlsafe(9)  # 12 chars of [A-Za-z0-9_-]: no '&', no space


@dataclass
class _Pending:
    user: str
    salt: str
    challenge: str
    opaque: str


class AdobeAuthenticator:
    """AUTH-ADOBE, server side: challenge publishers, verify responses, refuse replays.

    One instance serves every connection of a server (the three stages arrive on three
    TCP connections).  Each stage-1 reply gets a fresh random salt, challenge and opaque;
    the pending challenge is found again by the opaque the client echoes and is removed
    at the first verification attempt, right or wrong, so a captured response cannot be
    replayed.  At most ``max_pending`` challenges are remembered (oldest dropped).

    Unknown users get a challenge too and fail at stage 2 (``authfailed``), so the
    replies do not reveal which user names exist, unless ``reveal_unknown_user=True``
    (then stage 1 answers ``nosuchuser``).
    """

    def __init__(
        self,
        username: str | None = None,
        password: str | None = None,
        *,
        users: dict[str, str] | None = None,
        max_pending: int = 1024,
        reveal_unknown_user: bool = False,
        token: Callable[[], str] = _token,
    ) -> None:
        self.users: dict[str, str] = dict(users or {})
        if username is not None:
            if password is None:
                raise ValueError("a username needs a password")
            self.users[username] = password
        if not self.users:
            raise ValueError("AdobeAuthenticator needs at least one username and password")
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self.max_pending = max_pending
        self.reveal_unknown_user = reveal_unknown_user
        self._token = token
        self._pending: collections.OrderedDict[str, _Pending] = collections.OrderedDict()

    @property
    def pending_count(self) -> int:
        """How many issued challenges are still unanswered."""
        return len(self._pending)

    def check(self, app: str, tc_url: str | None = None) -> AuthResult:
        """Judge one connect from its command object's ``app`` (and ``tcUrl``).

        ffmpeg appends the same query to both; the one in ``app`` wins, ``tcUrl`` is a
        fallback for clients that put it only there.
        """
        base, params = split_app_query(app)
        if not params and tc_url and "?" in tc_url:
            params = parse_query(tc_url.split("?", 1)[1])
        authmod = params.get("authmod")
        user = params.get("user")
        if authmod != AUTHMOD_ADOBE or not user:  # AUTH-ADOBE stage 0
            return AuthResult(False, "need-auth", base, stage0_description())
        if "response" not in params:  # AUTH-ADOBE stage 1
            if user not in self.users and self.reveal_unknown_user:
                return AuthResult(False, "failed", base, nosuchuser_description(), user)
            return AuthResult(False, "challenge", base, self._issue(user), user)
        return self._verify(base, user, params)

    def _issue(self, user: str) -> str:
        pending = _Pending(user, self._token(), self._token(), self._token())
        self._pending[pending.opaque] = pending
        while len(self._pending) > self.max_pending:
            self._pending.popitem(last=False)
        logger.debug("AUTH-ADOBE challenge for user %r (opaque %s)", user, pending.opaque)
        return needauth_description(user, pending.salt, pending.challenge, pending.opaque)

    def _find(self, user: str, opaque: str | None) -> _Pending | None:
        """Take (remove) the pending challenge: by opaque, or the user's latest one."""
        if opaque is not None:
            pending = self._pending.pop(opaque, None)
            return pending if pending is not None and pending.user == user else None
        for key in reversed(self._pending):
            if self._pending[key].user == user:
                return self._pending.pop(key)
        return None

    def _verify(self, base: str, user: str, params: dict[str, str]) -> AuthResult:
        opaque = params.get("opaque")
        pending = self._find(user, opaque)
        password = self.users.get(user)
        if pending is None or password is None:
            logger.info("AUTH-ADOBE: no pending challenge (or unknown user) for %r", user)
            return AuthResult(False, "failed", base, authfailed_description(opaque), user)
        expected = adobe_response(
            user, pending.salt, password, params.get("challenge", ""),
            opaque=pending.opaque if opaque is not None else None,
            challenge=pending.challenge,
        )  # fmt: skip
        if hmac.compare_digest(expected.encode(), params.get("response", "").encode()):
            logger.info("AUTH-ADOBE: user %r authenticated", user)
            return AuthResult(True, "accepted", base, "", user)
        logger.info("AUTH-ADOBE: wrong response for user %r", user)
        return AuthResult(False, "failed", base, authfailed_description(opaque), user)

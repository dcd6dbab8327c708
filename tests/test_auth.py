"""AUTH-ADOBE and AUTH-LLNW: publisher authentication as ffmpeg's rtmpproto.c speaks it.

The expected hashes are computed here from the formulas of our notes (auth.md) with
hashlib and base64 directly, independently of rtmp.auth.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Iterator
from typing import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtmp.auth import (
    AdobeAuthenticator,
    AuthenticationError,
    ClientAuth,
    adobe_query,
    adobe_response,
    authfailed_description,
    llnw_response,
    needauth_description,
    parse_description,
    parse_query,
    split_app_query,
    stage0_description,
)
from rtmp.errors import CommandError

TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-=+/", min_size=1, max_size=16)


def b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def counter_tokens(prefix: str = "t") -> Callable[[], str]:
    numbers: Iterator[int] = itertools.count(1)
    return lambda: f"{prefix}{next(numbers)}"


class TestAdobeHash:
    """AUTH-ADOBE hash: b64(md5(b64(md5(user+salt+password)) + (opaque or challenge) + c2))."""

    @pytest.mark.spec("AUTH-ADOBE hash")
    def test_worked_example_from_the_notes(self) -> None:
        h1 = b64md5(b"bobs4ltsecret")
        assert len(h1) == 24 and h1.endswith("==")
        expected = b64md5(h1.encode() + b"0paq" + b"1a2b3c4d")
        assert adobe_response("bob", "s4lt", "secret", "1a2b3c4d", opaque="0paq", challenge="ch") == expected

    @pytest.mark.spec("AUTH-ADOBE hash")
    def test_challenge_used_without_opaque(self) -> None:
        h1 = b64md5(b"alicesaltpw")
        expected = b64md5(h1.encode() + b"srvch" + b"0000abcd")
        assert adobe_response("alice", "salt", "pw", "0000abcd", challenge="srvch") == expected
        assert adobe_response("alice", "salt", "pw", "0000abcd", opaque="other", challenge="srvch") != expected

    @pytest.mark.spec("AUTH-ADOBE hash")
    @given(TOKEN, TOKEN, TOKEN, TOKEN, TOKEN)
    def test_matches_formula(self, user: str, salt: str, password: str, opaque: str, c2: str) -> None:
        h1 = b64md5((user + salt + password).encode())
        assert adobe_response(user, salt, password, c2, opaque=opaque) == b64md5((h1 + opaque + c2).encode())

    @pytest.mark.spec("AUTH-ADOBE")
    def test_stage2_query_layout(self) -> None:
        assert adobe_query("bob", "1a2b3c4d", "R==", "O") == (
            "?authmod=adobe&user=bob&challenge=1a2b3c4d&response=R==&opaque=O"
        )
        assert adobe_query("bob", "1a2b3c4d", "R==") == "?authmod=adobe&user=bob&challenge=1a2b3c4d&response=R=="


class TestLlnwHash:
    """AUTH-LLNW: the HTTP-Digest-like response."""

    @pytest.mark.spec("AUTH-LLNW")
    def test_formula(self) -> None:
        ha1 = hashlib.md5(b"bob:live:secret").hexdigest()
        ha2 = hashlib.md5(b"publish:/live/_definst_").hexdigest()
        expected = hashlib.md5(f"{ha1}:N0NCE:00000001:cafebabe:auth:{ha2}".encode()).hexdigest()
        assert llnw_response("bob", "secret", "N0NCE", "cafebabe", "live") == expected

    @pytest.mark.spec("AUTH-LLNW")
    def test_app_with_instance_keeps_its_path(self) -> None:
        ha1 = hashlib.md5(b"u:live:p").hexdigest()
        ha2 = hashlib.md5(b"publish:/app/inst").hexdigest()
        expected = hashlib.md5(f"{ha1}:n:00000001:c:auth:{ha2}".encode()).hexdigest()
        assert llnw_response("u", "p", "n", "c", "app/inst") == expected


class TestParsing:
    """AUTH-ADOBE: the ``_error`` description and the app query."""

    @pytest.mark.spec("AUTH-ADOBE")
    def test_stage0(self) -> None:
        info = parse_description("[ AccessManager.Reject ] : [ code=403 need auth; authmod=adobe ] : ")
        assert info.authmod == "adobe" and info.need_auth and info.reason is None
        short = parse_description("code=403 need auth; authmod=adobe")  # mediamtx wording
        assert short.authmod == "adobe" and short.need_auth

    @pytest.mark.spec("AUTH-ADOBE")
    def test_needauth(self) -> None:
        text = (
            "[ AccessManager.Reject ] : [ authmod=adobe ] : "
            "?reason=needauth&user=bob&salt=Zy1+/=&challenge=Ch4ll==&opaque=0paq=="
        )
        info = parse_description(text)
        assert info.authmod == "adobe" and not info.need_auth and info.reason == "needauth"
        assert (info.user, info.salt, info.challenge, info.opaque) == ("bob", "Zy1+/=", "Ch4ll==", "0paq==")

    @pytest.mark.spec("AUTH-ADOBE")
    def test_not_an_auth_error(self) -> None:
        info = parse_description("Connection rejected by the application")
        assert info.authmod is None and info.reason is None and info.params == {}

    @pytest.mark.spec("AUTH-ADOBE")
    def test_app_query(self) -> None:
        assert split_app_query("live?authmod=adobe&user=bob") == ("live", {"authmod": "adobe", "user": "bob"})
        assert split_app_query("live/inst") == ("live/inst", {})
        assert parse_query("?a=1&b=x=y&&c") == {"a": "1", "b": "x=y", "c": ""}


class TestClientAuth:
    """AUTH-ADOBE / AUTH-LLNW, client side: ffmpeg's handle_connect_error decisions."""

    @pytest.mark.spec("AUTH-ADOBE")
    def test_stage0_then_stage1(self) -> None:
        client = ClientAuth("bob", "secret", nonce=lambda: "1a2b3c4d")
        assert client.next_query(stage0_description(), "live") == "?authmod=adobe&user=bob"
        query = client.next_query(needauth_description("bob", "s4lt", "ch", "0paq"), "live")
        h1 = b64md5(b"bobs4ltsecret")
        response = b64md5(h1.encode() + b"0paq1a2b3c4d")
        assert query == f"?authmod=adobe&user=bob&challenge=1a2b3c4d&response={response}&opaque=0paq"
        assert client.tried

    @pytest.mark.spec("AUTH-ADOBE")
    def test_hashes_the_user_the_server_echoes(self) -> None:
        client = ClientAuth("Bob", "pw", nonce=lambda: "00000001")
        query = client.next_query(needauth_description("bob", "s", "c"), "live")
        params = parse_query(query)
        assert params["user"] == "bob" and "opaque" not in params
        assert params["response"] == b64md5(b64md5(b"bobspw").encode() + b"c00000001")

    @pytest.mark.spec("AUTH-ADOBE")
    @pytest.mark.parametrize(
        "description, message",
        [
            (authfailed_description("o"), "incorrect username/password"),
            ("[ authmod=adobe ] : ?reason=nosuchuser", "incorrect username"),
            ("NetConnection.Connect.Rejected for a reason", "not an authentication challenge"),
        ],
    )
    def test_final_failures(self, description: str, message: str) -> None:
        client = ClientAuth("bob", "secret")
        with pytest.raises(AuthenticationError, match=message) as info:
            client.next_query(description, "live")
        assert isinstance(info.value, CommandError)
        assert info.value.code == "NetConnection.Connect.Rejected"

    @pytest.mark.spec("AUTH-ADOBE")
    def test_no_credentials(self) -> None:
        with pytest.raises(AuthenticationError, match="no credentials"):
            ClientAuth(None, None).next_query(stage0_description(), "live")

    @pytest.mark.spec("AUTH-ADOBE")
    def test_second_challenge_after_a_response_fails(self) -> None:
        client = ClientAuth("bob", "secret")
        client.next_query(needauth_description("bob", "s", "c", "o"), "live")
        with pytest.raises(AuthenticationError, match="authentication failed"):
            client.next_query(needauth_description("bob", "s2", "c2", "o2"), "live")

    @pytest.mark.spec("AUTH-LLNW")
    def test_llnw_flow(self) -> None:
        client = ClientAuth("bob", "secret", nonce=lambda: "cafebabe")
        assert client.next_query("[ code=403 need auth; authmod=llnw ]", "live") == "?authmod=llnw&user=bob"
        query = client.next_query("[ authmod=llnw ] : ?reason=needauth&user=bob&nonce=N0NCE", "live?authmod=llnw")
        ha1 = hashlib.md5(b"bob:live:secret").hexdigest()
        ha2 = hashlib.md5(b"publish:/live/_definst_").hexdigest()
        response = hashlib.md5(f"{ha1}:N0NCE:00000001:cafebabe:auth:{ha2}".encode()).hexdigest()
        assert query == f"?authmod=llnw&user=bob&nonce=N0NCE&cnonce=cafebabe&nc=00000001&response={response}"


class TestAdobeAuthenticator:
    """AUTH-ADOBE, server side: the three stages, replay refusal, descriptions ffmpeg parses."""

    def stage1(self, server: AdobeAuthenticator, user: str = "bob") -> dict:  # type: ignore[type-arg]
        result = server.check(f"live?authmod=adobe&user={user}")
        assert not result.accepted and result.stage == "challenge" and result.app == "live"
        info = parse_description(result.description)
        assert info.reason == "needauth" and info.authmod == "adobe" and info.user == user
        return info.params

    def stage2_app(self, params: dict, password: str, c2: str = "1a2b3c4d") -> str:  # type: ignore[type-arg]
        # The client side computed by hand, from the formula.
        h1 = b64md5((params["user"] + params["salt"] + password).encode())
        response = b64md5((h1 + params["opaque"] + c2).encode())
        return f"live?authmod=adobe&user={params['user']}&challenge={c2}&response={response}&opaque={params['opaque']}"

    @pytest.mark.spec("AUTH-ADOBE")
    def test_stage0_description(self) -> None:
        result = AdobeAuthenticator("bob", "secret").check("live", "rtmp://h:1935/live")
        assert not result.accepted and result.stage == "need-auth"
        assert "code=403 need auth" in result.description and "authmod=adobe" in result.description
        assert result.description == "[ AccessManager.Reject ] : [ code=403 need auth; authmod=adobe ] : "

    @pytest.mark.spec("AUTH-ADOBE", "AUTH-ADOBE hash")
    def test_full_exchange_accepts(self) -> None:
        server = AdobeAuthenticator("bob", "secret")
        params = self.stage1(server)
        assert set(params) == {"user", "salt", "challenge", "opaque"}
        result = server.check(self.stage2_app(params, "secret"))
        assert result.accepted and result.stage == "accepted" and result.app == "live" and result.user == "bob"
        assert server.pending_count == 0

    @pytest.mark.spec("AUTH-ADOBE")
    def test_fresh_tokens_per_attempt(self) -> None:
        server = AdobeAuthenticator("bob", "secret")
        first, second = self.stage1(server), self.stage1(server)
        assert first["salt"] != second["salt"] and first["challenge"] != second["challenge"]
        assert first["opaque"] != second["opaque"]
        for token in (*first.values(), *second.values()):
            assert "&" not in token and " " not in token

    @pytest.mark.spec("AUTH-ADOBE")
    def test_replay_refused(self) -> None:
        server = AdobeAuthenticator("bob", "secret")
        app = self.stage2_app(self.stage1(server), "secret")
        assert server.check(app).accepted
        replay = server.check(app)
        assert not replay.accepted and replay.stage == "failed"
        assert "?reason=authfailed" in replay.description

    @pytest.mark.spec("AUTH-ADOBE")
    def test_wrong_password_then_challenge_is_spent(self) -> None:
        server = AdobeAuthenticator("bob", "secret")
        params = self.stage1(server)
        wrong = server.check(self.stage2_app(params, "guess"))
        assert not wrong.accepted and "authmod=adobe" in wrong.description
        assert "?reason=authfailed" in wrong.description
        # The same challenge, now with the right password, is refused: it was used once.
        assert not server.check(self.stage2_app(params, "secret")).accepted

    @pytest.mark.spec("AUTH-ADOBE")
    def test_unknown_user_not_revealed_by_default(self) -> None:
        server = AdobeAuthenticator("bob", "secret")
        params = self.stage1(server, "mallory")
        assert not server.check(self.stage2_app(params, "secret")).accepted
        revealing = AdobeAuthenticator("bob", "secret", reveal_unknown_user=True)
        result = revealing.check("live?authmod=adobe&user=mallory")
        assert "?reason=nosuchuser" in result.description

    @pytest.mark.spec("AUTH-ADOBE")
    def test_client_and_server_interoperate(self) -> None:
        server = AdobeAuthenticator(users={"bob": "secret", "eve": "x"}, token=counter_tokens())
        client = ClientAuth("bob", "secret")
        query = ""
        for _ in range(3):  # ffmpeg: at most three connections
            result = server.check("live" + query, "rtmp://127.0.0.1:1935/live" + query)
            if result.accepted:
                break
            query = client.next_query(result.description, "live")
        assert result.accepted and result.user == "bob"

    @pytest.mark.spec("AUTH-ADOBE")
    def test_query_in_tcurl_only(self) -> None:
        server = AdobeAuthenticator("bob", "secret")
        result = server.check("live", "rtmp://h:1935/live?authmod=adobe&user=bob")
        assert result.stage == "challenge"

    @pytest.mark.spec("AUTH-ADOBE")
    def test_pending_is_bounded(self) -> None:
        server = AdobeAuthenticator("bob", "secret", max_pending=2)
        oldest = self.stage1(server)
        self.stage1(server)
        self.stage1(server)
        assert server.pending_count == 2
        assert not server.check(self.stage2_app(oldest, "secret")).accepted

    @pytest.mark.spec("AUTH-ADOBE")
    def test_configuration_errors(self) -> None:
        with pytest.raises(ValueError):
            AdobeAuthenticator()
        with pytest.raises(ValueError):
            AdobeAuthenticator("bob", None)
        with pytest.raises(ValueError):
            AdobeAuthenticator("bob", "pw", max_pending=0)

"""rtmp.Server: AUTH-ADOBE with ffmpeg's ``user:pass@`` URLs, and rtmps with a self-signed cert."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, List

import pytest

from rtmp import Client, ClientConfig, CommandError, RTMPError, Server, ServerConfig, auth, flv
from tests.conftest import require_peer
from tests.interop.test_server_ffmpeg import ffmpeg_publish, url_of, wait_until
from tests.media import sample_flv
from tests.peers import run

pytestmark = pytest.mark.interop


def auth_server(**extra: Any) -> Server:
    return Server(ServerConfig(addr="127.0.0.1:0", require_auth=True, username="bob",
                               password="s3cret", **extra))


class TestAdobeAuth:
    """AUTH-ADOBE: the three-connection challenge/response ffmpeg performs."""

    @pytest.mark.spec("AUTH-ADOBE", "AUTH-ADOBE hash")
    def test_ffmpeg_with_right_password_publishes(self, tmp_path: Path) -> None:
        publishes: List[str] = []
        with auth_server(on_publish=lambda c, n, t: publishes.append(n)) as server:
            host, port = server.address
            url = f"rtmp://bob:s3cret@{host}:{port}/live/key"
            done = run(ffmpeg_publish(url, sample_flv(seconds=3), paced=False), timeout=60)
            assert done.returncode == 0, done.stderr.decode(errors="replace")
            assert publishes == ["key"]
            assert server.stats.auth_failures == 0
            assert server._authenticator.pending_count == 0  # the challenge was used up

    @pytest.mark.spec("AUTH-ADOBE")
    def test_ffmpeg_with_wrong_password_is_refused(self) -> None:
        publishes: List[str] = []
        with auth_server(on_publish=lambda c, n, t: publishes.append(n)) as server:
            host, port = server.address
            url = f"rtmp://bob:wrong@{host}:{port}/live/key"
            done = run(ffmpeg_publish(url, sample_flv(seconds=3), paced=False), timeout=60)
        assert done.returncode != 0
        assert b"Incorrect username/password" in done.stderr, done.stderr
        assert publishes == []
        assert server.stats.auth_failures == 1

    @pytest.mark.spec("AUTH-ADOBE")
    def test_no_credentials_is_refused(self) -> None:
        with auth_server(require_auth_players=True) as server:
            with Client() as anonymous, pytest.raises(CommandError) as refused:
                anonymous.connect(url_of(server))
        assert refused.value.code == "NetConnection.Connect.Rejected"
        assert "authmod=adobe" in refused.value.description
        assert "code=403 need auth" in refused.value.description

    @pytest.mark.spec("AUTH-ADOBE", "AUTH-ADOBE hash")
    def test_response_cannot_be_replayed(self) -> None:
        with auth_server() as server:
            base = url_of(server, "live")
            with Client() as first, pytest.raises(CommandError) as challenged:
                first.connect(base + "?authmod=adobe&user=bob")
            challenge = auth.parse_description(challenged.value.description)
            assert challenge.salt and challenge.opaque
            c2 = "1a2b3c4d"
            response = auth.adobe_response("bob", challenge.salt, "s3cret", c2,
                                           opaque=challenge.opaque, challenge=challenge.challenge)
            query = auth.adobe_query("bob", c2, response, challenge.opaque)
            with Client() as second:
                second.connect(base + query)  # the right answer, once
            with Client() as replay, pytest.raises(CommandError) as refused:
                replay.connect(base + query)
            assert "reason=authfailed" in refused.value.description
            # A second challenge for the same user has a fresh salt.
            with Client() as third, pytest.raises(CommandError) as again:
                third.connect(base + "?authmod=adobe&user=bob")
            assert auth.parse_description(again.value.description).salt != challenge.salt


def self_signed(tmp_path: Path) -> ssl.SSLContext:
    openssl = require_peer("openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                "-days", "1", "-keyout", str(key), "-out", str(cert)], timeout=60)
    assert made.returncode == 0, made.stderr.decode(errors="replace")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


class TestRtmps:
    """rtmps: RTMP over TLS when ``ssl_context`` is set."""

    @pytest.mark.spec("RTMP 7.2.2.6")
    def test_ffmpeg_publishes_and_plays_over_tls(self, tmp_path: Path) -> None:
        context = self_signed(tmp_path)
        source = sample_flv()
        media: List[int] = []
        config = ServerConfig(addr="127.0.0.1:0", ssl_context=context,
                              on_message=lambda conn, msg: media.append(msg.type))
        with Server(config) as server:
            url = url_of(server, scheme="rtmps")
            done = run(ffmpeg_publish(url, source, paced=False), timeout=60)
            assert done.returncode == 0, done.stderr.decode(errors="replace")
            # ffmpeg exits once its bytes are in the socket: the session reads them to the
            # end before it ends (stop() would cut what is still unread, by design).
            wait_until(lambda: server.connection_count == 0, 30, "the publisher's session to end")
            # Plain RTMP to a TLS port fails cleanly (handshake error) and does not hurt.
            with Client(ClientConfig(connect_timeout=5)) as plain, pytest.raises(RTMPError):
                plain.connect(url_of(server))
            # Our client over TLS too (certificate not verified: it is self-signed).
            client_context = ssl.create_default_context()
            client_context.check_hostname = False
            client_context.verify_mode = ssl.CERT_NONE
            with Client(ClientConfig(ssl_context=client_context)) as client:
                client.connect(url)
                assert client.server_info.get("code") == "NetConnection.Connect.Success"
        # on_message saw every tag ffmpeg sent through TLS (frames and sequence headers).
        with flv.Reader(source) as reader:
            tags = [tag.type for tag in reader]
        assert media.count(9) == tags.count(9) > 0
        assert media.count(8) == tags.count(8) > 0

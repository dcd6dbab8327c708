"""rtmp.Server: AUTH-ADOBE with ffmpeg's ``user:pass@`` URLs, and rtmps with a self-signed cert."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any, List

import pytest

from rtmp import Client, ClientConfig, CommandError, RTMPError, Server, ServerConfig, auth, flv
from tests.conftest import require_peer
from tests.interop.test_server_ffmpeg import ffmpeg_publish, url_of, wait_until
from tests.media import sample_flv
from tests.peers import free_port, run, stop_process, wait_port

ROOT = Path(__file__).resolve().parents[2]

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


class TestPublishersOnly:
    """``require_auth`` challenges publishers only; ``require_auth_players`` everyone.

    AUTH-ADOBE runs in ``connect``, which players and publishers share: a connect that
    calls itself a publisher (``type: "nonprivate"``, as ffmpeg sends) or carries an auth
    query is challenged, any other is accepted and may play, and its ``publish`` is refused.
    """

    @staticmethod
    def _publish_and_dump(server: Server, tmp_path: Path) -> "tuple[Any, Path]":
        """ffmpeg publishes with credentials (paced); rtmpdump plays without any."""
        host, port = server.address
        publisher = subprocess.Popen(
            ffmpeg_publish(f"rtmp://bob:s3cret@{host}:{port}/live/key", sample_flv(seconds=8)),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_until(lambda: server.hub.is_live("live", "key"), 30, "ffmpeg to publish")
            out = tmp_path / "dump.flv"
            dumped = run([require_peer("rtmpdump"), "-r", url_of(server), "--live", "-m", "10",
                          "-B", "2", "--stop", "2", "-o", str(out)], timeout=60)
        finally:
            stop_process(publisher)
        return dumped, out

    @pytest.mark.spec("AUTH-ADOBE", "RTMP 7.2.2.1")
    def test_rtmpdump_plays_without_credentials(self, tmp_path: Path) -> None:
        with auth_server() as server:
            dumped, out = self._publish_and_dump(server, tmp_path)
        log = dumped.stderr.decode(errors="replace")
        assert out.exists() and out.stat().st_size > 0, log
        with flv.Reader(out) as reader:
            assert any(tag.type == 9 for tag in reader), log  # video arrived

    @pytest.mark.spec("AUTH-ADOBE")
    def test_rtmpdump_is_refused_when_players_need_auth(self, tmp_path: Path) -> None:
        with auth_server(require_auth_players=True) as server:
            dumped, out = self._publish_and_dump(server, tmp_path)
            assert server.stats.auth_failures == 0  # refused at stage 0: no answer came
        log = dumped.stderr.decode(errors="replace")
        assert dumped.returncode != 0, log
        assert "server sent error" in log, log  # librtmp's words for the connect _error
        assert not out.exists() or out.stat().st_size <= 13 + 64, log  # no media, at most the header

    @pytest.mark.spec("AUTH-ADOBE")
    def test_our_player_needs_no_credentials_and_publish_is_refused(self) -> None:
        with auth_server() as server:
            with Client() as anonymous:
                anonymous.connect(url_of(server))  # a player's connect: not challenged
                with pytest.raises(CommandError) as refused:
                    anonymous.publish()
        assert refused.value.code == "NetStream.Publish.BadName"
        challenge = auth.parse_description(refused.value.description)
        assert challenge.authmod == "adobe" and challenge.need_auth

    @pytest.mark.spec("AUTH-ADOBE", "AUTH-ADOBE hash")
    def test_our_publisher_authenticates_when_publish_asks(self) -> None:
        connects: List[str] = []
        with auth_server(on_connect=lambda conn: connects.append(conn.user or "")) as server:
            host, port = server.address
            with Client() as client:
                client.connect(f"rtmp://bob:s3cret@{host}:{port}/live/key")
                client.publish()  # refused, reconnects through the challenge, publishes
                assert server.hub.is_live("live", "key")
            with Client(ClientConfig(username="bob", password="wrong")) as bad:
                bad.connect(url_of(server))
                with pytest.raises(auth.AuthenticationError) as failed:
                    bad.publish()
        assert connects == ["", "bob", ""]  # the player's connect, then the authenticated one
        assert failed.value.reason == "incorrect username/password"

    def test_players_option_needs_credentials(self) -> None:
        with pytest.raises(ValueError, match="require_auth needs username and password"):
            ServerConfig(require_auth_players=True)
        config = ServerConfig(require_auth_players=True, username="u", password="p")
        assert config.require_auth  # implied


def tls_files(tmp_path: Path) -> "tuple[Path, Path]":
    """A self-signed certificate for 127.0.0.1 (in subjectAltName: host checks use it)."""
    openssl = require_peer("openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1", "-keyout", str(key),
                "-out", str(cert)], timeout=60)
    assert made.returncode == 0, made.stderr.decode(errors="replace")
    return cert, key


class TestTrust:
    """rtmps to a self-signed server: refused by default, trusted with a CA file or when
    told not to check (ClientConfig.ca_file / tls_insecure; --ca-file / --insecure)."""

    def test_client_api(self, tmp_path: Path) -> None:
        cert, key = tls_files(tmp_path)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        with Server(ServerConfig(addr="127.0.0.1:0", ssl_context=context)) as server:
            url = url_of(server, scheme="rtmps")
            with Client(ClientConfig(connect_timeout=10)) as default, \
                    pytest.raises(RTMPError, match="certificate .* is not trusted"):
                default.connect(url)
            for config in (ClientConfig(ca_file=str(cert)), ClientConfig(tls_insecure=True)):
                with Client(config) as client:
                    client.connect(url)
                    assert client.server_info.get("code") == "NetConnection.Connect.Success"
            with pytest.raises(ValueError, match="cannot load CA file"), Client(
                    ClientConfig(ca_file=str(tmp_path / "missing.pem"))) as missing:
                missing.connect(url)

    def test_command_line(self, tmp_path: Path) -> None:
        cert, key = tls_files(tmp_path)
        port = free_port()
        url = f"rtmps://127.0.0.1:{port}/live/tls"
        source = str(sample_flv(seconds=1))
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        serve = subprocess.Popen([sys.executable, "-m", "rtmp", "serve", "--addr",
                                  f"127.0.0.1:{port}", "--tls-cert", str(cert), "--tls-key",
                                  str(key)], env=env, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(port, timeout=15, process=serve)

            def publish(*flags: str) -> "subprocess.CompletedProcess[bytes]":
                return subprocess.run([sys.executable, "-m", "rtmp", "publish", source, url,
                                       "--fast", "--timeout", "10", *flags],
                                      env=env, capture_output=True, timeout=60)

            refused = publish()
            trusted = publish("--ca-file", str(cert))
            insecure = publish("--insecure")
        finally:
            assert stop_process(serve, timeout=10) == 0
        lines = refused.stderr.decode().strip().splitlines()
        assert refused.returncode == 1 and len(lines) == 1, lines
        assert "certificate is not trusted" in lines[0] and "--ca-file" in lines[0], lines
        for done in (trusted, insecure):
            assert done.returncode == 0, done.stderr.decode()
            assert b"rtmp: sent " in done.stderr

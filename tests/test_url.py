"""RTMP 7.2.1.1 (app, tcUrl) and RTMP 7.2.2.1 (stream names): URL parsing as ffmpeg does it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtmp.url import RTMPURL, parse_url

SEGMENT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=12)


class TestAppAndTcUrl:
    """RTMP 7.2.1.1: ``app`` and ``tcUrl`` of the connect command object."""

    @pytest.mark.spec("RTMP 7.2.1.1")
    def test_app_and_stream(self) -> None:
        url = parse_url("rtmp://example.com/live/mystream")
        assert (url.scheme, url.host, url.port) == ("rtmp", "example.com", 1935)
        assert url.app == "live"
        assert url.stream == "mystream"
        assert url.tc_url == "rtmp://example.com:1935/live"
        assert not url.tls

    @pytest.mark.spec("RTMP 7.2.1.1")
    def test_instance_belongs_to_app(self) -> None:
        url = parse_url("rtmp://h:1940/live/inst1/stream")
        assert url.app == "live/inst1"
        assert url.stream == "stream"
        assert url.tc_url == "rtmp://h:1940/live/inst1"

    @pytest.mark.spec("RTMP 7.2.1.1")
    def test_deeper_stream_path_kept_in_stream(self) -> None:
        url = parse_url("rtmp://h/app/inst/dir/name")
        assert (url.app, url.stream) == ("app/inst", "dir/name")

    @pytest.mark.spec("RTMP 7.2.1.1")
    def test_colon_segment_is_stream_not_instance(self) -> None:
        url = parse_url("rtmp://h/vod/mp4:dir/file.mp4")
        assert (url.app, url.stream) == ("vod", "mp4:dir/file.mp4")

    @pytest.mark.spec("RTMP 7.2.1.1")
    def test_app_only(self) -> None:
        url = parse_url("rtmp://h/live")
        assert (url.app, url.stream) == ("live", None)
        url = parse_url("rtmp://h/live/")
        assert (url.app, url.stream) == ("live", None)

    @pytest.mark.spec("RTMP 7.2.1.1")
    def test_no_path_gives_empty_app(self) -> None:
        url = parse_url("rtmp://localhost:1935")
        assert url.app == "" and url.stream is None
        assert url.with_names(app="live", stream="s") == RTMPURL(
            "rtmp", "localhost", 1935, "live", "s"
        )

    @pytest.mark.spec("RTMP 7.2.1.1")
    def test_ondemand_is_whole_app(self) -> None:
        url = parse_url("rtmp://h/ondemand/a/b/c")
        assert (url.app, url.stream) == ("ondemand", "a/b/c")

    @pytest.mark.spec("RTMP 7.2.1.1")
    def test_rtmps_default_port_and_tls(self) -> None:
        url = parse_url("rtmps://secure.example/app/key")
        assert url.port == 443 and url.tls
        assert url.tc_url == "rtmps://secure.example:443/app"

    @pytest.mark.spec("RTMP 7.2.1.1")
    def test_ipv6_host_is_bracketed_in_tcurl(self) -> None:
        url = parse_url("rtmp://[::1]:19350/live/x")
        assert url.host == "::1" and url.port == 19350
        assert url.tc_url == "rtmp://[::1]:19350/live"


class TestStreamNames:
    """RTMP 7.2.2.1: stream-name forms (``.flv`` dropped, ``mp4:`` prefix), queries."""

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_flv_extension_dropped(self) -> None:
        assert parse_url("rtmp://h/vod/sample.flv").stream == "sample"

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_mp4_prefix_added(self) -> None:
        assert parse_url("rtmp://h/vod/sample.mp4").stream == "mp4:sample.mp4"
        assert parse_url("rtmp://h/vod/clip.f4v").stream == "mp4:clip.f4v"

    @pytest.mark.spec("RTMP 7.2.2.6")
    def test_query_travels_with_stream(self) -> None:
        url = parse_url("rtmp://h/live/stream?key=abc&x=1")
        assert url.app == "live"
        assert url.stream == "stream?key=abc&x=1"
        assert url.tc_url == "rtmp://h:1935/live"

    @pytest.mark.spec("RTMP 7.2.1.1")
    def test_query_travels_with_app_without_stream(self) -> None:
        url = parse_url("rtmp://h/live?token=t")
        assert url.app == "live?token=t"
        assert url.stream is None


class TestCredentials:
    """AUTH-ADOBE: credentials come from ``user:pass@`` and never reach tcUrl."""

    @pytest.mark.spec("AUTH-ADOBE")
    def test_user_password_extracted_and_decoded(self) -> None:
        url = parse_url("rtmp://bob:p%40ss%3Aw@h/live/s")
        assert (url.username, url.password) == ("bob", "p@ss:w")
        assert "bob" not in url.tc_url and "bob" not in str(url)

    @pytest.mark.spec("AUTH-ADOBE")
    def test_no_credentials(self) -> None:
        url = parse_url("rtmp://h/live/s")
        assert url.username is None and url.password is None


class TestRejects:
    """Local mistakes raise ValueError/TypeError."""

    @pytest.mark.parametrize(
        "bad", ["http://h/live", "rtmp:///live", "rtmp://h:99999/live", "rtmp://h:0/x", "h/live"]
    )
    def test_bad_urls(self, bad: str) -> None:
        with pytest.raises(ValueError):
            parse_url(bad)

    def test_not_a_string(self) -> None:
        with pytest.raises(TypeError):
            parse_url(b"rtmp://h/live")  # type: ignore[arg-type]


class TestProperties:
    """RTMP 7.2.1.1: the split is lossless for ordinary app/instance/stream URLs."""

    @pytest.mark.spec("RTMP 7.2.1.1")
    @given(
        scheme=st.sampled_from(["rtmp", "rtmps"]),
        port=st.one_of(st.none(), st.integers(1, 65535)),
        app=SEGMENT,
        instance=st.one_of(st.none(), SEGMENT),
        stream=SEGMENT,
    )
    def test_round_trip(
        self, scheme: str, port: int | None, app: str, instance: str | None, stream: str
    ) -> None:
        netloc = "host.example" + (f":{port}" if port else "")
        full_app = f"{app}/{instance}" if instance else app
        url = parse_url(f"{scheme}://{netloc}/{full_app}/{stream}")
        expected_port = port or (443 if scheme == "rtmps" else 1935)
        assert url.app == full_app
        assert url.stream == stream
        assert url.port == expected_port
        assert url.tc_url == f"{scheme}://host.example:{expected_port}/{full_app}"


class TestParseAddr:
    """``host:port`` addresses: one parser for the server's config and the CLI."""

    def test_server_form_requires_a_port(self) -> None:
        from rtmp.server import parse_addr as server_parse_addr
        from rtmp.url import parse_addr

        assert server_parse_addr is parse_addr
        assert parse_addr("127.0.0.1:1935") == ("127.0.0.1", 1935)
        assert parse_addr("[::1]:0") == ("::1", 0)
        assert parse_addr(":1936") == ("", 1936)
        for bad in ("1935", "host:", "host:x", "host:65536", "host:-1"):
            with pytest.raises(ValueError):
                parse_addr(bad)

    def test_default_port_form(self) -> None:
        from rtmp.url import parse_addr

        assert parse_addr("1936", 1935) == ("", 1936)
        assert parse_addr("example.com:", 1935) == ("example.com", 1935)
        assert parse_addr("[::1]:2000", 1935) == ("::1", 2000)
        with pytest.raises(ValueError, match="port must be a number"):
            parse_addr("host:x", 1935)
        with pytest.raises(ValueError, match="out of range"):
            parse_addr("70000", 1935)

    def test_cli_alias_keeps_its_defaults(self) -> None:
        import argparse

        from rtmp.cli import parse_addr

        assert parse_addr(":1935", 1936) == ("0.0.0.0", 1935)
        assert parse_addr("1937", 1936) == ("0.0.0.0", 1937)
        assert parse_addr("127.0.0.1:", 1936) == ("127.0.0.1", 1936)
        with pytest.raises(argparse.ArgumentTypeError, match="port must be a number"):
            parse_addr("h:x", 1936)

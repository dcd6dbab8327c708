"""rtmp.remote_shared_object: ``client.shared_object()`` against our server (RTMP 7.3.2 [de-facto])."""

from __future__ import annotations

import time
from typing import Any, List, Tuple

import pytest

import rtmp
from rtmp import shared_object_store as store
from rtmp.shared_object import SOEvent, SOEventType
from tests.so_peers import WAIT, RawPeer, serve, url_of
from tests.test_streams import AVC_HEADER, AVC_INTER, AVC_KEY, wait_for


@pytest.fixture
def server() -> Any:
    srv = serve()
    yield srv
    srv.stop()


def connected(server: rtmp.Server, amf3: bool = False) -> rtmp.Client:
    client = rtmp.Client(rtmp.ClientConfig(object_encoding=3 if amf3 else 0, read_timeout=WAIT))
    client.connect(url_of(server))
    return client


@pytest.mark.spec("RTMP 7.3.2 [de-facto]", "RTMP 7.1.3 [de-facto]")
@pytest.mark.parametrize("amf3", [False, True], ids=["amf0", "amf3"])
def test_two_clients_share_slots(server: rtmp.Server, amf3: bool) -> None:
    with connected(server, amf3) as a, connected(server, not amf3) as b:
        sa = a.shared_object("room").wait_synced()
        sb = b.shared_object("room").wait_synced()
        assert sa.synced and sa.data == {} and sb.data == {}
        sa.set("count", 1.0)
        sa.set("who", {"name": "ann", "tags": ["x", "y"]})
        sa.wait_synced()
        assert sa.data == {"count": 1.0, "who": {"name": "ann", "tags": ["x", "y"]}}
        assert sa.version == 2
        sb.wait_until(lambda data: len(data) == 2)
        assert sb.data == sa.data and sb.version == 2
        sb.delete("count")
        sb.wait_synced()
        assert sb.data == {"who": {"name": "ann", "tags": ["x", "y"]}}
        sa.wait_until(lambda data: "count" not in data)
        assert sa.version == sb.version == 3


@pytest.mark.spec("RTMP 7.3.2 [de-facto]")
def test_late_user_gets_the_whole_object(server: rtmp.Server) -> None:
    with connected(server) as a:
        sa = a.shared_object("room").wait_synced()
        for n in range(50):
            sa.set(f"k{n}", float(n))
        sa.wait_synced()
        with connected(server, amf3=True) as b:
            sb = b.shared_object("room").wait_synced()
            assert sb.data == {f"k{n}": float(n) for n in range(50)}
            assert sb.version == 50


@pytest.mark.spec("RTMP 7.3.2 [de-facto]")
def test_callbacks(server: rtmp.Server) -> None:
    seen: List[Tuple[Any, ...]] = []
    with connected(server) as a, connected(server) as b:
        sa = a.shared_object("room", on_message=lambda h, args: seen.append(("a-msg", h, args)))
        sb = b.shared_object(
            "room",
            on_change=lambda key, value: seen.append(("change", key, value)),
            on_remove=lambda key: seen.append(("remove", key)),
            on_message=lambda h, args: seen.append(("b-msg", h, args)),
            on_status=lambda code, level: seen.append(("status", code, level)),
        )
        sa.wait_synced()
        sb.wait_synced()
        sa.set("x", "one")
        sa.delete("x")
        sa.send("say", "hello", 2.0)
        sa.wait_synced()  # a's SendMessage echo comes back to it too
        sb.wait_until(lambda data: ("b-msg", "say", ("hello", 2.0)) in seen)
        # a reads first (its echo), then b: each sees its events in the server's order
        assert seen == [("a-msg", "say", ("hello", 2.0)), ("change", "x", "one"), ("remove", "x"),
                        ("b-msg", "say", ("hello", 2.0))]


@pytest.mark.spec("RTMP 7.3.2 [de-facto]")
def test_refusals_reach_status_and_leave_data_alone() -> None:
    def guard(conn: Any, name: str, event: SOEvent) -> None:
        if name == "secret" and event.type == SOEventType.USE:
            raise PermissionError("no")
        if event.key == "ro":
            raise PermissionError("read-only")

    server = serve(on_shared_object=guard)
    try:
        with connected(server) as a:
            with pytest.raises(rtmp.CommandError) as refused:
                a.shared_object("secret").wait_synced()
            assert refused.value.code == store.NO_READ_ACCESS
            statuses: List[Tuple[str, str]] = []
            so = a.shared_object("room", on_status=lambda c, lv: statuses.append((c, lv))).wait_synced()
            so.set("ro", 1.0)
            so.set("rw", 2.0)
            so.wait_synced()
            assert so.data == {"rw": 2.0} and so.version == 1
            assert statuses == [(store.NO_WRITE_ACCESS, "error")] and so.last_status == statuses[0]
            with pytest.raises(rtmp.CommandError) as bad:
                a.shared_object("p", persistent=True).wait_synced()
            assert bad.value.code == store.BAD_PERSISTENCE
    finally:
        server.stop()


@pytest.mark.spec("RTMP 7.3.2 [de-facto]")
def test_released_on_close_and_by_release(server: rtmp.Server) -> None:
    a = connected(server)
    so = a.shared_object("room").wait_synced()
    other = a.shared_object("other").wait_synced()
    assert a.shared_object("room") is so  # the same name: the same object
    other.release()
    assert other.released
    assert wait_for(lambda: server.shared_objects.get("app", "other") is None, WAIT)
    obj = server.shared_objects.get("app", "room")
    assert obj is not None and len(obj.users) == 1
    a.close()  # sends Release, then closes
    assert so.released
    assert wait_for(lambda: server.shared_objects.get("app", "room") is None, WAIT)
    with pytest.raises(rtmp.ConnectionClosedError):
        so.set("x", 1.0)


@pytest.mark.spec("RTMP 7.3.2 [de-facto]", "RTMP 7.1.3 [de-facto]")
def test_serviced_while_playing_and_not_handed_to_read_message(server: rtmp.Server) -> None:
    with connected(server) as publisher, connected(server) as player, connected(server) as writer:
        publisher.publish("cam")
        player.play("cam")
        watched = player.shared_object("room")
        sw = writer.shared_object("room").wait_synced()
        ts = 0
        publisher.send_video(AVC_HEADER, 0)
        media: List[int] = []
        for n in range(20):
            ts += 40
            publisher.send_video(AVC_KEY if n % 10 == 0 else AVC_INTER, ts)
            sw.set("frame", float(n))
        for _ in range(200):
            msg = player.read_message(timeout=WAIT)
            assert msg.type not in (16, 19)  # shared-object messages are consumed
            if msg.type == rtmp.MessageType.VIDEO:
                media.append(msg.timestamp)
            if len(media) == 21:
                break
        assert media == [40 * n for n in range(21)]
        # The object's updates travel apart from the media (the connection's own outbox,
        # not the player's queue: no order between the two), so they may still be on
        # their way: read on, and read_message must handle them, never return them.
        deadline = time.monotonic() + WAIT
        while watched.data.get("frame") != 19.0 and time.monotonic() < deadline:
            try:
                msg = player.read_message(timeout=0.2)
            except rtmp.TimeoutError:
                continue  # nothing for the application: what came was consumed
            assert msg.type not in (16, 19), msg
        assert watched.synced and watched.data == {"frame": 19.0}


@pytest.mark.spec("RTMP 7.1.3 [de-facto]")
def test_messages_for_objects_not_ours_go_to_the_application(server: rtmp.Server) -> None:
    with connected(server) as a, RawPeer(server) as raw:
        mine = a.shared_object("mine").wait_synced()
        a.write_message(rtmp.shared_object.to_message(rtmp.shared_object.SharedObjectMessage(
            "theirs", events=(SOEvent.use(),))))
        msg = a.read_message(timeout=WAIT)
        assert msg.type == 19
        assert rtmp.shared_object.from_message(msg).name == "theirs"
        raw.use("mine")
        assert mine.synced


@pytest.mark.spec("RTMP 7.3.2 [de-facto]")
def test_persistent_object_round_trip(tmp_path: Any) -> None:
    server = serve(shared_objects_dir=tmp_path)
    try:
        with connected(server) as a:
            so = a.shared_object("keep", persistent=True).wait_synced()
            so.set("x", [1.0, 2.0])
            so.wait_synced()
        with connected(server, amf3=True) as b:
            so = b.shared_object("keep", persistent=True).wait_synced()
            assert so.persistent and so.data == {"x": [1.0, 2.0]} and so.version == 1
            with pytest.raises(ValueError):
                b.shared_object("keep")  # in use as persistent
    finally:
        server.stop()


@pytest.mark.spec("RTMP 7.3.2 [de-facto]")
def test_a_refused_use_may_be_tried_again() -> None:
    allowed: List[bool] = [False]

    def guard(conn: Any, name: str, event: SOEvent) -> None:
        if not allowed[0]:
            raise PermissionError("not yet")

    server = serve(on_shared_object=guard)
    try:
        with connected(server) as a:
            first = a.shared_object("room")
            with pytest.raises(rtmp.CommandError):
                first.wait_synced()
            allowed[0] = True
            second = a.shared_object("room").wait_synced()
            assert second is not first and second.synced
    finally:
        server.stop()


@pytest.mark.spec("RTMP 7.3.2 [de-facto]")
def test_own_send_is_told_from_another_users_send_of_the_same_handler(server: rtmp.Server) -> None:
    """SendMessage reaches every user, the sender too: a user's wait for its own echo
    is not ended by another user's SendMessage of the same handler that came first."""
    heard: List[Tuple[str, Tuple[Any, ...]]] = []
    with connected(server) as a, connected(server) as b:
        sa = a.shared_object("room", on_message=lambda h, args: heard.append((h, args)))
        sa.wait_synced()
        sb = b.shared_object("room").wait_synced()
        sb.send("chat", "from b", [1.0, 2.0])
        sb.wait_synced()  # b's echo came: the server queued the same message for a
        sa.send("chat", "from a", (1, 2))  # a tuple travels as an array, 1 as 1.0
        sa.send("chat", "from a", float("nan"))  # NaN is not == NaN
        sa.wait_synced()
        assert [args[0] for _, args in heard] == ["from b", "from a", "from a"]
        assert sa.pending == 0


@pytest.mark.spec("RTMP 7.3.2 [de-facto]", "RTMP 7.1.3 [de-facto]")
def test_updates_on_their_way_after_release_are_not_handed_to_read_message(
        server: rtmp.Server) -> None:
    """A Change the server sent before it read our Release is the released object's,
    not a message of an object we never used: read_message does not return it."""
    with connected(server) as a, connected(server) as b:
        sa = a.shared_object("room").wait_synced()
        sb = b.shared_object("room").wait_synced()
        sb.set("x", 1.0)
        sb.wait_synced()  # the server queued the Change for a before b's Success
        sa.release()
        # then a message that is the application's: the Use Success of an object a uses by hand
        a.write_message(rtmp.shared_object.to_message(rtmp.shared_object.SharedObjectMessage(
            "theirs", events=(SOEvent.use(),))))
        msg = a.read_message(timeout=WAIT)
        assert rtmp.shared_object.from_message(msg).name == "theirs"
        again = a.shared_object("room").wait_synced()  # used anew: in sync again
        assert again is not sa and again.data == {"x": 1.0}


@pytest.mark.spec("RTMP 7.1.3 [de-facto]")
@pytest.mark.parametrize("amf3", [False, True], ids=["amf0", "amf3"])
def test_the_client_speaks_type_16_on_an_amf3_connection(
        server: rtmp.Server, amf3: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """RTMP 7.1.3: objectEncoding 3 -> message type 16, else 19, for every event the
    client sends (Use, Request Change, Request Remove, SendMessage, Release)."""
    seen: List[int] = []
    receive = store.SharedObjectStore.receive

    def recording(self: store.SharedObjectStore, conn: Any, msg: rtmp.Message) -> None:
        seen.append(int(msg.type))
        receive(self, conn, msg)

    monkeypatch.setattr(store.SharedObjectStore, "receive", recording)
    with connected(server, amf3) as client:
        assert client.object_encoding == (3 if amf3 else 0)
        so = client.shared_object("room").wait_synced()
        so.set("x", 1.0)
        so.delete("x")
        so.send("say", "hi")
        so.wait_synced()
        so.release()
        assert wait_for(lambda: server.shared_objects.get("app", "room") is None, WAIT)
    assert seen == [16 if amf3 else 19] * 5

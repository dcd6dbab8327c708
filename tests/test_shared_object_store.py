"""rtmp.shared_object_store: the server's remote shared objects (RTMP 7.3.2 [de-facto]).

Over loopback with :class:`tests.so_peers.RawPeer` (shared-object messages built by hand
or with the codec), plus a ``kill -9`` of a ``python -m rtmp serve`` subprocess for the
persistence promise.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, List

import pytest

import rtmp
from rtmp import shared_object_store as store
from rtmp.shared_object import SOEvent, SOEventType
from tests.peers import free_port, stop_process, wait_port
from tests.so_peers import WAIT, RawPeer, event_types, serve
from tests.test_streams import wait_for

T = SOEventType


@pytest.fixture
def server() -> Any:
    srv = serve()
    yield srv
    srv.stop()


def _bare(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">H", len(raw)) + raw


class TestExchange:
    """RTMP 7.3.2 [de-facto]: the answers to Use, Request Change, Request Remove, SendMessage."""

    @pytest.mark.spec("RTMP 7.3.2 [de-facto]", "RTMP 7.1.3 [de-facto]")
    def test_use_by_hand_answered_with_use_success_clear_and_slots(self, server: rtmp.Server) -> None:
        handle = server.shared_object("app", "room")
        handle.set("a", 1.0)
        with RawPeer(server) as peer:
            # name "room", version 0, flags 0 + reserved 0, one Use event with no data
            peer.send_raw(_bare("room") + struct.pack(">III", 0, 0, 0) + struct.pack(">BI", 1, 0))
            body = peer.message().data
        expected = (_bare("room") + struct.pack(">III", 1, 0, 0)
                    + struct.pack(">BI", 11, 0) + struct.pack(">BI", 8, 0)
                    + struct.pack(">BI", 4, 2 + 1 + 9) + _bare("a") + b"\x00" + struct.pack(">d", 1.0))
        assert body == expected
        handle.release()

    @pytest.mark.spec("RTMP 7.3.2 [de-facto]")
    def test_change_success_to_requester_change_to_others(self, server: rtmp.Server) -> None:
        with RawPeer(server) as a, RawPeer(server) as b:
            a.use("room")
            b.use("room")
            a.send("room", SOEvent.request_change("x", "one"), SOEvent.request_change("y", 2.0))
            mine, theirs = a.recv(), b.recv()
            assert [(e.type, e.key) for e in mine.events] == [(T.SUCCESS, "x"), (T.SUCCESS, "y")]
            assert [(e.type, e.key, e.value) for e in theirs.events] == [
                (T.CHANGE, "x", "one"), (T.CHANGE, "y", 2.0)]
            assert mine.version == theirs.version == 2  # one per accepted change
            assert a.quiet() and b.quiet()

    @pytest.mark.spec("RTMP 7.3.2 [de-facto]")
    def test_remove_reaches_every_user(self, server: rtmp.Server) -> None:
        with RawPeer(server) as a, RawPeer(server) as b:
            a.use("room")
            b.use("room")
            a.send("room", SOEvent.request_change("x", 1.0))
            a.recv(), b.recv()
            b.send("room", SOEvent.request_remove("x"))
            for peer in (a, b):
                so = peer.recv()
                assert [(e.type, e.key) for e in so.events] == [(T.REMOVE, "x")]
                assert so.version == 2
        assert wait_for(lambda: server.shared_objects.get("app", "room") is None, WAIT)  # no user left

    @pytest.mark.spec("RTMP 7.3.2 [de-facto]")
    def test_send_message_reaches_every_user_sender_included(self, server: rtmp.Server) -> None:
        with RawPeer(server) as a, RawPeer(server, amf3=True) as b:
            a.use("chat")
            b.use("chat")
            a.send("chat", SOEvent.send_message("say", "hi", 3.0))
            for peer, kind in ((a, 19), (b, 16)):
                msg = peer.message()
                assert msg.type == kind  # RTMP 7.1.3: AMF0 19, AMF3 16
                so = rtmp.shared_object.from_message(msg)
                assert [(e.type, e.handler, e.args) for e in so.events] == [
                    (T.SEND_MESSAGE, "say", ("hi", 3.0))]
                assert so.version == 0  # a message is no change

    @pytest.mark.spec("RTMP 7.3.2 [de-facto]")
    def test_amf3_user_gets_type_16_with_the_same_slots(self, server: rtmp.Server) -> None:
        with RawPeer(server) as a, RawPeer(server, amf3=True) as b:
            a.use("room")
            a.send("room", SOEvent.request_change("list", [1.0, "two", {"k": None}]))
            a.recv()
            msg = b.client.write_message(rtmp.shared_object.to_message(
                rtmp.shared_object.SharedObjectMessage("room", events=(SOEvent.use(),), amf3=True)))
            msg = b.message()
            assert msg.type == rtmp.MessageType.SHARED_OBJECT_AMF3 and msg.data[0] == 0
            so = rtmp.shared_object.from_message(msg)
            assert event_types(so) == [T.USE_SUCCESS, T.CLEAR, T.CHANGE]
            assert so.events[2].value == [1.0, "two", {"k": None}]

    @pytest.mark.spec("RTMP 7.3.2 [de-facto]")
    def test_release_and_session_end_stop_the_use(self, server: rtmp.Server) -> None:
        with RawPeer(server) as a:
            b = RawPeer(server)
            a.use("room")
            b.use("room")
            obj = server.shared_objects.get("app", "room")
            assert obj is not None and len(obj.users) == 2
            a.send("room", SOEvent.release())
            assert wait_for(lambda: len(obj.users) == 1, WAIT)
            a.send("room", SOEvent.request_change("x", 1.0))  # no longer a user
            assert a.status().code == store.NOT_IN_USE
            b.client.transport.shutdown()  # type: ignore[union-attr]  # the session just ends
            assert wait_for(lambda: server.shared_objects.get("app", "room") is None, WAIT)
            b.close()

    @pytest.mark.spec("RTMP 7.3.2 [de-facto]")
    def test_objects_are_per_application(self, server: rtmp.Server) -> None:
        with RawPeer(server, app="one") as a, RawPeer(server, app="two") as b:
            a.use("room")
            b.use("room")
            a.send("room", SOEvent.request_change("x", 1.0))
            a.recv()
            assert b.quiet()
            assert server.shared_objects.get("one", "room").data == {"x": 1.0}  # type: ignore[union-attr]
            assert server.shared_objects.get("two", "room").data == {}  # type: ignore[union-attr]


class TestCallbackAndServerHandle:
    @pytest.mark.spec("RTMP 7.3.2 [de-facto]")
    def test_refused_change_gets_status_and_others_see_nothing(self) -> None:
        seen: List[Any] = []

        def guard(conn: Any, name: str, event: SOEvent) -> None:
            seen.append((conn.app, name, event.type))
            if event.key == "locked":
                raise PermissionError("read-only slot")

        server = serve(on_shared_object=guard)
        try:
            with RawPeer(server) as a, RawPeer(server) as b:
                a.use("room")
                b.use("room")
                a.send("room", SOEvent.request_change("locked", 1.0))
                status = a.status()
                assert (status.code, status.level) == (store.NO_WRITE_ACCESS, "error")
                a.send("room", SOEvent.request_change("free", 2.0))
                so = b.recv()  # b's next message is the accepted change: it never saw the refused one
                assert [(e.type, e.key) for e in so.events] == [(T.CHANGE, "free")]
                assert so.version == 1
                assert ("app", "room", T.REQUEST_CHANGE) in seen and ("app", "room", T.USE) in seen
        finally:
            server.stop()

    @pytest.mark.spec("RTMP 7.3.2 [de-facto]")
    def test_refused_use(self) -> None:
        def guard(conn: Any, name: str, event: SOEvent) -> None:
            if event.type == T.USE and name == "secret":
                raise PermissionError("no")

        server = serve(on_shared_object=guard)
        try:
            with RawPeer(server) as a:
                a.send("secret", SOEvent.use())
                assert a.status().code == store.NO_READ_ACCESS
                assert server.shared_objects.get("app", "secret") is None
        finally:
            server.stop()

    @pytest.mark.spec("RTMP 7.3.2 [de-facto]")
    def test_server_handle_get_set_delete_send(self, server: rtmp.Server) -> None:
        with server.shared_object("app", "room") as handle, RawPeer(server) as a:
            handle.set("x", 1.0)
            so = a.use("room")
            assert [(e.type, e.key, e.value) for e in so.events][2:] == [(T.CHANGE, "x", 1.0)]
            handle.set("y", "two")
            change = a.recv()
            assert [(e.type, e.key, e.value) for e in change.events] == [(T.CHANGE, "y", "two")]
            assert change.version == handle.version == 2
            assert handle.get("y") == "two" and handle.get("nope", 5) == 5
            assert handle.delete("x") and not handle.delete("x")
            assert [(e.type, e.key) for e in a.recv().events] == [(T.REMOVE, "x")]
            handle.send("tick", 1.0)
            assert [(e.type, e.handler) for e in a.recv().events] == [(T.SEND_MESSAGE, "tick")]
            assert handle.data == {"y": "two"}
            assert len(handle.users) == 1  # a's connection, not the server's handle
            assert handle.users[0] in {conn.id for conn in server.connections}
        assert wait_for(lambda: server.shared_objects.get("app", "room") is None, WAIT)  # released

    @pytest.mark.spec("RTMP 7.3.2 [de-facto]")
    def test_server_delete_racing_another_delete_removes_once(
            self, server: rtmp.Server, monkeypatch: pytest.MonkeyPatch) -> None:
        """Two deletes of one slot at once: one Remove, one version step, one True."""
        with server.shared_object("app", "room") as handle, \
                server.shared_object("app", "room") as other, RawPeer(server) as a:
            handle.set("x", 1.0)
            a.use("room")
            change = store.SharedObjectStore.change
            raced: List[Any] = []

            def racing(self: store.SharedObjectStore, *args: Any, **kwargs: Any) -> Any:
                if not raced:  # the other delete gets in between our check and our change
                    raced.append(None)
                    raced[0] = other.delete("x")
                return change(self, *args, **kwargs)

            monkeypatch.setattr(store.SharedObjectStore, "change", racing)
            assert not handle.delete("x")  # the other one removed it
            assert raced == [True] and handle.version == 2
            assert [(e.type, e.key) for e in a.recv().events] == [(T.REMOVE, "x")]
            handle.set("y", 1.0)  # the next thing a sees is this, not a second Remove
            assert [(e.type, e.key) for e in a.recv().events] == [(T.CHANGE, "y")]

    @pytest.mark.spec("RTMP 7.3.2 [de-facto]")
    def test_events_without_use_and_server_events_from_a_client(self, server: rtmp.Server) -> None:
        with RawPeer(server) as a:
            a.send("room", SOEvent.request_change("x", 1.0))
            assert a.status().code == store.NOT_IN_USE
            a.use("room")
            a.send("room", SOEvent.change("x", 1.0))  # a server's event
            assert a.status().code == store.NO_WRITE_ACCESS


class TestPersistence:
    @pytest.mark.spec("RTMP 7.3.2 [de-facto]", "RTMP 7.1.3 [de-facto]")
    def test_persistent_without_directory_is_refused_and_nothing_written(
            self, server: rtmp.Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        with RawPeer(server) as a:
            a.send("keep", SOEvent.use(), persistent=True)
            assert a.status().code == store.BAD_PERSISTENCE
            a.send("keep", SOEvent.request_change("x", 1.0), persistent=True)
            assert a.status().code == store.NOT_IN_USE
        assert list(tmp_path.iterdir()) == []

    @pytest.mark.spec("RTMP 7.3.2 [de-facto]", "RTMP 7.1.3 [de-facto]")
    def test_saved_atomically_and_reloaded_by_a_new_server(self, tmp_path: Path) -> None:
        server = serve(shared_objects_dir=tmp_path)
        try:
            with RawPeer(server) as a:
                a.use("scores", persistent=True)
                a.send("scores", SOEvent.request_change("alice", 3.0),
                       SOEvent.request_change("bob", {"n": 1.0}), persistent=True)
                assert a.recv().version == 2
                a.send("scores", SOEvent.request_remove("bob"), persistent=True)
                assert a.recv().version == 3
                a.send("other", SOEvent.use())  # transient: never on disk
                a.recv()
            files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
            assert files == ["app", "app/scores.rso"]
            # a transient Use of a persistent object is refused
            with RawPeer(server) as b:
                b.send("scores", SOEvent.use())
                assert b.status().code == store.BAD_PERSISTENCE
        finally:
            server.stop()
        again = serve(shared_objects_dir=tmp_path)
        try:
            assert again.shared_objects.persistent_names("app") == ["scores"]
            with RawPeer(again) as a:
                so = a.use("scores", persistent=True)
                assert so.persistent and so.version == 3
                assert [(e.type, e.key, e.value) for e in so.events][2:] == [(T.CHANGE, "alice", 3.0)]
        finally:
            again.stop()

    @pytest.mark.spec("RTMP 7.3.2 [de-facto]")
    def test_failed_write_undoes_the_change(self, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
        server = serve(shared_objects_dir=tmp_path)
        try:
            with RawPeer(server) as a, RawPeer(server) as b:
                a.use("keep", persistent=True)
                b.use("keep", persistent=True)
                a.send("keep", SOEvent.request_change("x", 1.0), persistent=True)
                a.recv(), b.recv()

                def broken(src: Any, dst: Any) -> None:
                    raise OSError(28, "No space left on device")

                monkeypatch.setattr(store.os, "replace", broken)
                a.send("keep", SOEvent.request_change("x", 2.0), persistent=True)
                assert a.status().code == store.FLUSH_FAILED
                assert b.quiet()
                obj = server.shared_objects.get("app", "keep")
                assert obj is not None and obj.data == {"x": 1.0} and obj.version == 1
                assert [p.name for p in (tmp_path / "app").iterdir()] == ["keep.rso"]  # no temp left
        finally:
            server.stop()

    @pytest.mark.spec("RTMP 7.3.2 [de-facto]")
    @pytest.mark.parametrize("name", ["..", "../escape", "a/b", "x\x00y", "/etc/passwd", "C:evil",
                                      "x" * 300, ""])
    def test_names_that_would_leave_the_directory(self, tmp_path: Path, name: str) -> None:
        root = tmp_path / "so"
        server = serve(shared_objects_dir=root)
        try:
            with RawPeer(server) as a:
                a.send(name, SOEvent.use(), persistent=True)
                status = a.status()
                assert status.code == store.BAD_NAME and status.level == "error"
                a.use("fine", persistent=True)  # the session goes on
        finally:
            server.stop()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["so"]
        assert [p.name for p in root.rglob("*") if p.is_file()] == []

    @pytest.mark.spec("RTMP 7.3.2 [de-facto]")
    def test_long_names_are_saved_or_refused_at_use(self, tmp_path: Path) -> None:
        """A file name is at most 255 bytes: a name whose file (with ``.rso``) fits is
        saved like any other (its temporary file too), a longer one is BadName at Use,
        not a Use that succeeds and a Flush.Failed for every change after it."""
        fits, too_long = "x" * 251, "y" * 252
        server = serve(shared_objects_dir=tmp_path)
        try:
            with RawPeer(server) as a:
                a.use(fits, persistent=True)
                a.send(fits, SOEvent.request_change("k", 1.0), persistent=True)
                assert [(e.type, e.key) for e in a.recv().events] == [(T.SUCCESS, "k")]
                a.send(too_long, SOEvent.use(), persistent=True)
                assert a.status().code == store.BAD_NAME
        finally:
            server.stop()
        assert [p.name for p in (tmp_path / "app").iterdir()] == [fits + store.FILE_SUFFIX]

    @pytest.mark.spec("RTMP 7.3.2 [de-facto]")
    def test_interrupted_write_leaves_the_old_file_and_is_cleaned(self, tmp_path: Path) -> None:
        server = serve(shared_objects_dir=tmp_path)
        try:
            with RawPeer(server) as a:
                a.use("keep", persistent=True)
                a.send("keep", SOEvent.request_change("x", 1.0), persistent=True)
                a.recv()
        finally:
            server.stop()
        stale = tmp_path / "app" / ".keep.rso.dead.tmp"
        stale.write_bytes(b"RTMP-SO 1\nhalf")  # what a kill -9 in the middle of a write leaves
        again = serve(shared_objects_dir=tmp_path)
        try:
            assert not stale.exists()
            with RawPeer(again) as a:
                so = a.use("keep", persistent=True)
                assert so.events[2].value == 1.0
        finally:
            again.stop()

    @pytest.mark.spec("RTMP 7.3.2 [de-facto]")
    def test_survives_kill_9_with_the_last_acknowledged_version(self, tmp_path: Path) -> None:
        port = free_port()
        cmd = [sys.executable, "-m", "rtmp", "serve", "--addr", f"127.0.0.1:{port}",
               "--shared-objects-dir", str(tmp_path)]
        url = f"rtmp://127.0.0.1:{port}/app"
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(port, process=proc)
            client = rtmp.Client()
            client.connect(url)
            counter = client.shared_object("counter", persistent=True).wait_synced(10)
            for n in range(1, 21):
                counter.set("n", float(n))
            counter.wait_synced(10)  # every Success in: every change committed
            assert counter.data == {"n": 20.0} and counter.version == 20
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            client.close()
        finally:
            stop_process(proc)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(port, process=proc)
            with rtmp.Client() as client:
                client.connect(url)
                counter = client.shared_object("counter", persistent=True).wait_synced(10)
                assert counter.data == {"n": 20.0} and counter.version == 20
        finally:
            stop_process(proc)


class TestSlowPeer:
    """More than socket buffers hold (loopback buffers grow to megabytes)."""

    @pytest.mark.spec("RTMP 7.3.2 [de-facto]")
    def test_a_user_that_stops_reading_is_dropped_not_waited_for(self) -> None:
        count = 2000
        server = serve(max_queue_bytes=64 * 1024, write_timeout=2.0)
        try:
            with RawPeer(server) as writer, RawPeer(server) as reader:
                stalled = RawPeer(server)
                for peer in (writer, reader, stalled):
                    peer.use("room")
                got: List[int] = []

                def read() -> None:
                    for so in reader.drain(WAIT):
                        got.append(len(so.events))
                        if sum(got) >= count:
                            return

                thread = threading.Thread(target=read)
                thread.start()
                blob = "x" * 4000
                started = time.monotonic()
                for n in range(count):  # 8 MB of changes; the stalled peer reads none
                    writer.send("room", SOEvent.request_change(f"k{n % 50}", blob))
                    writer.recv()
                elapsed = time.monotonic() - started
                thread.join(30)
                assert sum(got) == count  # the reading user saw every change
                assert wait_for(lambda: len(server.connections) == 2, WAIT)  # the stalled one is gone
                assert elapsed < 60
                stalled.drop()  # it never reads: just drop our side
        finally:
            server.stop()


    @pytest.mark.spec("RTMP 7.3.2 [de-facto]")
    def test_an_object_larger_than_the_queue_budget_reaches_a_reading_user(self) -> None:
        """A small ``max_queue_bytes`` bounds how far a peer may fall behind, not how large
        an object may be: a user that reads gets the whole object (the answer to its Use)
        and a change of it, each one message larger than 4 x max_queue_bytes."""
        server = serve(max_queue_bytes=16 * 1024)
        try:
            with RawPeer(server) as a, RawPeer(server) as b:
                a.use("big")
                a.send("big", SOEvent.request_change("blob", "x" * 200_000))
                assert [e.type for e in a.recv().events] == [T.SUCCESS]
                whole = b.use("big")  # Use Success, Clear, the slot: one ~200 kB message
                assert event_types(whole) == [T.USE_SUCCESS, T.CLEAR, T.CHANGE]
                assert whole.events[2].value == "x" * 200_000
                a.send("big", SOEvent.request_change("blob", "y" * 200_000))
                assert a.recv().events[0].type == T.SUCCESS
                assert b.recv().events[0].value == "y" * 200_000
                assert len(server.connections) == 2
        finally:
            server.stop()


@pytest.mark.spec("RTMP 7.3.2 [de-facto]", "RTMP 7.1.7")
def test_a_silent_user_is_kept_like_a_player() -> None:
    """A user of shared objects listens, as a player does: read_timeout does not end it."""
    server = serve(read_timeout=0.5)
    try:
        with RawPeer(server) as listener, RawPeer(server) as idle:
            listener.use("room")
            idle.send("nothing", SOEvent.release())  # not a user: ended by read_timeout
            time.sleep(1.5)
            with RawPeer(server) as writer:
                writer.use("room")
                writer.send("room", SOEvent.request_change("x", 1.0))
                so = listener.recv()
                assert [(e.type, e.key) for e in so.events] == [(T.CHANGE, "x")]
            assert wait_for(lambda: len(server.connections) == 1, WAIT)
            idle.drop()
    finally:
        server.stop()


@pytest.mark.spec("RTMP 7.3.2 [de-facto]")
def test_an_object_cannot_grow_past_its_byte_limit() -> None:
    server = serve()
    try:
        server.shared_objects.limits = store.StoreLimits(max_object_bytes=1000)
        with RawPeer(server) as a, RawPeer(server) as b:
            a.use("room")
            b.use("room")
            a.send("room", SOEvent.request_change("small", "x" * 100))
            a.recv(), b.recv()
            a.send("room", SOEvent.request_change("big", "x" * 2000))
            assert a.status().code == store.OBJECT_FULL
            assert b.quiet()
            a.send("room", SOEvent.request_change("small", "y" * 500))  # replaces: fits
            assert [e.type for e in a.recv().events] == [T.SUCCESS]
            with server.shared_object("app", "room") as handle:
                with pytest.raises(ValueError, match=store.OBJECT_FULL):
                    handle.set("big", "x" * 2000)
                assert handle.data == {"small": "y" * 500} and handle.version == 2
    finally:
        server.stop()


@pytest.mark.spec("RTMP 7.3.2 [de-facto]")
def test_objects_per_connection_and_on_disk_are_bounded(tmp_path: Path) -> None:
    server = serve(shared_objects_dir=tmp_path)
    try:
        server.shared_objects.limits = store.StoreLimits(max_objects_per_connection=3,
                                                         max_persistent_objects=2)
        with RawPeer(server) as a, RawPeer(server) as b:
            for name in ("a", "b", "c"):
                assert event_types(a.use(name))[0] == T.USE_SUCCESS
            a.send("d", SOEvent.use())
            assert a.status().code == store.CREATION_FAILED
            a.send("a", SOEvent.release())
            assert event_types(a.use("d"))[0] == T.USE_SUCCESS  # room again after a Release
            for name in ("p1", "p2"):
                b.use(name, persistent=True)
                b.send(name, SOEvent.request_change("x", 1.0), persistent=True)
                b.recv()
            b.send("p3", SOEvent.use(), persistent=True)
            assert b.status().code == store.CREATION_FAILED
            b.send("p3", SOEvent.release(), persistent=True)
        assert sorted(p.name for p in (tmp_path / "app").iterdir()) == ["p1.rso", "p2.rso"]
    finally:
        server.stop()

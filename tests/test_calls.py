"""RTMP 7.2: the sans-IO request/reply layer (rtmp.calls): transactions and status waits."""

from __future__ import annotations

import pytest

from rtmp import CommandError, MessageType, ProtocolError, StreamType, commands
from rtmp.calls import (
    CallError,
    CallResult,
    Calls,
    Consumed,
    Outgoing,
    ReplyMode,
    StatusEvent,
    StatusFailed,
    StatusReached,
    Unhandled,
)
from rtmp.commands import Command, decode_command
from rtmp.message import Message
from rtmp.requests import Connect, CreateStream, FCPublish, Play, Publish, ReleaseStream

PLAY_START = commands.NETSTREAM_PLAY_START
PLAY_RESET = commands.NETSTREAM_PLAY_RESET
NOT_FOUND = commands.NETSTREAM_PLAY_STREAM_NOT_FOUND


def status(code: str, msid: int = 1, **extra: object) -> Message:
    return commands.on_status(code, "desc", msid, **extra)  # type: ignore[arg-type]


# -- transactions (RTMP 7.2.1.2) ---------------------------------------------------------------


@pytest.mark.spec("RTMP 7.2.1.2")
def test_calls_get_fresh_transaction_ids_and_await_their_result() -> None:
    calls = Calls()
    msg, txn = calls.call("myMethod", 1, "two", command_object={"o": 1})
    assert txn == 2  # connect keeps 1
    sent = decode_command(msg)
    assert (sent.name, sent.transaction_id, sent.command_object, sent.arguments) == (
        "myMethod", 2, {"o": 1}, [1, "two"])
    assert calls.pending == {2}
    assert calls.call("other")[1] == 3
    (result,) = calls.receive(commands.result(2, {"p": 1}, "a", 5))
    assert isinstance(result, CallResult) and result.command.name == "_result"
    assert (result.transaction_id, result.command_object, result.values) == (
        2, {"p": 1}, ("a", 5))
    assert calls.pending == {3}
    assert calls.take(2) == result
    assert calls.take(2) is None  # taken once


@pytest.mark.spec("RTMP 7.2.1.2")
def test_result_value_is_what_client_call_returns() -> None:
    calls = Calls()
    for values, expected in (((), None), ((None, 4), 4), ((None, 4, "x"), [4, "x"])):
        _, txn = calls.call("f")
        (event,) = calls.receive(commands.result(txn, *values))
        assert isinstance(event, CallResult) and event.value == expected


@pytest.mark.spec("RTMP 7.2.1.2")
def test_error_with_info_object() -> None:
    calls = Calls()
    _, txn = calls.call("f")
    info = commands.status_info(commands.NETCONNECTION_CALL_FAILED, "no such method",
                                detail=7)
    (event,) = calls.receive(commands.error(txn, info))
    assert isinstance(event, CallError)
    assert (event.transaction_id, event.code, event.description) == (
        txn, commands.NETCONNECTION_CALL_FAILED, "no such method")
    assert event.info == info
    err = event.error()
    assert isinstance(err, CommandError) and err.code == commands.NETCONNECTION_CALL_FAILED
    assert calls.take(txn) == event and not calls.pending


@pytest.mark.spec("RTMP 7.2.1.2")
def test_error_without_info_is_named_by_the_command() -> None:
    calls = Calls()
    _, txn = calls.call("f")
    (event,) = calls.receive(commands.encode_command("_error", txn, None))
    assert isinstance(event, CallError)
    assert (event.code, event.description, event.info) == ("_error", "", {})


@pytest.mark.spec("RTMP 7.2")
def test_unexpected_and_duplicate_replies_are_unhandled() -> None:
    calls = Calls()
    _, txn = calls.call("f")
    (stray,) = calls.receive(commands.result(99, None))
    assert isinstance(stray, Unhandled) and stray.command.transaction_id == 99
    assert calls.pending == {txn}
    assert isinstance(calls.receive(commands.result(txn, None))[0], CallResult)
    (again,) = calls.receive(commands.result(txn, None))  # the same reply twice
    assert isinstance(again, Unhandled)
    (late_error,) = calls.receive(commands.error(txn, "X.Y.Failed"))
    assert isinstance(late_error, Unhandled)


@pytest.mark.spec("RTMP 7.2")
def test_replies_with_transaction_zero_match_no_call() -> None:
    calls = Calls()
    calls.call("f")
    for msg in (commands.result(0, None), commands.error(0, "NetStream.Seek.Failed")):
        (event,) = calls.receive(msg)
        assert isinstance(event, Unhandled)
    assert calls.pending == {2}
    with pytest.raises(ValueError):
        calls.track(0)


@pytest.mark.spec("RTMP 7.2.1.2")
def test_ignored_calls_consume_one_reply() -> None:
    calls = Calls()
    _, txn = calls.call("releaseStream", "k", reply=ReplyMode.IGNORE)
    assert not calls.pending and calls.ignored == {txn}
    (event,) = calls.receive(commands.error(txn, "NetConnection.Call.Failed"))
    assert isinstance(event, Consumed)
    assert isinstance(calls.receive(commands.result(txn, None))[0], Unhandled)
    assert calls.take(txn) is None


@pytest.mark.spec("RTMP 7.2.1.2")
def test_untracked_calls_and_cancelled_calls() -> None:
    calls = Calls()
    _, untracked = calls.call("FCUnpublish", "k", reply=ReplyMode.UNTRACKED)
    assert not calls.pending and not calls.ignored
    assert isinstance(calls.receive(commands.result(untracked, None))[0], Unhandled)
    _, txn = calls.call("f")
    calls.cancel(txn)  # e.g. timed out
    assert isinstance(calls.receive(commands.result(txn, None))[0], Unhandled)
    assert calls.take(txn) is None


@pytest.mark.spec("RTMP 7.2.1.2")
def test_explicit_transaction_ids_and_tracking_hand_built_calls() -> None:
    calls = Calls(first_transaction_id=11)
    msg, txn = calls.call("createStream", transaction_id=42)
    assert txn == 42 and decode_command(msg).transaction_id == 42 and calls.pending == {42}
    assert calls.next_transaction() == 11
    calls.track(7)  # sent by other means
    assert isinstance(calls.receive(commands.result(7, None))[0], CallResult)
    _, zero = calls.call("fireAndForget", transaction_id=0)
    assert zero == 0 and calls.pending == {42}
    with pytest.raises(ValueError):
        Calls(first_transaction_id=0)


@pytest.mark.spec("RTMP 7.2.1.1", "RTMP 7.2.1.3", "RTMP 7.2.2.6")
def test_typed_requests() -> None:
    calls = Calls(object_encoding=3)
    msg, txn = calls.request(Connect.create("live", "rtmp://h/live"))
    assert txn == 1 and msg.type == MessageType.COMMAND_AMF0  # RTMP 7.2.1.1: AMF0, txn 1
    assert calls.pending == {1}
    msg, txn = calls.request(CreateStream())
    assert txn == 2 and msg.type == MessageType.COMMAND_AMF3 and msg.data[:1] == b"\x00"
    msg, txn = calls.request(Publish("k", StreamType.RECORD), stream_id=2)
    assert txn == 0 and msg.message_stream_id == 2  # RTMP 7.2.2: txn 0, nothing awaited
    assert calls.pending == {1, 2}
    _, txn = calls.request(ReleaseStream("k"), reply=ReplyMode.IGNORE)
    _, txn2 = calls.request(FCPublish("k"), reply=ReplyMode.IGNORE)
    assert calls.ignored == {txn, txn2} == {3, 4}
    assert decode_command(calls.request(Play("k"), stream_id=5)[0]).message_stream_id == 5


@pytest.mark.spec("RTMP 7.1.1")
def test_amf3_replies_are_matched() -> None:
    calls = Calls(object_encoding=3)
    _, txn = calls.request(CreateStream())
    reply = commands.result(txn, None, 1, object_encoding=3)
    assert reply.type == MessageType.COMMAND_AMF3 and reply.data[0] == 0x00
    (event,) = calls.receive(reply)
    assert isinstance(event, CallResult) and event.value == 1
    assert event.command.message_type == MessageType.COMMAND_AMF3


@pytest.mark.spec("RTMP 7.1.1")
def test_malformed_commands_raise() -> None:
    calls = Calls()
    with pytest.raises(ProtocolError):
        calls.receive(Message(type=MessageType.COMMAND_AMF0, data=b"\x00\x00"))
    with pytest.raises(ValueError):
        calls.receive(Message(type=MessageType.AUDIO, data=b"\xaf"))


# -- status waits (RTMP 7.2.2) -----------------------------------------------------------------


@pytest.mark.spec("RTMP 7.2.2")
def test_status_wait_completes_on_success_code() -> None:
    calls = Calls()
    wait = calls.expect_status(1, {PLAY_START}, also_consumed={PLAY_RESET}, what="play")
    (reset,) = calls.receive(status(PLAY_RESET))
    assert isinstance(reset, Consumed) and not wait.done
    (other,) = calls.receive(status("NetStream.Data.Start"))
    assert isinstance(other, StatusEvent) and other.code == "NetStream.Data.Start"
    (done,) = calls.receive(status(PLAY_START))
    assert isinstance(done, StatusReached) and done.wait is wait and wait.outcome is done
    assert done.status == StatusEvent(PLAY_START, "status", "desc", 1,
                                      commands.status_info(PLAY_START, "desc"))
    assert not calls.waits
    (after,) = calls.receive(status(PLAY_START))  # the wait is over: the application's
    assert isinstance(after, StatusEvent)


@pytest.mark.spec("RTMP 7.2.2")
def test_status_wait_fails_on_error_level_by_default() -> None:
    calls = Calls()
    wait = calls.expect_status(1, {PLAY_START})
    (failed,) = calls.receive(status(NOT_FOUND))
    assert isinstance(failed, StatusFailed) and wait.outcome is failed
    assert failed.status.level == "error"
    err = failed.error()
    assert isinstance(err, CommandError) and err.code == NOT_FOUND


@pytest.mark.spec("RTMP 7.2.2")
def test_status_wait_with_failure_codes() -> None:
    calls = Calls()
    calls.expect_status(1, {PLAY_START}, failure={"NetStream.Play.InsufficientBW"})
    # An error level status that is not a failure code passes by.
    (passed,) = calls.receive(status(NOT_FOUND))
    assert isinstance(passed, StatusEvent)
    (failed,) = calls.receive(status("NetStream.Play.InsufficientBW", level="warning"))
    assert isinstance(failed, StatusFailed)


@pytest.mark.spec("RTMP 7.2.2")
def test_status_on_stream_zero_and_other_streams() -> None:
    calls = Calls()
    calls.expect_status(2, {PLAY_START})
    (elsewhere,) = calls.receive(status(PLAY_START, msid=3))
    assert isinstance(elsewhere, StatusEvent) and elsewhere.stream_id == 3
    (zero,) = calls.receive(status(PLAY_START, msid=0))  # [impl] servers that use msid 0
    assert isinstance(zero, StatusReached)
    calls.expect_status(2, {PLAY_START}, stream_zero=False)
    assert isinstance(calls.receive(status(PLAY_START, msid=0))[0], StatusEvent)
    assert isinstance(calls.receive(status(PLAY_START, msid=2))[0], StatusReached)


@pytest.mark.spec("RTMP 7.2.2")
def test_any_code_wait_and_several_waits() -> None:
    calls = Calls()
    first = calls.expect_status(1)  # any status on stream 1
    second = calls.expect_status(2, {commands.NETSTREAM_PUBLISH_START})
    (a,) = calls.receive(status(commands.NETSTREAM_PUBLISH_START, msid=2))
    assert isinstance(a, StatusReached) and a.wait is second and not first.done
    (b,) = calls.receive(status("NetStream.Anything", msid=1))
    assert isinstance(b, StatusReached) and b.wait is first
    third = calls.expect_status(1)
    (c,) = calls.receive(status(commands.NETSTREAM_PUBLISH_BAD_NAME, msid=1))
    assert isinstance(c, StatusFailed) and c.wait is third  # an error still fails it


@pytest.mark.spec("RTMP 7.2.2.7")
def test_error_with_transaction_zero_fails_a_wait_that_asks() -> None:
    calls = Calls()
    plain = calls.expect_status(1, {commands.NETSTREAM_SEEK_NOTIFY})
    seek_failed = commands.error(0, commands.NETSTREAM_SEEK_FAILED, message_stream_id=1)
    assert isinstance(calls.receive(seek_failed)[0], Unhandled) and not plain.done
    calls.cancel_status(plain)
    wait = calls.expect_status(1, {commands.NETSTREAM_SEEK_NOTIFY}, error_replies=True)
    (failed,) = calls.receive(seek_failed)
    assert isinstance(failed, StatusFailed) and failed.wait is wait
    assert failed.status.code == commands.NETSTREAM_SEEK_FAILED


@pytest.mark.spec("RTMP 7.2.2")
def test_cancelled_status_wait() -> None:
    calls = Calls()
    wait = calls.expect_status(1, {PLAY_START})
    calls.cancel_status(wait)
    calls.cancel_status(wait)  # twice is harmless
    assert isinstance(calls.receive(status(PLAY_START))[0], StatusEvent) and not wait.done


@pytest.mark.spec("RTMP 7.2.2")
def test_status_without_info() -> None:
    calls = Calls()
    calls.expect_status(1, {PLAY_START})
    bare = commands.encode_command("onStatus", 0, None, message_stream_id=1)
    (event,) = calls.receive(bare)
    assert event == StatusEvent("", "", "", 1, {})


# -- the server's own calls ----------------------------------------------------------------


@pytest.mark.spec("RTMP 7.2.1.2")
def test_on_bw_done_is_answered_with_checkbw() -> None:
    calls = Calls()
    out, consumed = calls.receive(commands.encode_command("onBWDone", 0, None, 8192))
    assert isinstance(out, Outgoing) and isinstance(consumed, Consumed)
    sent = decode_command(out.message)
    assert (sent.name, sent.transaction_id) == ("_checkbw", out.transaction_id) == (
        "_checkbw", 2)
    assert calls.ignored == {2}
    assert isinstance(calls.receive(commands.error(2, "NetConnection.Call.Failed"))[0],
                      Consumed)
    quiet = Calls(answer_bandwidth_check=False)
    (only,) = quiet.receive(commands.encode_command("onBWDone", 0, None))
    assert isinstance(only, Consumed) and not quiet.ignored


@pytest.mark.spec("RTMP 7.2.1.2")
@pytest.mark.parametrize("name", ["onBWCheck", "_onbwcheck"])
def test_bandwidth_check_is_answered(name: str) -> None:
    calls = Calls(object_encoding=3)
    out, consumed = calls.receive(commands.encode_command(name, 5, None))
    assert isinstance(out, Outgoing) and isinstance(consumed, Consumed)
    assert out.message == commands.result(5, None, 0, object_encoding=3)
    (unanswerable,) = calls.receive(commands.encode_command(name, 0, None))
    assert isinstance(unanswerable, Unhandled)


@pytest.mark.spec("RTMP 7.2.1.2")
def test_fc_notifications_are_consumed_other_calls_unhandled() -> None:
    calls = Calls()
    for name in ("onFCPublish", "onFCUnpublish"):
        info = commands.status_info(commands.NETSTREAM_PUBLISH_START, "k")
        assert isinstance(calls.receive(commands.encode_command(name, 0, None, info))[0],
                          Consumed)
        # Deviation (ffmpeg listen mode): the bare name, decoded leniently by the client.
        assert isinstance(calls.receive(Command(name=name, transaction_id=0))[0], Consumed)
    for name in ("onPlayStatus", "onMetaData", "serverMethod", "close"):
        (event,) = calls.receive(commands.encode_command(name, 0, None))
        assert isinstance(event, Unhandled)


@pytest.mark.spec("RTMP 7.2.1.2")
def test_reset_starts_over() -> None:
    calls = Calls()
    _, txn = calls.call("f")
    calls.call("g", reply=ReplyMode.IGNORE)
    calls.expect_status(1, {PLAY_START})
    calls.receive(commands.result(txn, None))
    calls.reset()
    assert not calls.pending and not calls.ignored and not calls.waits
    assert calls.take(txn) is None
    assert calls.call("h")[1] == 2


@pytest.mark.spec("RTMP 7.2")
def test_transaction_ids_match_by_integer_part_unless_exact() -> None:
    lenient = Calls()
    _, txn = lenient.call("f")
    (event,) = lenient.receive(commands.result(txn + 0.5, None))
    assert isinstance(event, CallResult) and event.transaction_id == txn
    exact = Calls(exact_ids=True)
    _, txn = exact.call("f")
    assert isinstance(exact.receive(commands.result(txn + 0.5, None))[0], Unhandled)
    assert isinstance(exact.receive(commands.result(float(txn), None))[0], CallResult)


@pytest.mark.spec("RTMP 7.1.1")
def test_encoding_and_transaction_overrides() -> None:
    calls = Calls()
    msg, txn = calls.request(CreateStream(), object_encoding=3, transaction_id=5)
    assert (msg.type, txn, calls.pending) == (MessageType.COMMAND_AMF3, 5, {5})
    msg, _ = calls.call("f", object_encoding=3)
    assert msg.type == MessageType.COMMAND_AMF3
    msg, txn = calls.request(Connect.create("a", "rtmp://h/a"), object_encoding=3,
                             transaction_id=9)
    assert (msg.type, txn, decode_command(msg).transaction_id) == (
        MessageType.COMMAND_AMF3, 9, 9)
    msg, txn = calls.request(Play("k"), transaction_id=4)  # a NetStream command: untracked
    assert txn == 4 and 4 not in calls.pending


@pytest.mark.spec("RTMP 7.2.1.1", "RTMP 7.2.1.3", "RTMP 7.2.2.6")
def test_a_publisher_conversation() -> None:
    """What our client sends and our server answers, message by message (server.py's
    replies rebuilt with the same encoders)."""
    calls = Calls()
    connect_msg, connect_txn = calls.request(Connect.create("live", "rtmp://h/live"))
    assert connect_txn == 1 and decode_command(connect_msg).name == "connect"
    # RTMP 7.2.1.1: the server's _result, then [impl] onBWDone.
    (connected,) = calls.receive(commands.connect_result(0))
    assert isinstance(connected, CallResult) and connected.command.code == (
        commands.NETCONNECTION_CONNECT_SUCCESS)
    assert calls.take(connect_txn) is connected
    out, _ = calls.receive(commands.encode_command(commands.ON_BW_DONE, 0, None, 8192))
    assert isinstance(out, Outgoing) and decode_command(out.message).name == "_checkbw"
    # [impl] the publish preamble, fire-and-forget; then createStream, awaited.
    _, release = calls.request(ReleaseStream("key"), reply=ReplyMode.IGNORE)
    _, fc = calls.request(FCPublish("key"), reply=ReplyMode.IGNORE)
    _, create = calls.request(CreateStream())
    assert (release, fc, create) == (3, 4, 5)
    assert isinstance(calls.receive(commands.result(release, None))[0], Consumed)
    info = commands.status_info(commands.NETSTREAM_PUBLISH_START, "key")
    assert isinstance(calls.receive(commands.encode_command(
        commands.ON_FC_PUBLISH, 0, None, info))[0], Consumed)
    assert isinstance(calls.receive(commands.result(fc, None))[0], Consumed)
    (created,) = calls.receive(commands.result(create, None, 1))
    assert isinstance(created, CallResult) and created.value == 1
    # RTMP 7.2.2.6: publish on stream 1, wait for Publish.Start.
    publish_msg, zero = calls.request(Publish("key"), stream_id=1)
    assert zero == 0 and publish_msg == commands.publish("key", StreamType.LIVE, 1)
    wait = calls.expect_status(1, {commands.NETSTREAM_PUBLISH_START}, what="publish")
    (started,) = calls.receive(commands.on_status(commands.NETSTREAM_PUBLISH_START, "", 1,
                                                  clientid="s1"))
    assert isinstance(started, StatusReached) and wait.outcome is started
    assert started.status.info["clientid"] == "s1"
    (checkbw_reply,) = calls.receive(commands.error(2, "NetConnection.Call.Failed"))
    assert isinstance(checkbw_reply, Consumed)  # _checkbw's txn 2 needs no answer
    assert not calls.pending and not calls.ignored and not calls.waits

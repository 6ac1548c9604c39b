"""The spool: durable before the first attempt, replayed after a restart with the original id, bounded."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import orjson

from obskit.alerts import AlertRouter, Route, Webhook
from tests.alerts.conftest import MakeRouter, capture
from tests.alerts.receiver import Hang, Receiver, Respond


def wait_until(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.01)


def spool_files(root: Path) -> list[Path]:
    return sorted(root.glob("slot-*/*.json"))


def test_each_delivery_is_on_disk_before_its_first_attempt(tmp_path: Path, make_router: MakeRouter) -> None:
    with Receiver(default=Hang(3)) as receiver:
        router = make_router([Route(Webhook(receiver.url, timeout=2))], spool_dir=tmp_path)
        capture(router)
        request = receiver.wait_for(1)[0]
        files = spool_files(tmp_path)
        assert len(files) == 1
        doc = orjson.loads(files[0].read_bytes())
        assert doc["v"] == 1
        assert doc["event"]["id"] == request.headers["webhook-id"]
        assert doc["event"] == request.json()
        assert doc["target"].startswith("webhook-")
        assert not list(tmp_path.glob("slot-*/.tmp-*"))


def test_delivered_and_permanently_failed_deliveries_leave_the_spool(
    tmp_path: Path, receiver: Receiver, make_router: MakeRouter
) -> None:
    receiver.script(Respond(400))
    router = make_router([Route(Webhook(receiver.url))], spool_dir=tmp_path)
    capture(router, fingerprint="a" * 16)
    capture(router, fingerprint="b" * 16)
    assert asyncio.run(router.flush(5.0))
    assert spool_files(tmp_path) == []
    stats = router.stats()
    assert (stats["spooled"], stats["delivered"], stats["dropped_permanent_error"]) == (2, 1, 1)


def _three_spooled(make_router: MakeRouter, hook_url: str, spool_dir: Path) -> AlertRouter:
    """A router whose hook answers 503: three alerts wait in the spool, the first one retrying."""
    router = make_router([Route(Webhook(hook_url))], spool_dir=spool_dir, backoff_base=60, backoff_cap=60)
    for i in range(3):
        capture(router, fingerprint=f"{i:016x}")
    wait_until(lambda: router.stats()["spooled"] == 3)
    return router


def test_a_restart_after_close_loses_nothing_and_keeps_ids(tmp_path: Path, make_router: MakeRouter) -> None:
    with Receiver(default=Respond(503)) as receiver:
        hook_url = receiver.url + "/hook"
        first = _three_spooled(make_router, hook_url, tmp_path)
        # One worker per hook: the first alert's retry holds back the two behind it.
        first_try = receiver.wait_for(1)[0]
        ids = {orjson.loads(f.read_bytes())["event"]["id"] for f in spool_files(tmp_path)}
        assert first_try.headers["webhook-id"] in ids
        assert first.close(timeout=0.2) is False
        stats = first.stats()
        assert (stats["shutdown_spooled"], stats["dropped"]) == (3, 0)
        assert len(spool_files(tmp_path)) == 3

        receiver.default = Respond(200)
        second = make_router([Route(Webhook(hook_url))], spool_dir=tmp_path)
        assert asyncio.run(second.flush(5.0))
        after = receiver.settle()[1:]
        assert len(after) == 3
        assert {r.headers["webhook-id"] for r in after} == ids
        assert second.stats()["replayed"] == 3
        assert second.stats()["delivered"] == 3
        assert spool_files(tmp_path) == []


def test_a_killed_process_loses_nothing(tmp_path: Path, make_router: MakeRouter) -> None:
    """SIGKILL mid-retry: the next router on the same spool_dir delivers every alert with its first id."""
    with Receiver(default=Respond(503)) as receiver:
        hook_url = receiver.url + "/hook"
        script = textwrap.dedent(f"""
            import sys, time
            from obskit.alerts import AlertRouter, Route, Webhook
            router = AlertRouter([Route(Webhook({hook_url!r}))], spool_dir={str(tmp_path)!r},
                                 backoff_base=60, backoff_cap=60)
            router.bind("checkout", "test")
            for i in range(5):
                router.capture(fingerprint=f"{{i:016x}}", error_type="KeyError", error_message="k",
                               severity="critical", title="KeyError", trace_id=None, method="GET", path="/")
            deadline = time.monotonic() + 10
            while router.stats()["spooled"] < 5 and time.monotonic() < deadline:
                time.sleep(0.01)
            print("ready", flush=True)
            time.sleep(60)
        """)
        with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as proc:
            try:
                assert proc.stdout is not None
                assert proc.stdout.readline().strip() == "ready"
                receiver.wait_for(1)
            finally:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
        ids = {orjson.loads(f.read_bytes())["event"]["id"] for f in spool_files(tmp_path)}
        assert len(ids) == 5
        assert receiver.requests[0].headers["webhook-id"] in ids
        n_before = len(receiver.requests)

        receiver.default = Respond(200)
        second = make_router([Route(Webhook(hook_url))], spool_dir=tmp_path)
        assert asyncio.run(second.flush(5.0))
        after = receiver.requests[n_before:]
        assert {r.headers["webhook-id"] for r in after} == ids
        assert sorted(r.json()["fingerprint"] for r in after) == [f"{i:016x}" for i in range(5)]
        assert spool_files(tmp_path) == []


def test_a_write_killed_before_its_rename_is_delivered_in_its_place(tmp_path: Path, make_router: MakeRouter) -> None:
    # A process killed between a spool file's fsync and its os.replace leaves the whole file under its
    # .tmp- name; the alert was accepted and never attempted, so the next start must deliver it, once, with
    # its id and in its place in the replay order.
    with Receiver(default=Respond(503)) as receiver:
        hook_url = receiver.url + "/hook"
        _three_spooled(make_router, hook_url, tmp_path).close(timeout=0.1)
        files = spool_files(tmp_path)
        ids = [orjson.loads(f.read_bytes())["event"]["id"] for f in files]
        middle = files[1]
        middle.rename(middle.with_name(".tmp-" + middle.name))
        torn = files[2].with_name(".tmp-" + files[2].name.replace("-", "-9", 1))
        torn.write_bytes(files[2].read_bytes()[:-1])  # a write cut short: never accepted

        receiver.default = Respond(200)
        n_before = len(receiver.requests)
        second = make_router([Route(Webhook(hook_url))], spool_dir=tmp_path)
        assert asyncio.run(second.flush(5.0))
        after = receiver.requests[n_before:]
        assert [r.headers["webhook-id"] for r in after] == ids
        stats = second.stats()
        assert (stats["replayed"], stats["delivered"], stats["dropped_spool_corrupt"]) == (3, 3, 0)
        assert [p.name for p in middle.parent.iterdir()] == [".lock"]


def test_corrupt_and_truncated_files_are_skipped_and_counted(
    tmp_path: Path, receiver: Receiver, make_router: MakeRouter
) -> None:
    receiver.default = Respond(503)
    hook = receiver.url + "/hook"
    first = make_router([Route(Webhook(hook))], spool_dir=tmp_path, backoff_base=60, backoff_cap=60)
    capture(first, fingerprint="a" * 16)
    capture(first, fingerprint="b" * 16)
    wait_until(lambda: first.stats()["spooled"] == 2)
    first.close(timeout=0.1)
    good = spool_files(tmp_path)
    assert len(good) == 2
    slot = good[0].parent
    (slot / "00000000000000000001-x-webhook-x.json").write_bytes(b"\x00garbage")
    (slot / "00000000000000000002-y-webhook-y.json").write_bytes(good[0].read_bytes()[:40])
    (slot / "00000000000000000003-z-webhook-z.json").write_bytes(orjson.dumps({"v": 1, "target": 3}))
    (slot / ".tmp-00000000000000000004-w.json").write_bytes(b"{")

    receiver.default = Respond(200)
    n_before = len(receiver.requests)
    second = make_router([Route(Webhook(hook))], spool_dir=tmp_path)
    assert asyncio.run(second.flush(5.0))
    assert sorted(r.json()["fingerprint"][0] for r in receiver.requests[n_before:]) == ["a", "b"]
    stats = second.stats()
    assert stats["dropped_spool_corrupt"] == 3
    assert stats["replayed"] == 2
    assert list(slot.iterdir()) == [slot / ".lock"]


def test_files_for_a_hook_no_longer_configured_are_counted_as_orphans(tmp_path: Path, make_router: MakeRouter) -> None:
    with Receiver(default=Respond(503)) as receiver:
        first = make_router(
            [Route(Webhook(receiver.url + "/old"))], spool_dir=tmp_path, backoff_base=60, backoff_cap=60
        )
        capture(first)
        receiver.wait_for(1)
        first.close(timeout=0.1)
        second = make_router([Route(Webhook(receiver.url + "/new"))], spool_dir=tmp_path)
        assert asyncio.run(second.flush(5.0))
        assert second.stats()["dropped_spool_orphan"] == 1
        assert spool_files(tmp_path) == []


def test_the_spool_is_bounded(tmp_path: Path, make_router: MakeRouter) -> None:
    with Receiver(default=Respond(503)) as receiver:
        router = make_router(
            [Route(Webhook(receiver.url))], spool_dir=tmp_path, spool_max_files=2, backoff_base=60, backoff_cap=60
        )
        for i in range(3):
            capture(router, fingerprint=f"{i:016x}")
        wait_until(lambda: router.stats()["spooled"] + router.stats()["spool_full"] == 3)
        stats = router.stats()
        assert (stats["spooled"], stats["spool_full"], stats["spool_files"]) == (2, 1, 2)
        assert len(spool_files(tmp_path)) == 2
        router.close(timeout=0.1)
        assert router.stats()["dropped_shutdown"] == 1  # the one that was only in memory
        assert router.stats()["shutdown_spooled"] == 2


def test_each_process_gets_its_own_slot(tmp_path: Path, make_router: MakeRouter) -> None:
    a = make_router([], spool_dir=tmp_path)
    b = make_router([], spool_dir=tmp_path)
    wait_until(
        lambda: a._spool is not None and a._spool.dir is not None and b._spool is not None and b._spool.dir is not None
    )
    assert a._spool is not None
    assert b._spool is not None
    assert {a._spool.dir, b._spool.dir} == {tmp_path / "slot-0", tmp_path / "slot-1"}
    freed = a._spool.dir
    a.close(1.0)
    c = make_router([], spool_dir=tmp_path)  # a closed router's slot is free again
    wait_until(lambda: c._spool is not None and c._spool.dir is not None)
    assert c._spool is not None
    assert c._spool.dir == freed


def test_a_forked_child_takes_its_own_slot(tmp_path: Path, receiver: Receiver, make_router: MakeRouter) -> None:
    router = make_router([Route(Webhook(receiver.url))], spool_dir=tmp_path)
    wait_until(lambda: router._spool is not None and router._spool.dir is not None)
    assert router._spool is not None
    parent_slot = router._spool.dir
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            capture(router)
            ok = asyncio.run(router.flush(5.0))
            child_slot = router._spool.dir if router._spool is not None else None
            code = 0 if ok and child_slot not in (None, parent_slot) and router.stats()["spooled"] == 1 else 2
            router.close(2.0)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(receiver.settle()) == 1
    assert spool_files(tmp_path) == []

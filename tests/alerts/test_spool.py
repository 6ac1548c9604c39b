"""The spool: durable before the first attempt, replayed after a restart with the original id, bounded."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from obskit.alerts import AlertRouter, Route, Webhook, _router
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
        with _killed_when_done(script):
            receiver.wait_for(1)
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


@contextlib.contextmanager
def _killed_when_done(script: str) -> Iterator[subprocess.Popen[str]]:
    """Run ``script`` until it prints "ready"; SIGKILL it when the block ends."""
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
            yield proc
        finally:
            _kill(proc.pid)
            proc.wait(10)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_a_forked_child_does_not_keep_its_dead_parents_slot_locked(tmp_path: Path, make_router: MakeRouter) -> None:
    """The parent spools an alert, forks a long-lived child, and is SIGKILLed: the restarted service
    replays the parent's slot although the child still runs (regression: the child inherited the slot's
    lock descriptor, so the slot looked alive and its alerts were stranded)."""
    with Receiver(default=Respond(503)) as receiver:
        hook_url = receiver.url + "/hook"
        script = textwrap.dedent(f"""
            import os, time
            from obskit.alerts import AlertRouter, Route, Webhook
            router = AlertRouter([Route(Webhook({hook_url!r}))], spool_dir={str(tmp_path)!r},
                                 backoff_base=60, backoff_cap=60)
            router.bind("checkout", "test")
            router.capture(fingerprint="a" * 16, error_type="KeyError", error_message="k",
                           severity="critical", title="KeyError", trace_id=None, method="GET", path="/")
            deadline = time.monotonic() + 10
            while router.stats()["spooled"] < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            if os.fork() == 0:
                router.start()  # the child takes its own slot (and must not adopt the live parent's)
                while router._spool is None or router._spool.dir is None:
                    time.sleep(0.01)
                print(os.getpid(), router._spool.dir.name, flush=True)
                time.sleep(20)
                os._exit(0)
            time.sleep(60)
        """)
        with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as proc:
            child = 0
            try:
                assert proc.stdout is not None
                pid, child_slot = proc.stdout.readline().split()
                child = int(pid)
                assert child_slot == "slot-1"
                receiver.wait_for(1)
                ids = {orjson.loads(f.read_bytes())["event"]["id"] for f in spool_files(tmp_path)}
                assert len(ids) == 1
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)

                receiver.default = Respond(200)
                n_before = len(receiver.requests)
                restarted = make_router([Route(Webhook(hook_url))], spool_dir=tmp_path)
                assert asyncio.run(restarted.flush(5.0))
                assert restarted.stats()["replayed"] == 1
                assert {r.headers["webhook-id"] for r in receiver.requests[n_before:]} == ids
                assert spool_files(tmp_path) == []
            finally:
                _kill(proc.pid)
                if child:
                    _kill(child)


def test_a_preforked_replacement_worker_replays_its_dead_predecessors_slot(tmp_path: Path) -> None:
    """gunicorn --preload: the router is built in the master, workers are forks. Worker 1 dies (SIGKILL)
    with an alert in its slot; worker 2, forked to replace it, replays it at once although it never
    captures anything (regression: a forked child started its delivery thread only at its first capture)."""
    with Receiver(default=Respond(503)) as receiver:
        hook_url = receiver.url + "/hook"
        script = textwrap.dedent(f"""
            import os, sys, time
            from obskit.alerts import AlertRouter, Route, Webhook
            router = AlertRouter([Route(Webhook({hook_url!r}))], spool_dir={str(tmp_path)!r},
                                 backoff_base=60, backoff_cap=60)
            router.bind("checkout", "test")
            def worker(capture):
                if os.fork() != 0:
                    return
                if capture:
                    router.capture(fingerprint="a" * 16, error_type="KeyError", error_message="k",
                                   severity="critical", title="KeyError", trace_id=None, method="GET", path="/")
                    deadline = time.monotonic() + 10
                    while router.stats()["spooled"] < 1 and time.monotonic() < deadline:
                        time.sleep(0.01)
                print(os.getpid(), flush=True)
                time.sleep(30)
                os._exit(0)
            for line in sys.stdin:  # the test asks for each worker
                worker(line.strip() == "crashing")
        """)
        with subprocess.Popen(
            [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        ) as master:
            assert master.stdin is not None
            assert master.stdout is not None
            workers: list[int] = []
            try:
                master.stdin.write("crashing\n")
                master.stdin.flush()
                workers.append(int(master.stdout.readline()))
                first_try = receiver.wait_for(1)[0]
                assert len(spool_files(tmp_path)) == 1
                os.kill(workers[0], signal.SIGKILL)

                receiver.default = Respond(200)
                master.stdin.write("quiet\n")
                master.stdin.flush()
                workers.append(int(master.stdout.readline()))
                replayed = receiver.wait_for(2, timeout=5.0)[1]
                assert replayed.headers["webhook-id"] == first_try.headers["webhook-id"]
                wait_until(lambda: spool_files(tmp_path) == [])
            finally:
                for pid in (*workers, master.pid):
                    _kill(pid)


def test_a_live_router_adopts_the_slot_of_a_process_that_died(
    tmp_path: Path, make_router: MakeRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed while its siblings live, and not replaced: a sibling replays its slot."""
    monkeypatch.setattr(_router, "RESCAN_SECONDS", 0.2)
    # The dying process's attempt hangs until it is killed: answered 503, its full-jitter retry could come
    # within the half second below and pass for the sibling's replay.
    with Receiver(default=Hang(5)) as receiver:
        hook_url = receiver.url + "/hook"
        sibling = make_router([Route(Webhook(hook_url))], spool_dir=tmp_path)
        wait_until(lambda: sibling._spool is not None and sibling._spool.dir is not None)
        script = textwrap.dedent(f"""
            import time
            from obskit.alerts import AlertRouter, Route, Webhook
            router = AlertRouter([Route(Webhook({hook_url!r}))], spool_dir={str(tmp_path)!r},
                                 backoff_base=60, backoff_cap=60)
            router.bind("checkout", "test")
            router.capture(fingerprint="a" * 16, error_type="KeyError", error_message="k",
                           severity="critical", title="KeyError", trace_id=None, method="GET", path="/")
            deadline = time.monotonic() + 10
            while router.stats()["spooled"] < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            print("ready", flush=True)
            time.sleep(30)
        """)
        with _killed_when_done(script):
            first_try = receiver.wait_for(1)[0]
            time.sleep(0.5)  # rescans meanwhile leave a live process's slot alone
            assert sibling.stats()["replayed"] == 0
            receiver.default = Respond(200)
        replayed = receiver.wait_for(2, timeout=5.0)[1]
        assert replayed.headers["webhook-id"] == first_try.headers["webhook-id"]
        assert asyncio.run(sibling.flush(5.0))
        assert (sibling.stats()["replayed"], sibling.stats()["delivered"]) == (1, 1)
        assert spool_files(tmp_path) == []


def _spooled_docs(root: Path) -> list[dict[str, object]]:
    return [orjson.loads(f.read_bytes()) for f in spool_files(root)]


def test_held_alerts_replayed_after_a_restart_stay_under_the_rate_limit(
    tmp_path: Path, receiver: Receiver, make_router: MakeRouter
) -> None:
    """Regression: held alerts were spooled at close as plain deliveries and the restart sent them all at
    once, so every deploy defeated a route's rate limit."""
    first = make_router([Route(Webhook(receiver.url), rate_limit="1/h")], spool_dir=tmp_path)
    for i in range(5):
        capture(first, fingerprint=f"{i:016x}")
    receiver.wait_for(1)
    assert first.close(timeout=0.3) is False  # four wait for tokens an hour away
    assert (first.stats()["delivered"], first.stats()["shutdown_spooled"]) == (1, 4)
    docs = _spooled_docs(tmp_path)
    assert [d.get("held") for d in docs] == [0, 0, 0, 0]

    second = make_router([Route(Webhook(receiver.url), rate_limit="1/h")], spool_dir=tmp_path)
    wait_until(lambda: second.stats()["replayed"] == 4)
    assert len(receiver.settle(quiet=0.5)) == 2  # the restarted bucket's one token, not four
    stats = second.stats()
    assert (stats["replayed"], stats["delivered"], stats["dropped"]) == (4, 1, 0)
    assert second.close(timeout=0.1) is False
    assert second.stats()["shutdown_spooled"] == 3
    assert len(spool_files(tmp_path)) == 3
    delivered = {r.json()["fingerprint"] for r in receiver.requests}
    held = {d["event"]["fingerprint"] for d in _spooled_docs(tmp_path)}  # type: ignore[index]
    assert delivered | held == {f"{i:016x}" for i in range(5)}
    assert not delivered & held


def test_held_alerts_survive_a_sigkill(tmp_path: Path) -> None:
    """Regression: held alerts lived only in memory, so a kill lost them, uncounted."""
    with Receiver() as receiver:
        script = textwrap.dedent(f"""
            import json, pathlib, time
            from obskit.alerts import AlertRouter, Route, Webhook
            router = AlertRouter([Route(Webhook({receiver.url!r}), rate_limit="1/min")], spool_dir={str(tmp_path)!r})
            router.bind("checkout", "test")
            for i in range(5):
                router.capture(fingerprint=f"{{i:016x}}", error_type="KeyError", error_message="k",
                               severity="critical", title="KeyError", trace_id=None, method="GET", path="/")
            # ready once exactly the four held ones are on disk, the first's file gone and no write in
            # flight: a kill mid-write would leave a .tmp- file, which is another test's subject
            def settled():
                try:
                    docs = [json.loads(p.read_bytes()) for p in pathlib.Path({str(tmp_path)!r}).glob("slot-*/*.json")]
                except (OSError, ValueError):
                    return False  # a file renamed or removed under us
                return len(docs) == 4 and all(d.get("held") == 0 for d in docs)
            deadline = time.monotonic() + 10
            while not settled() and time.monotonic() < deadline:
                time.sleep(0.01)
            print("ready", flush=True)
            time.sleep(30)
        """)
        with _killed_when_done(script):
            receiver.wait_for(1)
        docs = _spooled_docs(tmp_path)
        assert [d.get("held") for d in docs] == [0, 0, 0, 0]
        sent_first = receiver.requests[0].json()["fingerprint"]
        assert sent_first not in {d["event"]["fingerprint"] for d in docs}  # type: ignore[index]

        restarted = AlertRouter([Route(Webhook(receiver.url), rate_limit="1/min")], spool_dir=tmp_path)
        try:
            wait_until(lambda: restarted.stats()["replayed"] == 4)
            assert len(receiver.settle(quiet=0.5)) == 2  # still one per minute
        finally:
            restarted.close(timeout=0.1)
        assert restarted.stats()["shutdown_spooled"] == 3
        delivered = [r.json()["fingerprint"] for r in receiver.requests]
        held = [d["event"]["fingerprint"] for d in _spooled_docs(tmp_path)]  # type: ignore[index]
        assert sorted(delivered + held) == [f"{i:016x}" for i in range(5)]


def test_a_coalesced_held_alert_leaves_only_its_latest_event_in_the_spool(
    tmp_path: Path, receiver: Receiver, make_router: MakeRouter
) -> None:
    router = make_router([Route(Webhook(receiver.url), rate_limit="1/h")], spool_dir=tmp_path, dedup_window=0.2)
    capture(router, fingerprint="a" * 16)
    capture(router, fingerprint="b" * 16)  # held
    receiver.wait_for(1)
    wait_until(lambda: router.stats()["spooled"] == 2 and len(spool_files(tmp_path)) == 1)
    first_id = _spooled_docs(tmp_path)[0]["event"]["id"]  # type: ignore[index]
    time.sleep(0.3)  # b's window ended quiet: the next one is a new alert, coalesced into the held one
    capture(router, fingerprint="b" * 16)
    wait_until(lambda: router.stats()["coalesced"] == 1 and router.stats()["spooled"] == 3)
    wait_until(lambda: len(spool_files(tmp_path)) == 1)
    (doc,) = _spooled_docs(tmp_path)
    assert doc["event"]["id"] != first_id  # type: ignore[index]
    assert (doc["event"]["fingerprint"], doc["held"]) == ("b" * 16, 0)  # type: ignore[index]
    assert [r.json()["fingerprint"] for r in receiver.requests] == ["a" * 16]


@pytest.mark.parametrize("spool_dir", ["", "   ", "\t\n"])
def test_an_empty_spool_dir_is_refused_rather_than_spooling_into_the_cwd(
    spool_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # what os.environ.get("ALERT_SPOOL", "") would have spooled into
    with pytest.raises(ValueError, match=r"spool_dir must be None .* or a directory path"):
        AlertRouter([Route(Webhook("http://127.0.0.1:9/hook"))], spool_dir=spool_dir)
    assert list(tmp_path.iterdir()) == []

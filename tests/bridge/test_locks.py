"""Per-source sync locks: exactly one holder across threads and processes."""

from __future__ import annotations

import multiprocessing as mp
import threading
from pathlib import Path

import pytest

from bridge.errors import LockedError
from bridge.locks import lock_key, lock_path, source_lock
from bridge.store import Store


def _contend(store: Store, source: str, n: int) -> tuple[int, list[str]]:
    """n threads try the same lock while the winner holds it; count winners and refusals."""
    barrier = threading.Barrier(n)
    release = threading.Event()
    winners: list[int] = []
    refusals: list[str] = []
    guard = threading.Lock()

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            with source_lock(store, source):
                with guard:
                    winners.append(i)
                release.wait(5)
        except LockedError as exc:
            with guard:
                refusals.append(str(exc))
            if len(refusals) == n - 1:
                release.set()

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return len(winners), refusals


def test_threads_on_one_source_exactly_one_wins(any_store: Store) -> None:
    winners, refusals = _contend(any_store, "harvest-eu", 4)
    assert winners == 1
    assert len(refusals) == 3
    assert all("source harvest-eu is being synced by another process" in r and r.endswith("skipped") for r in refusals)


def test_lock_is_free_again_after_release_and_after_an_error(any_store: Store) -> None:
    with source_lock(any_store, "a"):
        pass
    with pytest.raises(RuntimeError):
        with source_lock(any_store, "a"):
            raise RuntimeError("sync blew up")
    with source_lock(any_store, "a"):
        pass


def test_different_sources_do_not_block_each_other(any_store: Store) -> None:
    with source_lock(any_store, "a"):
        with source_lock(any_store, "b"):
            with pytest.raises(LockedError):
                with source_lock(any_store, "a"):
                    pass


def test_wait_blocks_until_the_holder_releases(any_store: Store) -> None:
    order: list[str] = []
    held = threading.Event()

    def holder() -> None:
        with source_lock(any_store, "s"):
            held.set()
            order.append("holder-in")
            threading.Event().wait(0.3)
            order.append("holder-out")

    t = threading.Thread(target=holder)
    t.start()
    held.wait(5)
    with source_lock(any_store, "s", wait=True):
        order.append("waiter-in")
    t.join()
    assert order == ["holder-in", "holder-out", "waiter-in"]


def test_refusal_names_the_holder(any_store: Store) -> None:
    with source_lock(any_store, "s"):
        with pytest.raises(LockedError) as info:
            with source_lock(any_store, "s"):
                pass
    import os

    assert f"pid {os.getpid()}" in str(info.value)


def test_lock_key_is_stable_and_distinct() -> None:
    assert lock_key("harvest-eu") == lock_key("harvest-eu")
    assert lock_key("harvest-eu") != lock_key("harvest-us")
    assert -(2**63) <= lock_key("x") < 2**63


def test_sqlite_lock_file_sits_beside_the_database(store: Store, tmp_path: Path) -> None:
    path = lock_path(store, "harvest-eu")
    assert path == (tmp_path / "store.db.harvest-eu.lock").resolve()


def test_in_memory_store_uses_a_process_lock() -> None:
    s = Store("sqlite://")
    assert lock_path(s, "x") is None
    with source_lock(s, "x"):
        with pytest.raises(LockedError):
            with source_lock(s, "x"):
                pass
    with source_lock(s, "x"):
        pass


def _hold_in_child(url: str, source: str, ready: mp.Event, done: mp.Event) -> None:
    s = Store(url)
    with source_lock(s, source):
        ready.set()
        done.wait(10)


def _kill_holder_in_child(url: str, source: str, ready: mp.Event) -> None:
    import os
    import signal

    s = Store(url)
    with source_lock(s, source):
        ready.set()
        os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.slow
def test_another_process_holding_the_lock_refuses_us_and_a_killed_holder_frees_it(any_store: Store) -> None:
    ctx = mp.get_context("spawn")
    ready, done = ctx.Event(), ctx.Event()
    url = any_store.url
    child = ctx.Process(target=_hold_in_child, args=(url, "src", ready, done))
    child.start()
    try:
        assert ready.wait(30), "child never took the lock"
        with pytest.raises(LockedError, match=rf"pid {child.pid}"):
            with source_lock(any_store, "src"):
                pass
    finally:
        done.set()
        child.join(10)
    with source_lock(any_store, "src"):
        pass

    ready2 = ctx.Event()
    killed = ctx.Process(target=_kill_holder_in_child, args=(url, "src", ready2))
    killed.start()
    assert ready2.wait(30)
    killed.join(10)
    assert killed.exitcode == -9
    # The OS (flock) or the server (advisory lock) freed the dead holder's lock.
    for _ in range(50):
        try:
            with source_lock(any_store, "src"):
                break
        except LockedError:
            threading.Event().wait(0.1)
    else:
        pytest.fail("the lock of a killed process was never freed")

"""Group commit: concurrent callers share a batch, each gets its own result only after its batch ran, a
bad item fails alone, an unreachable database fails the whole batch, and no caller is left waiting."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from error_handling.exceptions import StorageUnavailable
from function_runner.wrapper.group_commit import GroupCommit
from tests.support.waiting import wait_until


class Recorder:
    """A ``run`` that records its batches; the first batch can be held until released."""

    def __init__(self, *, hold_first: bool = False, bad: str | None = None, down: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        if not hold_first:
            self.release.set()
        self.bad = bad
        self.down = down
        self.lock = threading.Lock()

    def __call__(self, items: Sequence[str]) -> list[str]:
        with self.lock:
            self.batches.append(list(items))
            first = len(self.batches) == 1
        if first:
            self.entered.set()
            assert self.release.wait(10)
        if self.down:
            raise StorageUnavailable("database unavailable: OperationalError")
        if self.bad in items:
            raise ValueError(f"cannot record {self.bad}")
        return [f"done:{item}" for item in items]


def queue_behind_a_leader(
    pool: ThreadPoolExecutor, commit: GroupCommit[str, str], run: Recorder, names: list[str]
) -> tuple[Future[str], dict[str, Future[str]]]:
    """Submit "lead" (its batch held by ``run``), then ``names`` while it runs; release the batch once
    they all queue. Returns the leader's future and the others' by name."""
    lead = pool.submit(commit.submit, "lead")
    assert run.entered.wait(10)
    others = {name: pool.submit(commit.submit, name) for name in names}
    wait_until(lambda: len(commit._queue) == len(names), timeout=10, interval=0.01, what="callers queued")
    assert not any(f.done() for f in others.values())  # nobody returns before its batch ran
    run.release.set()
    return lead, others


def test_one_caller_runs_its_item_alone() -> None:
    run = Recorder()
    assert GroupCommit(run).submit("a") == "done:a"
    assert run.batches == [["a"]]


def test_callers_arriving_during_a_batch_share_the_next_one() -> None:
    run = Recorder(hold_first=True)
    commit: GroupCommit[str, str] = GroupCommit(run, max_batch=4)
    with ThreadPoolExecutor(7) as pool:
        first, others = queue_behind_a_leader(pool, commit, run, [f"t{n}" for n in range(6)])
        assert first.result(10) == "done:lead"
        assert sorted(f.result(10) for f in others.values()) == sorted(f"done:t{n}" for n in range(6))
    assert run.batches[0] == ["lead"]
    assert [len(b) for b in run.batches[1:]] == [4, 2]  # at most max_batch, oldest first
    assert sorted(run.batches[1] + run.batches[2]) == sorted(f"t{n}" for n in range(6))


def test_a_bad_item_fails_alone() -> None:
    run = Recorder(hold_first=True, bad="t1")
    commit: GroupCommit[str, str] = GroupCommit(run)
    with ThreadPoolExecutor(4) as pool:
        lead, futures = queue_behind_a_leader(pool, commit, run, ["t0", "t1", "t2"])
        assert lead.result(10) == "done:lead"
        assert futures["t0"].result(10) == "done:t0" and futures["t2"].result(10) == "done:t2"
        with pytest.raises(ValueError, match="cannot record t1"):
            futures["t1"].result(10)
    assert sorted(run.batches[1]) == ["t0", "t1", "t2"]  # tried together, then each alone
    assert sorted(map(tuple, run.batches[2:])) == [("t0",), ("t1",), ("t2",)]


def test_an_unreachable_database_fails_the_whole_batch_at_once() -> None:
    run = Recorder(hold_first=True, down=True)
    commit: GroupCommit[str, str] = GroupCommit(run)
    with ThreadPoolExecutor(4) as pool:
        lead, futures = queue_behind_a_leader(pool, commit, run, ["t0", "t1", "t2"])
        for future in [lead, *futures.values()]:
            with pytest.raises(StorageUnavailable):
                future.result(10)
    assert len(run.batches) == 2  # no item-by-item retry: the outage is everybody's


def test_under_steady_load_every_caller_returns() -> None:
    # 16 threads submitting 50 items each: leaders hand over once their own item is done, so nobody
    # waits forever and every item is run exactly once
    run = Recorder()
    commit: GroupCommit[str, str] = GroupCommit(run, max_batch=8)

    def caller(n: int) -> list[str]:
        return [commit.submit(f"{n}-{i}") for i in range(50)]

    with ThreadPoolExecutor(16) as pool:
        results = [r for rs in pool.map(caller, range(16)) for r in rs]
    items = [item for batch in run.batches for item in batch]
    assert sorted(results) == sorted(f"done:{n}-{i}" for n in range(16) for i in range(50))
    assert sorted(items) == sorted(f"{n}-{i}" for n in range(16) for i in range(50))
    assert max(len(b) for b in run.batches) <= 8
    assert commit._leading is False and commit._queue == []


def test_an_interrupted_leader_hands_the_lead_to_the_callers_waiting() -> None:
    run = Recorder(hold_first=True)
    original = run.__call__

    def interrupted(items: Sequence[str]) -> list[str]:
        result = original(items)
        if items == ["lead"]:
            raise KeyboardInterrupt
        return result

    commit: GroupCommit[str, str] = GroupCommit(interrupted)
    with ThreadPoolExecutor(4) as pool:
        lead, others = queue_behind_a_leader(pool, commit, run, ["t0", "t1", "t2"])
        with pytest.raises(KeyboardInterrupt):
            lead.result(10)
        assert sorted(f.result(10) for f in others.values()) == ["done:t0", "done:t1", "done:t2"]
    assert commit.submit("after") == "done:after"


def test_a_run_returning_the_wrong_number_of_results_fails_its_items() -> None:
    commit: GroupCommit[str, str] = GroupCommit(lambda items: [])
    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        commit.submit("a")
    with pytest.raises(ValueError, match="at least 1"):
        GroupCommit(lambda items: [], max_batch=0)

"""Start marks in shared memory: a pool process that died while running a task leaves its mark, the
next execution of that task (in another process) finds it and takes it over; a living process, another
attempt, a reported death (forgotten) and a task that ended are not found."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from function_runner.wrapper import start_marks
from function_runner.wrapper.start_marks import StartMarks


def as_pool_process(monkeypatch: pytest.MonkeyPatch, index: int) -> None:
    monkeypatch.setattr(start_marks, "current_process", lambda: SimpleNamespace(index=index))


def start_and_die(marks: StartMarks, index: int, task_id: str, attempt: int = 1) -> int:
    """A forked pool process at ``index`` that starts ``task_id`` and dies without an outcome."""
    pid = os.fork()
    if pid == 0:  # the child: no pytest machinery, just the mark and a death
        start_marks.current_process = lambda: SimpleNamespace(index=index)  # type: ignore[assignment]
        marks.begin(task_id, attempt)
        os._exit(1)
    os.waitpid(pid, 0)  # reaped, as the worker's main process does
    return pid


def test_the_next_execution_finds_the_mark_of_a_dead_process_once(monkeypatch: pytest.MonkeyPatch) -> None:
    marks = StartMarks(4)
    dead = start_and_die(marks, 0, "task-1")
    as_pool_process(monkeypatch, 1)
    assert marks.begin("task-1", 1) == [dead]
    marks.end()
    assert marks.begin("task-1", 1) == []  # taken over: found once
    marks.end()


def test_other_tasks_attempts_and_reported_deaths_are_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    marks = StartMarks(4)
    start_and_die(marks, 0, "task-2", attempt=1)
    reported = start_and_die(marks, 2, "task-3")
    as_pool_process(monkeypatch, 1)
    assert marks.begin("task-2", 2) == []  # another attempt
    marks.end()
    assert marks.begin("other", 1) == []
    marks.end()
    marks.forget(reported)  # the main process reported this death itself
    assert marks.begin("task-3", 1) == []
    marks.end()


def test_a_living_process_and_an_ended_task_are_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    marks = StartMarks(4)
    as_pool_process(monkeypatch, 0)
    marks.begin("task-4", 1)  # this (living) process runs it: a duplicate delivery elsewhere is not a loss
    as_pool_process(monkeypatch, 1)
    assert marks.begin("task-4", 1) == []
    marks.end()
    as_pool_process(monkeypatch, 3)
    marks.begin("task-5", 1)
    marks.end()
    as_pool_process(monkeypatch, 2)
    assert marks.begin("task-5", 1) == []


def test_a_replacement_process_keeps_its_predecessors_marks_until_full(monkeypatch: pytest.MonkeyPatch) -> None:
    marks = StartMarks(2, per_process=2)
    first = start_and_die(marks, 0, "task-6")
    as_pool_process(monkeypatch, 0)  # the replacement at the same index runs other tasks meanwhile
    marks.begin("task-7", 1)
    marks.end()
    as_pool_process(monkeypatch, 1)
    assert marks.begin("task-6", 1) == [first]
    marks.end()


def test_processes_outside_a_pool_are_not_marked(monkeypatch: pytest.MonkeyPatch) -> None:
    marks = StartMarks(2)
    monkeypatch.setattr(start_marks, "current_process", lambda: SimpleNamespace(index=None))
    assert marks.begin("task-8", 1) == []
    marks.end()
    as_pool_process(monkeypatch, 7)  # an index past the table (autoscaled beyond it)
    assert marks.begin("task-8", 1) == []

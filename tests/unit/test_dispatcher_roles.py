"""The dispatcher's loop over its roles: each runs when due, one place logs and contains a failure."""

from __future__ import annotations

import logging
import threading
from typing import Any, ClassVar

import pytest
from kombu.exceptions import OperationalError

from error_handling.exceptions import StorageUnavailable
from function_runner.dispatch.dispatcher import Dispatcher
from function_runner.dispatch.role import Role, run_role


class Scripted(Role):
    """A role that raises or returns what it is told, and counts its runs."""

    name = "scripted"

    def __init__(self, *outcomes: Any, interval: float = 0.0) -> None:
        self.outcomes = list(outcomes)
        self.interval = interval
        self.runs = 0
        self.stopped = False

    def run_once(self) -> bool:
        self.runs += 1
        outcome = self.outcomes.pop(0) if self.outcomes else False
        if isinstance(outcome, BaseException):
            raise outcome
        return bool(outcome)

    def stop(self) -> None:
        self.stopped = True


class Contained(Scripted):
    name = "contained"
    failed_event = "dispatcher.contained_failed"
    failed_level: ClassVar[int] = logging.ERROR


def events(caplog: pytest.LogCaptureFixture) -> list[tuple[str, dict[str, Any]]]:
    return [(r.fr_event, r.fr_fields) for r in caplog.records if hasattr(r, "fr_event")]  # type: ignore[attr-defined]


def test_the_database_and_the_broker_being_away_are_logged_with_the_roles_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="function_runner")
    role = Scripted(StorageUnavailable("down"), OperationalError("no broker"), True)
    assert run_role(role) is None
    assert run_role(role) is None
    assert run_role(role) is True
    assert events(caplog) == [
        ("dispatcher.storage_unavailable", {"step": "scripted"}),
        ("dispatcher.broker_unavailable", {"step": "scripted", "error": "OperationalError"}),
    ]


def test_another_error_is_logged_as_the_roles_failure_or_stops_the_dispatcher(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="function_runner")
    assert run_role(Contained(KeyError("gone"))) is None
    [(event, fields)] = events(caplog)
    assert event == "dispatcher.contained_failed" and fields == {"error": "KeyError: 'gone'"}
    assert caplog.records[-1].levelno == logging.ERROR
    with pytest.raises(KeyError):  # no failed_event: a deployment mistake the command reports
        run_role(Scripted(KeyError("gone")))


def _loop(roles: list[Role], *, passes: int, interval: float = 0.01) -> Dispatcher:
    dispatcher = Dispatcher.__new__(Dispatcher)
    dispatcher.interval, dispatcher.name, dispatcher.roles = interval, "dispatcher@unit:1", roles
    dispatcher._stop = threading.Event()
    counter = Scripted()
    original = counter.run_once

    def count() -> bool:
        if counter.runs + 1 >= passes:
            dispatcher.stop()
        return original()

    counter.run_once = count  # type: ignore[method-assign]
    dispatcher.roles.append(counter)
    dispatcher.run_forever()
    return dispatcher


def test_each_role_runs_when_due_and_is_stopped_once() -> None:
    every_pass, rarely = Scripted(), Scripted(interval=3600.0)
    _loop([every_pass, rarely], passes=5)
    assert every_pass.runs == 5
    assert rarely.runs == 1
    assert every_pass.stopped and rarely.stopped


def test_a_role_that_ends_the_pass_on_failure_skips_the_roles_after_it() -> None:
    class Essential(Scripted):
        ends_pass_on_failure = True

    essential, after = Essential(StorageUnavailable("down"), StorageUnavailable("down")), Scripted()
    dispatcher = _loop([essential, after], passes=2)
    assert essential.runs == 4  # two failed passes, then the counter's two
    assert after.runs == 2
    assert dispatcher.roles[-1].runs == 2  # type: ignore[attr-defined]

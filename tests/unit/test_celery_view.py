"""What Celery is handed: redacted exception copies of the same type, and redacted argument reprs
with Celery's ``retries`` equal to ``attempt - 1`` on every message a process publishes."""

from __future__ import annotations

import pickle
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery import Celery, signals
from celery.exceptions import Retry
from celery.utils.serialization import get_pickleable_exception

from error_handling.exceptions import PermanentError, TransientError
from error_handling.redaction import DEFAULT_REDACTOR, REDACTED
from function_runner.app import install
from function_runner.settings import Settings
from function_runner.wrapper import headers as H
from function_runner.wrapper.celery_view import HOOK_ATTRIBUTE, PublishHook
from function_runner.wrapper.redacted_errors import StandIn, redacted_error

PLANTED = "sk-canary-0b1c2d3e4f5a6b7c8d9e"


def _clean(text: str) -> None:
    assert "canary" not in text.lower(), text


def _all_text(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)) + repr(error) + repr(error.args)


class NeedsStatus(Exception):
    """A client error whose constructor needs a keyword."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class FormatsItsAttributes(Exception):
    """An error whose text comes from an attribute the redactor cannot see into."""

    def __init__(self, client: object) -> None:
        super().__init__("call failed")
        self.client = client

    def __str__(self) -> str:
        return f"call failed for {self.client}"


class Client:
    def __str__(self) -> str:
        return f"Client with {PLANTED}"

    def __repr__(self) -> str:
        return "<Client>"


class ReadsAConnection(Exception):
    """An error whose text comes from somewhere no copy reaches (a class attribute here)."""

    connection = f"postgresql://app:{PLANTED}@db/x"

    def __str__(self) -> str:
        return f"cannot connect to {self.connection}"


def _raised(error: BaseException) -> BaseException:
    try:
        raise error
    except BaseException as caught:
        return caught


# --- exceptions ------------------------------------------------------------------------------------


def test_a_copy_keeps_the_type_the_message_shape_and_the_traceback() -> None:
    original = _raised(ValueError(f"bad key {PLANTED}", 42))
    copy = redacted_error(original, DEFAULT_REDACTOR)
    assert type(copy) is ValueError
    assert copy.args == (f"bad key {REDACTED}", 42)
    assert copy.__traceback__ is original.__traceback__
    assert original.args[0] == f"bad key {PLANTED}"  # the original is not changed
    _clean(_all_text(copy))


def test_a_type_with_required_arguments_is_copied_without_calling_its_constructor() -> None:
    original = NeedsStatus(f"401 token={PLANTED}", status=401)
    copy = redacted_error(original, DEFAULT_REDACTOR)
    assert type(copy) is NeedsStatus
    assert copy.status == 401
    assert str(copy) == f"401 token={REDACTED}"
    _clean(_all_text(copy))


def test_cause_context_and_notes_are_redacted_copies() -> None:
    try:
        try:
            raise KeyError(f"api_key={PLANTED}")
        except KeyError as cause:
            error = PermanentError(f"rejected {PLANTED}", reason="auth_failed")
            error.add_note(f"password: {PLANTED}")
            raise error from cause
    except PermanentError as caught:
        original = caught
    copy = redacted_error(original, DEFAULT_REDACTOR)
    assert type(copy) is PermanentError
    assert type(copy.__cause__) is KeyError
    assert copy.__suppress_context__
    assert copy.__notes__ == [f"password: {REDACTED}"]
    _clean(_all_text(copy))
    _clean(_all_text(copy.__cause__))


def test_a_cycle_in_the_chain_is_copied_once() -> None:
    first, second = RuntimeError(f"a {PLANTED}"), RuntimeError(f"b {PLANTED}")
    first.__context__, second.__context__ = second, first
    copy = redacted_error(first, DEFAULT_REDACTOR)
    assert copy.__context__ is not None and copy.__context__.__context__ is copy
    _clean(repr(copy) + repr(copy.__context__))


def test_an_attribute_whose_text_shows_a_secret_is_replaced_by_that_text_redacted() -> None:
    copy = redacted_error(_raised(FormatsItsAttributes(Client())), DEFAULT_REDACTOR)
    assert type(copy) is FormatsItsAttributes
    assert str(copy) == f"call failed for Client with {REDACTED}"
    _clean(_all_text(copy))


def test_a_text_no_copy_can_redact_gets_a_stand_in_of_the_same_name() -> None:
    copy = redacted_error(_raised(ReadsAConnection()), DEFAULT_REDACTOR)
    assert isinstance(copy, ReadsAConnection) and isinstance(copy, StandIn)
    assert type(copy).__name__ == "ReadsAConnection"
    assert type(copy).__qualname__ == ReadsAConnection.__qualname__
    assert str(copy) == f"cannot connect to postgresql://app:{REDACTED}@db/x"
    _clean(_all_text(copy))
    # it travels to the worker's main process and to a pickle result backend as itself
    back = pickle.loads(pickle.dumps(copy))
    assert type(back).__name__ == "ReadsAConnection" and str(back) == str(copy)
    assert get_pickleable_exception(copy) is copy


def test_celery_retry_gets_a_redacted_cause() -> None:
    cause = TransientError(f"503 key={PLANTED}", reason="service_unavailable")
    retry = Retry("retry scheduled in 1.00s", exc=cause, when=1.0)
    retry.__cause__ = cause
    copy = redacted_error(retry, DEFAULT_REDACTOR)
    assert isinstance(copy, Retry)
    assert str(copy) == "retry scheduled in 1.00s"
    assert type(copy.exc) is TransientError
    assert copy.exc.args[0] == f"503 key={REDACTED}"
    _clean(_all_text(copy) + repr(copy.excs) + repr(copy.__reduce__()))


# --- the publish hook --------------------------------------------------------------------------------


@pytest.fixture
def app() -> Iterator[Celery]:
    app = Celery("fr_unit_publish", broker="memory://", set_as_current=False)
    install(app, Settings(database_url="sqlite://", encryption_key=None))
    yield app
    app.close()


def _headers_of(publish: Callable[[], object]) -> dict[str, Any]:
    """The headers of the message ``publish`` publishes, as the hook left them (memory broker)."""
    seen: dict[str, Any] = {}

    def capture(*, headers: dict[str, Any] | None = None, **_: Any) -> None:
        seen.update(headers or {})

    signals.before_task_publish.connect(capture, weak=False)  # connected after the hook: sees its result
    try:
        publish()
    finally:
        signals.before_task_publish.disconnect(capture)
    return seen


def _published(app: Celery, **options: Any) -> dict[str, Any]:
    return _headers_of(lambda: app.send_task("t.any", **options))


def test_install_adds_the_hook(app: Celery) -> None:
    assert isinstance(getattr(app, HOOK_ATTRIBUTE), PublishHook)


def test_argument_reprs_are_redacted_by_key_and_by_pattern(app: Celery) -> None:
    headers = _published(app, args=[f"text {PLANTED}", 3], kwargs={"pin": 1234, "api_key": PLANTED, "n": 2})
    assert headers["argsrepr"] == "['text [REDACTED]', 3]"
    assert headers["kwargsrepr"] == "{'pin': '[REDACTED]', 'api_key': '[REDACTED]', 'n': 2}"


def test_a_repr_chosen_by_the_caller_is_kept_redacted_as_text(app: Celery) -> None:
    headers = _published(app, args=["x"], argsrepr="(<hidden>,)", kwargs={}, kwargsrepr=f"token={PLANTED}")
    assert headers["argsrepr"] == "(<hidden>,)"
    assert headers["kwargsrepr"] == f"token={REDACTED}"


def test_retries_follow_the_attempt_header(app: Celery) -> None:
    assert _published(app, args=[], headers={H.ATTEMPT: 3})["retries"] == 2
    assert _published(app, args=[])["retries"] == 0  # a first attempt
    assert _published(app, args=[], headers={H.ATTEMPT: 3}, retries=5)["retries"] == 5  # Celery's own count


def test_installing_again_replaces_the_hook(app: Celery) -> None:
    first = getattr(app, HOOK_ATTRIBUTE)
    install(app, Settings(database_url="sqlite://", encryption_key=None))
    assert getattr(app, HOOK_ATTRIBUTE) is not first
    assert _published(app, kwargs={"password": "hunter2"})["kwargsrepr"] == "{'password': '[REDACTED]'}"


def test_a_replay_publishes_redacted_reprs(app: Celery) -> None:
    from function_runner.replay import message as replay_message
    from function_runner.replay import single

    message = replay_message.ReplayMessage(
        task_name="t.any",
        args=[PLANTED],
        kwargs={"api_key": PLANTED},
        headers={H.REPLAY_OF: 7},
        options={},
        queue=None,
    )
    seen = _headers_of(lambda: single._publish(app, message, "replayed-task-id"))
    assert seen["argsrepr"] == f"['{REDACTED}']"
    assert seen["kwargsrepr"] == f"{{'api_key': '{REDACTED}'}}"
    assert seen["retries"] == 0  # a replay is a new task: its first attempt

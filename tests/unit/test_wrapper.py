"""RecoverableTask without a broker: Celery's eager execution (``task.apply``) on a SQLite database.

``apply`` runs the task through Celery's tracer and ``Task.__call__`` with a real request (not
``called_directly``), so the wrapper classifies, records and routes exactly as in a worker; the eager
result's state is what a worker would report (``RETRY``, ``FAILURE``, ``REJECTED``).
"""

from __future__ import annotations

import datetime as dt
import json
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from celery import Celery
from celery.exceptions import Reject
from celery.result import EagerResult

from error_handling.categories import Category
from error_handling.classification import Rule
from error_handling.exceptions import TransientError, ValidationError
from error_handling.persistence.db import make_engine
from error_handling.sealing import SEALED_KEY, Sealer, generate_key, unseal_secrets
from function_runner.app import create_app
from function_runner.migrate import upgrade
from function_runner.runtime import runtime_for
from function_runner.settings import Settings
from function_runner.wrapper.task import RecoverableTask

KEY = generate_key()
# The secret holds the word "canary"; the names of these constants do not.
PLANTED_KEY = "sk-canary0123456789abcdefCANARY"

AppFactory = Callable[..., Celery]
Rows = Callable[..., list[dict[str, Any]]]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """A migrated SQLite database of this test."""
    url = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    upgrade(url)
    return url


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[AppFactory]:
    """Create Celery apps with function-runner installed; each is closed at the end of the test."""
    apps: list[Celery] = []

    def _make(database_url: str, **settings: Any) -> Celery:
        config = Settings(database_url=database_url, data_dir=tmp_path, encryption_key=KEY, **settings)
        app = create_app(config, main=f"fr_unit_{len(apps)}")
        apps.append(app)
        return app

    yield _make
    for app in apps:
        runtime_for(app).close()
        app.close()


@pytest.fixture
def app(make_app: AppFactory, database_url: str) -> Celery:
    """An app on the test's migrated database."""
    return make_app(database_url, storage_retry_timeout=0)


@pytest.fixture
def rows(database_url: str) -> Iterator[Rows]:
    """Read a table's rows (as dicts) from the test's database."""
    engine = make_engine(database_url)

    def _rows(table: str, **where: Any) -> list[dict[str, Any]]:
        query = f"SELECT * FROM {table}"
        if where:
            query += " WHERE " + " AND ".join(f"{k} = :{k}" for k in where)
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.text(query), where)]

    yield _rows
    engine.dispose()


def run(task: Any, *args: Any, task_id: str, headers: dict[str, Any] | None = None, **kwargs: Any) -> EagerResult:
    """Execute ``task`` eagerly, through Celery's tracer and the wrapper."""
    result: EagerResult = task.apply(args=list(args), kwargs=kwargs, task_id=task_id, headers=headers)
    return result


def test_eager_execution_goes_through_the_wrapper(app: Celery) -> None:
    seen: dict[str, Any] = {}

    @app.task(base=RecoverableTask, bind=True, name="unit.probe")
    def probe(self: RecoverableTask) -> None:
        seen["called_directly"] = self.request.called_directly
        seen["attempt"] = self.attempt

    assert run(probe, task_id="probe-1").state == "SUCCESS"
    assert seen == {"called_directly": False, "attempt": 1}


def test_the_attempt_comes_from_the_fr_attempt_header(app: Celery) -> None:
    seen: list[int] = []

    @app.task(base=RecoverableTask, bind=True, name="unit.attempt")
    def attempt(self: RecoverableTask) -> None:
        seen.append(self.attempt)

    run(attempt, task_id="att-1", headers={"fr_attempt": 4})
    run(attempt, task_id="att-2", headers={"fr_attempt": "2"})
    run(attempt, task_id="att-3", headers={"fr_attempt": "not-a-number"})
    assert seen == [4, 2, 1]


def test_success_on_the_first_attempt_touches_no_database(make_app: AppFactory, tmp_path: Path) -> None:
    # a database in a folder that does not exist: any access to it fails
    app = make_app(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'x.sqlite3'}", storage_retry_timeout=0)

    @app.task(base=RecoverableTask, name="unit.double")
    def double(x: int) -> int:
        return x * 2

    @app.task(base=RecoverableTask, name="unit.refused")
    def refused() -> None:
        raise ConnectionError("refused")

    result = run(double, 21, task_id="ok-1", headers={"fr_attempt": 2})
    assert (result.state, result.result) == ("SUCCESS", 42)
    # the control: a failure of the same app needs the database, and cannot reach it
    failed = run(refused, task_id="fail-1")
    assert failed.state == "REJECTED"
    assert not (tmp_path / "no").exists()


def test_success_on_the_first_attempt_writes_no_row(app: Celery, rows: Rows) -> None:
    @app.task(base=RecoverableTask, name="unit.ok")
    def ok() -> str:
        return "done"

    assert run(ok, task_id="ok-2").state == "SUCCESS"
    for table in ("fr_tasks", "fr_failed_attempts", "fr_scheduled_runs", "fr_dead_letters"):
        assert rows(table) == []


def test_a_transient_failure_schedules_a_retry_row(app: Celery, rows: Rows) -> None:
    @app.task(base=RecoverableTask, name="unit.flaky")
    def flaky(n: int) -> None:
        raise TransientError(f"upstream 503 for {n}", reason="service_unavailable")

    before = dt.datetime.now(dt.UTC)
    result = run(flaky, 7, task_id="flaky-1")
    assert result.state == "RETRY"

    (task,) = rows("fr_tasks", task_id="flaky-1")
    assert (task["task_name"], task["state"], task["attempts"]) == ("unit.flaky", "retrying", 1)
    assert json.loads(task["args"]) == [7]
    (attempt,) = rows("fr_failed_attempts", task_id="flaky-1")
    assert (attempt["attempt"], attempt["category"], attempt["reason"], attempt["decision"]) == (
        1,
        "transient",
        "service_unavailable",
        "retry",
    )
    assert attempt["message"] == "upstream 503 for 7"
    (scheduled,) = rows("fr_scheduled_runs", task_id="flaky-1")
    assert (scheduled["kind"], scheduled["attempt"], scheduled["status"]) == ("retry", 2, "pending")
    due = dt.datetime.fromisoformat(scheduled["due_at"]).replace(tzinfo=dt.UTC)
    assert before <= due <= before + dt.timedelta(seconds=2)  # full jitter within base 1 s, plus slack
    assert rows("fr_dead_letters") == []


def test_a_retry_of_a_retry_counts_the_attempt_from_the_header(app: Celery, rows: Rows) -> None:
    @app.task(base=RecoverableTask, name="unit.refused_again")
    def refused_again() -> None:
        raise ConnectionError("connection refused")

    assert run(refused_again, task_id="again-1").state == "RETRY"
    assert run(refused_again, task_id="again-1", headers={"fr_attempt": 2}).state == "RETRY"
    attempts = sorted((a["attempt"], a["reason"]) for a in rows("fr_failed_attempts", task_id="again-1"))
    assert attempts == [(1, "connection"), (2, "connection")]
    runs = sorted(r["attempt"] for r in rows("fr_scheduled_runs", task_id="again-1"))
    assert runs == [2, 3]


def test_a_validation_error_fails_fast_with_the_users_message(app: Celery, rows: Rows) -> None:
    @app.task(base=RecoverableTask, name="unit.invoice")
    def invoice(amount: int) -> None:
        raise ValidationError(f"amount {amount} < 0", user_message="Amount must be positive.")

    result = run(invoice, -5, task_id="inv-1")
    assert result.state == "FAILURE"
    assert isinstance(result.result, ValidationError)

    (task,) = rows("fr_tasks", task_id="inv-1")
    assert (task["state"], task["user_message"]) == ("failed_fast", "Amount must be positive.")
    assert task["terminal_at"] is not None
    (attempt,) = rows("fr_failed_attempts", task_id="inv-1")
    assert (attempt["category"], attempt["decision"]) == ("validation", "fail_fast")
    assert rows("fr_scheduled_runs") == []
    assert rows("fr_dead_letters") == []


def test_celery_is_handed_the_bodys_frames_and_causes_not_the_wrappers(app: Celery) -> None:
    @app.task(base=RecoverableTask, name="unit.frames")
    def frames(kind: str) -> None:
        def lookup() -> None:
            try:
                {}["account"]
            except KeyError as missing:
                if kind == "validation":
                    raise ValidationError("no account given") from missing
                raise TransientError("upstream 503", reason="service_unavailable") from missing

        lookup()

    failed = run(frames, "validation", task_id="frames-1")
    assert failed.state == "FAILURE" and isinstance(failed.result, ValidationError)
    assert isinstance(failed.result.__cause__, KeyError)  # the body's own cause is kept
    for text in (failed.traceback, "".join(traceback.format_exception(failed.result))):
        assert "in lookup" in text and "in frames" in text and "KeyError" in text
        assert "_conclude" not in text and "_on_failure" not in text and "_execute" not in text
        assert "_run_body" not in text

    retried = run(frames, "transient", task_id="frames-2")
    assert retried.state == "RETRY"
    retry = retried.result
    assert isinstance(retry.exc, TransientError) and retry.__cause__ is retry.exc
    assert "in lookup" in retried.traceback and "upstream 503" in retried.traceback
    assert "_conclude" not in retried.traceback and "_on_failure" not in retried.traceback


def test_a_per_task_policy_dead_letters_on_the_first_transient_failure(app: Celery, rows: Rows) -> None:
    @app.task(base=RecoverableTask, name="unit.once", recovery_policy={"transient_max_attempts": 1})
    def once() -> None:
        raise TimeoutError("upstream timed out")

    @app.task(base=RecoverableTask, name="unit.default_policy")
    def default_policy() -> None:
        raise TimeoutError("upstream timed out")

    result = run(once, task_id="once-1")
    assert result.state == "FAILURE"
    assert isinstance(result.result, TimeoutError)
    (task,) = rows("fr_tasks", task_id="once-1")
    assert task["state"] == "dead_lettered"
    (letter,) = rows("fr_dead_letters", task_id="once-1")
    assert (letter["reason"], letter["category"], letter["attempts"]) == ("retries_exhausted", "transient", 1)
    assert rows("fr_scheduled_runs", task_id="once-1") == []

    # the same failure under the app's policy (5 attempts) is retried
    assert run(default_policy, task_id="default-1").state == "RETRY"


def test_per_task_rules_override_the_built_ins(app: Celery, rows: Rows) -> None:
    rule = Rule(
        category=Category.VALIDATION, reason="invalid_input", exception=KeyError, user_message="Unknown customer."
    )

    @app.task(base=RecoverableTask, name="unit.lookup", recovery_rules=[rule])
    def lookup(customer: str) -> None:
        raise KeyError(customer)

    @app.task(base=RecoverableTask, name="unit.lookup_builtin")
    def lookup_builtin(customer: str) -> None:
        raise KeyError(customer)

    assert run(lookup, "acme", task_id="rule-1").state == "FAILURE"
    (attempt,) = rows("fr_failed_attempts", task_id="rule-1")
    assert (attempt["category"], attempt["reason"], attempt["decision"]) == ("validation", "invalid_input", "fail_fast")
    (task,) = rows("fr_tasks", task_id="rule-1")
    assert (task["state"], task["user_message"]) == ("failed_fast", "Unknown customer.")

    # without the rule, a KeyError is a bug: a retry would run the same code again, so it is dead-lettered
    assert run(lookup_builtin, "acme", task_id="builtin-1").state == "FAILURE"
    (builtin,) = rows("fr_failed_attempts", task_id="builtin-1")
    assert (builtin["category"], builtin["reason"], builtin["decision"]) == (
        "permanent",
        "programming_error",
        "dead_letter",
    )


def test_secrets_in_kwargs_are_sealed_in_the_stored_rows(app: Celery, rows: Rows) -> None:
    @app.task(base=RecoverableTask, name="unit.llm")
    def llm(prompt: str, api_key: str) -> None:
        raise ConnectionError(f"refused while calling with {api_key}")

    result = run(llm, task_id="llm-1", prompt="hello", api_key=PLANTED_KEY)
    assert result.state == "RETRY"

    (task,) = rows("fr_tasks", task_id="llm-1")
    kwargs = json.loads(task["kwargs"])
    assert kwargs["prompt"] == "hello"
    assert set(kwargs["api_key"]) == {SEALED_KEY}
    assert unseal_secrets(kwargs, sealer=Sealer(KEY)) == {"prompt": "hello", "api_key": PLANTED_KEY}
    every_row = [*rows("fr_tasks"), *rows("fr_failed_attempts"), *rows("fr_scheduled_runs")]
    assert "canary" not in repr(every_row)


def test_an_unreachable_database_rejects_the_message_for_redelivery(make_app: AppFactory) -> None:
    app = make_app("postgresql://postgres@127.0.0.1:1/x", storage_retry_timeout=0)
    ran: list[str] = []

    @app.task(base=RecoverableTask, bind=True, name="unit.down")
    def down(self: RecoverableTask) -> None:
        ran.append(self.request.id)
        raise ConnectionError("upstream refused")

    result = run(down, task_id="down-1")
    assert ran == ["down-1"]
    assert result.state == "REJECTED"
    assert isinstance(result.result, Reject)
    assert result.result.requeue is True
    assert "failure not recorded" in str(result.result.reason)


def test_a_step_the_body_cannot_record_gives_the_message_back_and_is_no_failed_attempt(
    make_app: AppFactory,
) -> None:
    """Found by the chaos suite: Postgres down while a task records a compensation step. The task did not
    fail, function-runner's storage did: the message goes back to the broker, no attempt is counted."""
    app = make_app("postgresql://postgres@127.0.0.1:1/x", storage_retry_timeout=0)

    @app.task(base=RecoverableTask, bind=True, name="unit.pays")
    def pays(self: RecoverableTask) -> str:
        self.compensation.record_operation("charge", undo=None, data={"amount": 5})
        return "paid"

    result = run(pays, task_id="pays-1")
    assert result.state == "REJECTED"
    assert result.result.requeue is True
    assert "the task's records could not be written" in str(result.result.reason)


def test_a_failure_that_cannot_be_recorded_is_never_acked(
    app: Celery, rows: Rows, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug while recording (not an outage) must not let Celery ack an unrecorded failure."""
    from error_handling.persistence import failure_recording

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("bug in the recorder")

    monkeypatch.setattr(failure_recording, "record_failures", broken)

    @app.task(base=RecoverableTask, name="unit.bugged")
    def bugged() -> None:
        raise TransientError("upstream 503")

    result = run(bugged, task_id="bugged-1")
    assert result.state == "REJECTED"
    assert result.result.requeue is True
    assert "minimal record refused (RuntimeError)" in str(result.result.reason)  # no Redis: no second chance
    assert rows("fr_failed_attempts") == []


def test_an_unsealable_payload_is_recorded_redacted_and_not_replayable(app: Celery, rows: Rows) -> None:
    class Unencodable:
        def __repr__(self) -> str:
            return "<Unencodable password=hunter2-canary-pw>"

    @app.task(base=RecoverableTask, name="unit.odd_args")
    def odd_args(thing: Any) -> None:
        raise ValidationError("bad thing")

    result = run(odd_args, Unencodable(), task_id="odd-1")
    assert result.state == "FAILURE"
    (task,) = rows("fr_tasks", task_id="odd-1")
    assert task["state"] == "failed_fast"
    assert not task["replayable"]
    assert "hunter2-canary-pw" not in repr(task)


def _data_error() -> sa.exc.DataError:
    """What SQLAlchemy raises when Postgres refuses a value (not an outage)."""
    return sa.exc.DataError("INSERT ...", {}, Exception("\\u0000 cannot be converted to text"))


def test_a_refused_record_without_a_counter_is_dead_lettered_at_once_with_a_minimal_sealed_record(
    app: Celery, rows: Rows, monkeypatch: pytest.MonkeyPatch
) -> None:
    from error_handling.persistence import failure_recording

    real = failure_recording.record_failures

    def refusing(session: Any, *, reports: Any, policy: Any, rng: Any = None) -> Any:
        if any(r.classification.reason != "unrecordable" for r in reports):
            raise _data_error()
        return real(session, reports=reports, policy=policy, rng=rng)

    monkeypatch.setattr(failure_recording, "record_failures", refusing)
    ran: list[str] = []

    @app.task(base=RecoverableTask, name="unit.refused")
    def refused(order: str, api_key: str) -> None:
        ran.append(order)
        raise TransientError("upstream 503")

    result = run(refused, "o-1", api_key=PLANTED_KEY, task_id="refused-1")
    assert result.state == "FAILURE" and ran == ["o-1"]  # no Redis to count give-backs: no second run
    (letter,) = rows("fr_dead_letters", task_id="refused-1")
    assert (letter["reason"], letter["category"]) == ("unrecordable", "permanent")
    assert "DataError" in letter["message"] and "record_failure" in letter["message"]
    assert "canary" not in json.dumps([letter["args"], letter["kwargs"], letter["message"]]).lower()
    sealer = Sealer(KEY)
    assert unseal_secrets(json.loads(letter["args"]), sealer=sealer) == ["o-1"]
    assert unseal_secrets(json.loads(letter["kwargs"]), sealer=sealer) == {"api_key": PLANTED_KEY}
    (attempt,) = rows("fr_failed_attempts", task_id="refused-1")
    assert (attempt["reason"], attempt["traceback"]) == ("unrecordable", None)


def test_a_refused_redelivery_bookkeeping_does_not_escape_as_the_outcome(
    app: Celery, rows: Rows, monkeypatch: pytest.MonkeyPatch
) -> None:

    from error_handling.persistence import lost_deliveries
    from function_runner.wrapper.execution import Execution

    def refusing(*_args: Any, **_kwargs: Any) -> Any:
        raise _data_error()

    monkeypatch.setattr(lost_deliveries, "reconcile_lost_deliveries", refusing)
    monkeypatch.setattr(Execution, "redelivered", property(lambda _self: True))
    ran: list[int] = []

    @app.task(base=RecoverableTask, name="unit.redelivered")
    def redelivered() -> None:
        ran.append(1)

    result = run(redelivered, task_id="redelivered-1")
    assert result.state == "FAILURE" and ran == []  # dead-lettered, not run, not acked as an error
    (letter,) = rows("fr_dead_letters", task_id="redelivered-1")
    assert letter["reason"] == "unrecordable" and "redelivery" in letter["message"]


def test_a_bug_of_the_bookkeeping_after_the_body_is_never_the_outcome(
    app: Celery, rows: Rows, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(RecoverableTask, "_conclude", broken)

    @app.task(base=RecoverableTask, name="unit.wrapper_bug")
    def failing() -> None:
        raise TransientError("upstream 503")

    result = run(failing, task_id="wrapper-bug-1")
    assert result.state == "REJECTED" and result.result.requeue is True  # given back, never acked


def test_refusals_are_counted_apart_from_losses(redis_url: str) -> None:
    from types import SimpleNamespace

    import redis as redis_lib

    from function_runner.wrapper import deliveries

    client = redis_lib.Redis.from_url(redis_url)
    runtime: Any = SimpleNamespace(shared_redis=SimpleNamespace(require=lambda: client))
    assert [deliveries.count_refusal(runtime, "t-1", 1) for _ in range(3)] == [1, 2, 3]
    assert deliveries.count_redelivery(runtime, "t-1", 1, SimpleNamespace(headers={})) == 0  # no losses
    assert deliveries.count_refusal(runtime, "t-1", 2) == 1


def test_without_redis_nothing_counts_refusals() -> None:
    from types import SimpleNamespace

    from function_runner.wrapper import deliveries

    def no_redis() -> Any:
        raise RuntimeError("no Redis")

    runtime: Any = SimpleNamespace(shared_redis=SimpleNamespace(require=no_redis))
    assert deliveries.count_refusal(runtime, "t", 1) is None  # the caller dead-letters: no second chance


def test_a_refused_success_record_leaves_the_success_a_success(
    app: Celery, rows: Rows, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:

    from error_handling.persistence import failure_recording
    from function_runner.wrapper.execution import Execution

    def refusing(*_args: Any, **_kwargs: Any) -> Any:
        raise _data_error()

    monkeypatch.setattr(failure_recording, "record_success", refusing)
    monkeypatch.setattr(Execution, "redelivered", property(lambda _self: True))  # a lost delivery before: recovered

    @app.task(base=RecoverableTask, name="unit.recovered")
    def recovered() -> str:
        return "done"

    result = run(recovered, task_id="recovered-1")
    assert (result.state, result.result) == ("SUCCESS", "done")
    assert any("task.success_not_recorded" in r.getMessage() for r in caplog.records)
    assert len(rows("fr_lost_deliveries", task_id="recovered-1")) == 1


def test_the_bodys_own_retry_is_recorded_and_scheduled_as_a_row_after_its_countdown(
    app: Celery, rows: Rows, monkeypatch: pytest.MonkeyPatch
) -> None:
    published: list[Any] = []
    monkeypatch.setattr(Celery, "send_task", lambda *a, **k: published.append((a, k)))

    @app.task(base=RecoverableTask, bind=True, name="unit.asks_for_retry")
    def asks(self: RecoverableTask, cause: str) -> None:
        exc = TransientError("upstream 503") if cause == "transient" else None
        raise self.retry(exc=exc, countdown=30)

    @app.task(base=RecoverableTask, bind=True, name="unit.retry_with_new_args")
    def new_args(self: RecoverableTask) -> None:
        raise self.retry(args=[2], countdown=5)

    for task_id, cause in (("asked-1", "none"), ("asked-2", "transient")):
        assert run(asks, cause, task_id=task_id).state == "RETRY"
        (attempt,) = rows("fr_failed_attempts", task_id=task_id)
        assert (attempt["category"], attempt["retry_after"], attempt["decision"]) == ("transient", 30.0, "retry")
        (scheduled,) = rows("fr_scheduled_runs", task_id=task_id)
        due = dt.datetime.fromisoformat(str(scheduled["due_at"]))
        failed = dt.datetime.fromisoformat(str(attempt["failed_at"]))
        assert (scheduled["kind"], scheduled["status"]) == ("retry", "pending")
        assert due - failed >= dt.timedelta(seconds=30)  # the countdown, as a row: no ETA message
    assert [a["reason"] for a in rows("fr_failed_attempts", task_id="asked-2")] == ["service_unavailable"]
    assert published == []

    # an exception Celery cannot pickle (httpx's needs its request and response) is classified as it is
    @app.task(base=RecoverableTask, bind=True, name="unit.retry_after_429")
    def after_429(self: RecoverableTask) -> None:
        import httpx

        request = httpx.Request("POST", "https://api.provider.test/v1")
        reply = httpx.Response(429, headers={"Retry-After": "7"}, json={"error": {"code": "rate_limit_exceeded"}})
        reply.request = request
        try:
            reply.raise_for_status()
        except httpx.HTTPStatusError as exc:
            raise self.retry(exc=exc, countdown=3) from exc

    assert run(after_429, task_id="asked-3").state == "RETRY"
    (limited,) = rows("fr_failed_attempts", task_id="asked-3")
    assert (limited["reason"], limited["status_code"], limited["decision"]) == ("rate_limited", 429, "retry")
    assert limited["retry_after"] == 7.0  # the server's wait, later than the countdown, wins

    # the retry runs the recorded arguments: new ones are a bug of the task
    assert run(new_args, task_id="new-args-1").state == "FAILURE"
    (refused,) = rows("fr_failed_attempts", task_id="new-args-1")
    assert (refused["reason"], refused["exc_type"]) == ("programming_error", "TypeError")

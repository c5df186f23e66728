"""Replay on SQLite and kombu's in-memory broker: the message a replay publishes is read back from the
broker, and the dead letter is marked in the same transaction as the publish."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from kombu import Connection, Message
from kombu.simple import SimpleQueue
from sqlalchemy.orm import Session

from error_handling.persistence import dead_letters as dl
from error_handling.persistence.db import transaction
from error_handling.persistence.models import AuditEvent, DeadLetterRecord, DeadLetterStatus, ReplayRequestRecord
from error_handling.redaction import REDACTED
from error_handling.sealing import generate_key
from function_runner.app import create_app
from function_runner.replay.edits import check_edits
from function_runner.replay.errors import (
    EditTooDeep,
    EditTooLarge,
    InvalidReplayEdit,
    QueueNotAllowed,
    ReplayError,
    ReplayPublishFailed,
    ReservedIdempotencyKey,
    SecretMoved,
)
from function_runner.replay.message import declared_queues
from function_runner.replay.single import ReplayOrder, preview_replay, replay_dead_letter
from function_runner.runtime import Runtime, runtime_for
from function_runner.settings import Settings
from function_runner.wrapper import headers as H
from tests.support.api_client import local_client
from tests.support.dead_letter_seed import seed_dead_letter

NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
PASSWORD = "pw-0123-secret-value"
API_KEY = "sk-unit0123456789abcdefREPLAY"


def make_settings(tmp_path: Path, broker_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'replay.sqlite3'}",
        broker_url=broker_url,
        encryption_key=generate_key(),
        replay_allowed_queues=["urgent"],
    )


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Celery]:
    from function_runner.migrate import upgrade

    settings = make_settings(tmp_path, "memory://")
    upgrade(settings.effective_database_url)
    celery = create_app(settings, main="fr_unit_replay")
    yield celery
    runtime_for(celery).close()
    celery.close()


@pytest.fixture
def runtime(app: Celery) -> Runtime:
    return runtime_for(app)


class Broker:
    """Reads what was published to the in-memory broker, queue by queue."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.queues: dict[str, SimpleQueue] = {}

    def queue(self, name: str) -> SimpleQueue:
        if name not in self.queues:
            self.queues[name] = self.connection.SimpleQueue(name)
            self.queues[name].clear()  # the memory transport is shared by the whole process
        return self.queues[name]

    def messages(self, name: str = "celery") -> list[Message]:
        found = []
        queue = self.queue(name)
        while queue.qsize():
            message = queue.get(timeout=1)
            message.ack()
            found.append(message)
        return found

    def close(self) -> None:
        for queue in self.queues.values():
            queue.close()


@pytest.fixture
def broker(app: Celery) -> Iterator[Broker]:
    with app.connection_for_read() as connection:
        reader = Broker(connection)
        reader.queue("celery")
        reader.queue("urgent")
        yield reader
        reader.close()


def seed(runtime: Runtime, task_id: str, **kw: Any) -> int:
    kw.setdefault("args", [7, {"token": API_KEY}])
    kw.setdefault("kwargs", {"password": PASSWORD, "amount": 10})
    kw.setdefault("headers", {"tenant": "acme", "authorization": f"Bearer {API_KEY}"})
    return seed_dead_letter(runtime.sessions, task_id, sealer=runtime.sealer, at=NOW, task_name="app.charge", **kw)


def letter(runtime: Runtime, letter_id: int) -> DeadLetterRecord:
    with runtime.sessions() as s:
        found = s.get(DeadLetterRecord, letter_id)
        assert found is not None
        return found


def replay_rows(runtime: Runtime) -> list[tuple[int, str, str | None]]:
    with runtime.sessions() as s:
        return [(r.dead_letter_id, r.task_id, r.idempotency_key) for r in s.query(ReplayRequestRecord).order_by("id")]


def test_a_replay_publishes_a_new_task_with_the_original_payload_and_marks_the_letter(
    app: Celery, runtime: Runtime, broker: Broker
) -> None:
    letter_id = seed(runtime, "orig-1")
    result = replay_dead_letter(app, runtime, dead_letter_id=letter_id)

    (message,) = broker.messages()
    args, kwargs, _embed = message.payload
    assert args == [7, {"token": API_KEY}]  # secrets unsealed
    assert kwargs == {"password": PASSWORD, "amount": 10}
    assert message.headers["task"] == "app.charge"
    assert message.headers["id"] == result.task_id != "orig-1"
    assert message.headers[H.REPLAY_OF] == letter_id
    assert (message.headers["tenant"], message.headers["authorization"]) == ("acme", f"Bearer {API_KEY}")
    assert message.delivery_info["routing_key"] == "celery"

    stored = letter(runtime, letter_id)
    assert (stored.status, stored.replayed_task_id) == (DeadLetterStatus.REPLAYED, result.task_id)
    assert stored.replayed_at == result.replayed_at
    assert (result.dead_letter_id, result.task_name, result.forced, result.repeated) == (
        letter_id,
        "app.charge",
        False,
        False,
    )
    assert replay_rows(runtime) == [(letter_id, result.task_id, None)]


def test_edits_keep_redacted_secrets_and_take_new_values(app: Celery, runtime: Runtime, broker: Broker) -> None:
    letter_id = seed(runtime, "orig-1")
    replay_dead_letter(
        app,
        runtime,
        dead_letter_id=letter_id,
        args=[8, {"token": REDACTED}],
        kwargs={"password": REDACTED, "amount": 12, "note": "fixed"},
        queue="urgent",
    )
    assert broker.messages("celery") == []
    (message,) = broker.messages("urgent")
    args, kwargs, _ = message.payload
    assert args == [8, {"token": API_KEY}]
    assert kwargs == {"password": PASSWORD, "amount": 12, "note": "fixed"}
    assert message.delivery_info["routing_key"] == "urgent"


@pytest.mark.parametrize(
    "edits, param",
    [
        ({"kwargs": {"amount": REDACTED}}, "kwargs"),  # nothing secret was stored there
        ({"args": [REDACTED]}, "args"),  # the list changed length: which secret goes where is a guess
        ({"kwargs": ["not", "a", "dict"]}, "kwargs"),
    ],
)
def test_bad_edits_are_refused_and_nothing_happens(
    app: Celery, runtime: Runtime, broker: Broker, edits: dict[str, Any], param: str
) -> None:
    letter_id = seed(runtime, "orig-1")
    with pytest.raises(InvalidReplayEdit) as caught:
        replay_dead_letter(app, runtime, dead_letter_id=letter_id, **edits)
    assert caught.value.param == param
    assert broker.messages() == []
    assert letter(runtime, letter_id).status is DeadLetterStatus.PENDING
    assert replay_rows(runtime) == []


def test_a_second_replay_is_refused_unless_forced(app: Celery, runtime: Runtime, broker: Broker) -> None:
    letter_id = seed(runtime, "orig-1")
    first = replay_dead_letter(app, runtime, dead_letter_id=letter_id)
    with pytest.raises(dl.AlreadyReplayed, match=first.task_id):
        replay_dead_letter(app, runtime, dead_letter_id=letter_id)
    assert len(broker.messages()) == 1

    second = replay_dead_letter(app, runtime, dead_letter_id=letter_id, force=True)
    (message,) = broker.messages()
    assert message.headers["id"] == second.task_id != first.task_id
    assert second.forced
    assert letter(runtime, letter_id).replayed_task_id == second.task_id
    assert [task for _, task, _ in replay_rows(runtime)] == [first.task_id, second.task_id]


def test_discarded_and_unreplayable_letters_are_refused(app: Celery, runtime: Runtime, broker: Broker) -> None:
    discarded = seed(runtime, "orig-1")
    with transaction(runtime.sessions) as s:
        dl.discard(s, dead_letter_id=discarded, reason="obsolete", now=NOW)
    with pytest.raises(dl.AlreadyDiscarded):
        replay_dead_letter(app, runtime, dead_letter_id=discarded, force=True)

    opaque = seed(runtime, "orig-2", replayable=False)
    with pytest.raises(dl.NotReplayable):
        replay_dead_letter(app, runtime, dead_letter_id=opaque, kwargs={"amount": 1})
    with pytest.raises(dl.DeadLetterNotFound):
        replay_dead_letter(app, runtime, dead_letter_id=4242)
    assert broker.messages() == []

    # with args and kwargs both given in full, the stored payload is not needed
    replay_dead_letter(app, runtime, dead_letter_id=opaque, args=[1], kwargs={"amount": 1})
    (message,) = broker.messages()
    assert message.payload[:2] == [[1], {"amount": 1}]


def test_an_idempotency_key_returns_the_first_replay_and_is_bound_to_its_letter(
    app: Celery, runtime: Runtime, broker: Broker
) -> None:
    one = seed(runtime, "orig-1")
    two = seed(runtime, "orig-2")
    first = replay_dead_letter(app, runtime, dead_letter_id=one, idempotency_key="req-1")
    again = replay_dead_letter(app, runtime, dead_letter_id=one, idempotency_key="req-1", force=True)
    assert (again.task_id, again.repeated, again.replayed_at) == (first.task_id, True, first.replayed_at)
    assert len(broker.messages()) == 1

    with pytest.raises(dl.IdempotencyKeyReused, match=f"dead letter {one}"):
        replay_dead_letter(app, runtime, dead_letter_id=two, idempotency_key="req-1")
    assert broker.messages() == []
    assert letter(runtime, two).status is DeadLetterStatus.PENDING


def test_a_failed_publish_marks_nothing(tmp_path: Path, app: Celery, runtime: Runtime) -> None:
    letter_id = seed(runtime, "orig-1")
    down = create_app(make_settings(tmp_path, "redis://127.0.0.1:1/0"), main="fr_unit_down")
    down.conf.update(task_publish_retry=False, broker_connection_timeout=1)
    try:
        with pytest.raises(ReplayPublishFailed) as caught:
            replay_dead_letter(down, runtime, dead_letter_id=letter_id, idempotency_key="k")
    finally:
        down.close()
    assert isinstance(caught.value, ReplayError)
    assert letter(runtime, letter_id).status is DeadLetterStatus.PENDING
    assert replay_rows(runtime) == []


def test_a_preview_shows_redacted_values_and_publishes_nothing(app: Celery, runtime: Runtime, broker: Broker) -> None:
    letter_id = seed(runtime, "orig-1")
    with Session(runtime.engine) as s:
        preview = preview_replay(
            s,
            ReplayOrder(dead_letter_id=letter_id, kwargs={"password": REDACTED, "amount": 3}, queue="urgent"),
            runtime,
        )
    assert preview.kwargs == {"password": REDACTED, "amount": 3}
    assert preview.args == [7, {"token": REDACTED}]
    assert preview.headers["authorization"] == REDACTED
    assert preview.headers[H.REPLAY_OF] == letter_id
    assert preview.queue == "urgent" and preview.options == {"queue": "urgent"}
    assert PASSWORD not in repr(preview) and API_KEY not in repr(preview)
    assert broker.messages() == [] and broker.messages("urgent") == []
    assert letter(runtime, letter_id).status is DeadLetterStatus.PENDING


def test_the_dead_letter_routes_are_documented(tmp_path: Path) -> None:
    import warnings

    from api.main import API_PREFIX
    from api.main import create_app as create_api

    api = create_api(make_settings(tmp_path, "memory://"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a duplicate operation id is a warning
        with local_client(api) as client:
            schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    assert set(paths[f"{API_PREFIX}/dead-letters"]) == {"get"}
    assert set(paths[f"{API_PREFIX}/dead-letters/{{dead_letter_id}}"]) == {"get", "delete"}
    replay = paths[f"{API_PREFIX}/dead-letters/{{dead_letter_id}}/replay"]["post"]
    assert {"202", "404", "409", "422", "503"} <= set(replay["responses"])
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in replay["parameters"])


def audit_rows(runtime: Runtime) -> list[AuditEvent]:
    with runtime.sessions() as s:
        return list(s.query(AuditEvent).order_by(AuditEvent.id))


def assert_nothing_happened(runtime: Runtime, broker: Broker, letter_id: int) -> None:
    assert broker.messages() == [] and broker.messages("urgent") == []
    assert letter(runtime, letter_id).status is DeadLetterStatus.PENDING
    assert replay_rows(runtime) == []
    assert audit_rows(runtime) == []


@pytest.mark.parametrize(
    "edits, param, where",
    [
        # the password's placeholder put under another key, and the token's into another argument
        ({"kwargs": {"password": "new", "amount": REDACTED}}, "kwargs", "kwargs.amount,"),
        ({"args": [REDACTED, {"token": "t"}]}, "args", "args[0],"),
        # a secret's placeholder nested under a new key of the same dict
        ({"kwargs": {"password": REDACTED, "amount": {"password": REDACTED}}}, "kwargs", "kwargs.amount.password,"),
        # the token's placeholder at its own path, but its list grew: positions are a guess
        ({"args": [7, {"token": REDACTED}, 9]}, "args", "args[1].token:"),
        # a sealed marker (the stored form of a secret) where the stored payload has none
        ({"kwargs": {"password": REDACTED, "note": {"$sealed": "gAAAA-forged"}}}, "kwargs", "kwargs.note,"),
    ],
)
def test_an_edit_that_moves_a_sealed_secret_is_refused_and_nothing_is_written(
    app: Celery, runtime: Runtime, broker: Broker, edits: dict[str, Any], param: str, where: str
) -> None:
    letter_id = seed(runtime, "orig-1")
    with pytest.raises(SecretMoved) as caught:
        replay_dead_letter(app, runtime, dead_letter_id=letter_id, actor="ops", **edits)
    assert caught.value.param == param and caught.value.code == "secret_moved"
    assert f"at {where}" in caught.value.message
    assert PASSWORD not in caught.value.message and API_KEY not in caught.value.message
    assert_nothing_happened(runtime, broker, letter_id)


def test_a_queue_the_app_does_not_declare_is_refused_and_declared_ones_are_taken(
    tmp_path: Path, runtime: Runtime, broker: Broker
) -> None:
    letter_id = seed(runtime, "orig-1")
    app = create_app(make_settings(tmp_path, "memory://"), main="fr_unit_queues")
    app.conf.task_routes = {"app.reports.*": {"queue": "reports"}, "app.mail": "mail"}
    try:
        with pytest.raises(QueueNotAllowed, match="'attacker'") as caught:
            replay_dead_letter(app, runtime, dead_letter_id=letter_id, queue="attacker")
        assert "(allowed: celery, mail, reports, urgent)" in caught.value.message
        assert_nothing_happened(runtime, broker, letter_id)
        assert declared_queues(app, runtime.settings) == {"celery", "urgent", "reports", "mail"}
        # the dead letter's own queue is always allowed, even when nothing declares it
        own = seed(runtime, "orig-2", queue="legacy", options={"routing_key": "legacy"})
        replay_dead_letter(app, runtime, dead_letter_id=own, queue="legacy")
        replay_dead_letter(app, runtime, dead_letter_id=letter_id, queue="reports")
    finally:
        runtime_for(app).close()
        app.close()
    assert [r[0] for r in replay_rows(runtime)] == [own, letter_id]


@pytest.mark.parametrize(
    "edits, error, code",
    [
        ({"kwargs": {"deep": json.loads("[" * 40 + "]" * 40)}}, EditTooDeep, "edit_too_deep"),
        ({"args": ["x" * 300_000]}, EditTooLarge, "edit_too_large"),
    ],
)
def test_edits_past_the_size_and_depth_limits_are_refused(
    app: Celery, runtime: Runtime, broker: Broker, edits: dict[str, Any], error: type[Exception], code: str
) -> None:
    letter_id = seed(runtime, "orig-1")
    with pytest.raises(error) as caught:
        replay_dead_letter(app, runtime, dead_letter_id=letter_id, **edits)
    assert isinstance(caught.value, InvalidReplayEdit) and caught.value.code == code
    assert_nothing_happened(runtime, broker, letter_id)


def test_the_limits_are_settings_counted_in_levels_and_bytes_of_canonical_json() -> None:
    check_edits(args=[[[1]]], kwargs={"a": {"b": 1}}, max_bytes=100, max_depth=3)
    with pytest.raises(EditTooDeep, match="deeper than 2"):
        check_edits(args=[[[1]]], max_bytes=100, max_depth=2)
    check_edits(kwargs={"a": "é"}, max_bytes=len('{"a":"é"}'.encode()), max_depth=1)
    with pytest.raises(EditTooLarge, match="10 bytes"):
        check_edits(kwargs={"a": "é"}, max_bytes=9, max_depth=1)
    deep: Any = []
    for _ in range(100_000):  # far past Python's recursion limit: the depth check does not recurse
        deep = [deep]
    with pytest.raises(EditTooDeep):
        check_edits(args=deep, max_bytes=10**9, max_depth=90)


def test_an_idempotency_key_with_the_jobs_prefix_is_refused(app: Celery, runtime: Runtime, broker: Broker) -> None:
    letter_id = seed(runtime, "orig-1")
    with pytest.raises(ReservedIdempotencyKey, match="replay-job:"):
        replay_dead_letter(app, runtime, dead_letter_id=letter_id, idempotency_key="replay-job:1:1")
    assert_nothing_happened(runtime, broker, letter_id)


def test_a_replay_is_audited_with_the_digest_and_a_redacted_diff_of_its_edits(
    app: Celery, runtime: Runtime, broker: Broker
) -> None:
    letter_id = seed(runtime, "orig-1")
    kwargs = {"password": "pw-typed-by-the-operator-1", "amount": 12, "note": "Bearer sk-typedTypedTyped0123456789"}
    result = replay_dead_letter(
        app, runtime, dead_letter_id=letter_id, args=[8, {"token": REDACTED}], kwargs=kwargs, actor="ops-key"
    )
    (event,) = audit_rows(runtime)
    assert (event.actor, event.action, event.target_type, event.target_id) == (
        "ops-key",
        "dead_letter.replay",
        "dead_letter",
        str(letter_id),
    )
    edits = event.detail.pop("edits")
    assert event.detail == {"task_id": result.task_id, "task_name": "app.charge", "queue": "celery", "forced": False}
    canonical = json.dumps({"args": [8, {"token": REDACTED}], "kwargs": kwargs}, sort_keys=True, separators=(",", ":"))
    assert edits["sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert edits["truncated"] == 0
    assert sorted(edits["changes"], key=lambda c: c["path"]) == [
        {"path": "args[0]", "op": "changed", "from": 7, "to": 8},
        {"path": "kwargs.amount", "op": "changed", "from": 10, "to": 12},
        {"path": "kwargs.note", "op": "added", "to": "Bearer [REDACTED]"},
        {"path": "kwargs.password", "op": "changed", "from": REDACTED, "to": REDACTED},
    ]
    stored = json.dumps(event.detail) + json.dumps(edits)
    assert "pw-typed" not in stored and "sk-typed" not in stored and PASSWORD not in stored
    broker.messages()


def test_a_replay_without_edits_and_a_repeated_request_are_audited_once(
    app: Celery, runtime: Runtime, broker: Broker
) -> None:
    letter_id = seed(runtime, "orig-1")
    replay_dead_letter(app, runtime, dead_letter_id=letter_id, idempotency_key="k1", actor="cli:alice")
    again = replay_dead_letter(app, runtime, dead_letter_id=letter_id, idempotency_key="k1", actor="cli:alice")
    assert again.repeated
    (event,) = audit_rows(runtime)  # the repeat published nothing and did nothing
    assert "edits" not in event.detail and event.actor == "cli:alice"
    assert len(broker.messages()) == 1

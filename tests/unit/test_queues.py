"""RabbitMQ queues and the broker's own dead letters, without a broker: the queue arguments each
setting gives, and a dead-lettered Celery message recorded as a replayable dead letter (secrets
sealed, once), on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from error_handling.persistence.models import DeadLetterRecord, FailedAttempt
from error_handling.sealing import generate_key
from function_runner.app import broker_options
from function_runner.broker import queues
from function_runner.migrate import upgrade
from function_runner.runtime import Runtime
from function_runner.settings import Settings

AMQP = "amqp://guest:guest@127.0.0.1:5672//"


def settings(tmp_path: Path, **overrides: object) -> Settings:
    values = {
        "data_dir": tmp_path,
        "database_url": f"sqlite:///{tmp_path / 'q.sqlite3'}",
        "broker_url": AMQP,
        "encryption_key": generate_key(),
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


def test_queues_dead_letter_to_our_exchange_and_are_quorum_on_request(tmp_path: Path) -> None:
    classic = broker_options(settings(tmp_path))
    (queue,) = classic["task_queues"]
    assert (queue.name, queue.queue_arguments) == ("celery", {"x-dead-letter-exchange": queues.DEAD_EXCHANGE})
    quorum = broker_options(settings(tmp_path, queue_type="quorum", broker_delivery_limit=5))
    assert quorum["task_queues"][0].queue_arguments == {
        "x-dead-letter-exchange": queues.DEAD_EXCHANGE,
        "x-queue-type": "quorum",
        "x-delivery-limit": 5,
    }
    assert quorum["broker_transport_options"] == {"confirm_publish": True}
    assert "task_queues" not in broker_options(settings(tmp_path, broker_url="redis://127.0.0.1:6379/0"))


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    config = settings(tmp_path)
    upgrade(config.effective_database_url)
    made = Runtime(config)
    yield made
    made.close()


def dead_message(task_id: str = "t-1") -> tuple[list[object], dict[str, object], dict[str, object]]:
    body: list[object] = [["report.pdf"], {"api_key": "sk-live-0123456789abcdefghijkl"}, {}]
    headers: dict[str, object] = {
        "lang": "py",
        "task": "app.render",
        "id": task_id,
        "root_id": task_id,
        "parent_id": None,
        "retries": 0,
        "timelimit": [None, None],
        "tenant": "acme",
        "x-delivery-count": 3,
        "x-death": [{"count": 1, "reason": "delivery_limit", "queue": "celery", "exchange": "celery"}],
    }
    return body, headers, {"routing_key": "celery", "exchange": queues.DEAD_EXCHANGE}


def test_a_message_the_broker_dead_lettered_becomes_a_replayable_dead_letter_once(runtime: Runtime) -> None:
    body, headers, delivery = dead_message()
    assert queues._record(runtime, body, headers, delivery) == "t-1"
    queues._record(runtime, body, headers, delivery)  # collected twice (an ack was lost): recorded once
    with runtime.sessions() as session:
        (letter,) = session.execute(sa.select(DeadLetterRecord)).scalars()
        (attempt,) = session.execute(sa.select(FailedAttempt)).scalars()
    assert (letter.task_id, letter.task_name, letter.reason, letter.replayable) == (
        "t-1",
        "app.render",
        "broker_dead_lettered",
        True,
    )
    assert "delivery_limit" in (letter.message or "") and "'celery'" in (letter.message or "")
    assert letter.args == ["report.pdf"] and letter.headers == {"tenant": "acme"}
    assert "sk-live-0123456789abcdefghijkl" not in str(letter.kwargs)  # sealed, not in clear
    assert attempt.started_at is None and attempt.category == "permanent"


def test_a_message_that_is_not_a_task_is_refused(runtime: Runtime) -> None:
    with pytest.raises(ValueError, match="not a Celery task message"):
        queues._record(runtime, {"hello": 1}, {"x-death": []}, {})


def test_other_brokers_have_nothing_to_collect(tmp_path: Path) -> None:
    from celery import Celery

    memory = Runtime(settings(tmp_path, broker_url="memory://"))
    assert queues.collect_dead_letters(Celery("x", broker="memory://"), memory) == 0
    memory.close()

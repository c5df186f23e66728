"""``function-runner dlq replay-all`` / ``replay-status`` on SQLite and the in-memory broker: a dry run
publishes nothing; a job is created, followed with ``--wait`` while a real dispatcher (in a thread)
processes it, and every matching dead letter is read back from the broker once."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator

import pytest
from celery import Celery

from function_runner.app import create_app
from function_runner.dispatch.dispatcher import Dispatcher
from function_runner.runtime import runtime_for
from function_runner.settings import Settings
from function_runner.wrapper import headers as H
from tests.unit.test_cli_dlq import env, published, reader, run, seed

__all__ = ["env", "reader"]


@pytest.fixture
def dispatcher(env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Dispatcher]:
    """A real dispatcher on the CLI's database and broker, running in a thread."""
    monkeypatch.setenv("FUNCTION_RUNNER_DISPATCHER_INTERVAL", "0.05")
    monkeypatch.setenv("FUNCTION_RUNNER_DISPATCHER_BATCH_SIZE", "2")
    app: Celery = create_app(Settings(), main="fr_cli_bulk_dispatcher")
    running = Dispatcher(app)
    thread = threading.Thread(target=running.run_forever, daemon=True)
    thread.start()
    yield running
    running.stop()
    thread.join(timeout=10)
    assert not thread.is_alive()
    runtime_for(app).close()
    app.close()


def test_replay_all_dry_run_publishes_nothing(env: str, reader: Celery) -> None:
    first = seed(env, "t1")
    seed(env, "t2", minutes=1)
    code, stdout, _ = run("replay-all", "--dry-run", "--json", "--sample", "1")
    assert code == 0, stdout
    preview = json.loads(stdout)
    assert (preview["count"], [item["id"] for item in preview["sample"]]) == (2, [first])
    code, stdout, _ = run("replay-all", "--dry-run", "--task", "nope")
    assert code == 0 and "0 pending dead letters match" in stdout
    assert published(reader) == []
    code, stdout, _ = run("replay-status", "1")
    assert code == 1  # no job was created


def test_replay_all_waits_for_the_dispatcher_to_publish_each_once(
    env: str,
    reader: Celery,
    dispatcher: Dispatcher,
) -> None:
    letters = [seed(env, f"t{i}", minutes=i) for i in range(5)]
    code, stdout, stderr = run("replay-all", "--wait", "--timeout", "30", "--json")
    assert code == 0, stderr
    job = json.loads(stdout)
    assert (job["status"], job["total"], job["published"]) == ("done", 5, 5)
    assert Counter(int(m.headers[H.REPLAY_OF]) for m in published(reader)) == Counter(letters)

    code, stdout, _ = run("replay-status", str(job["id"]))
    assert code == 0 and "done, 5/5 published" in stdout
    code, _, stderr = run("replay-all", "--rate", "0")
    assert code == 2 and "Traceback" not in stderr

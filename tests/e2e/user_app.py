"""A user's own Celery app, configured by its owner, that only adds ``install(app)``: what the quick
start describes. Its broker is ``FR_TEST_USER_BROKER_URL``; every other Celery setting is Celery's
default (visibility timeout 1 h, prefetch multiplier 4); function-runner's settings come from the
environment. Task bodies write their ground truth to ``FR_TEST_STATE_URL``."""

from __future__ import annotations

import os
import threading
import time

from celery import Celery

from error_handling.exceptions import TransientError
from function_runner.app import install
from function_runner.wrapper.task import RecoverableTask
from tests.support.ground_truth import state

app = Celery("user_app", broker=os.environ["FR_TEST_USER_BROKER_URL"])
app.conf.update(worker_send_task_events=False, task_serializer="json", accept_content=["json"])
install(app)


@app.task(base=RecoverableTask, bind=True, name="user.hold")
def hold(self: RecoverableTask, seconds: float, release: str | None = None) -> str:
    """Counts its starts (``started:<id>``, the time of the last in ``started_at:<id>``), signals
    ``running:<id>``, holds ``seconds`` or until the key ``release`` exists, and counts its finishes
    (``finished:<id>``, the time of the last in ``finished_at:<id>``)."""
    task_id = self.request.id
    state().incr(f"started:{task_id}")
    state().set(f"started_at:{task_id}", time.time())
    state().set(f"running:{task_id}", os.getpid())
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (release and state().exists(release)):
        threading.Event().wait(timeout=0.05)
    state().set(f"finished_at:{task_id}", time.time())
    state().incr(f"finished:{task_id}")
    return "done"


@app.task(base=RecoverableTask, bind=True, name="user.flaky")
def flaky(self: RecoverableTask) -> str:
    """Fails transiently on its first start (a scheduled retry), then succeeds; counts its successes."""
    if state().incr(f"started:{self.request.id}") == 1:
        raise TransientError("upstream 503", reason="service_unavailable", retry_after=0.1)
    state().incr(f"finished:{self.request.id}")
    return "ok"


@app.task(base=RecoverableTask, bind=True, name="user.count")
def count(self: RecoverableTask) -> str:
    """Succeeds and counts its finishes."""
    state().incr(f"finished:{self.request.id}")
    return "ok"

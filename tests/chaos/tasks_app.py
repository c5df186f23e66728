"""The Celery app the chaos suite runs in real ``celery worker`` processes.

One task, ``chaos.job``, does what the run asks of it: succeed, fail transiently a given number of
times, wait for the ``chaos-disk`` gate, fail validation, or fail permanently until its batch is
fixed. It may make a side effect first: a charge with an idempotency key, recorded as a compensation
step whose undo (a refund) is applied by an idempotent "payment service" once per key.

Everything the task really did is written to the ground-truth Redis (``FR_TEST_STATE_URL``, not the
broker, which the suite restarts), so the suite can compare it with what function-runner recorded:

- ``starts:{id}``: how many times the body started;
- ``raised:{id}``: the attempt numbers in which the body raised;
- ``ok`` (a set of task ids) and ``oks:{id}``: the body finished successfully (how many times);
- ``charges:{id}`` / ``refunds:{id}``: charges and refunds the payment service applied for the task
  (each at most once per idempotency key, as such a service does), ``refund-calls:{key}``: how many
  times an undo asked for a refund.
"""

from __future__ import annotations

import threading
from typing import Any

from error_handling.exceptions import PermanentError, ResourceError, TransientError, ValidationError
from function_runner.app import create_app
from function_runner.gates import CallableProbe, Gate
from function_runner.settings import Settings
from function_runner.wrapper.task import RecoverableTask
from tests.support.ground_truth import state


def disk_has_room() -> bool:
    """The probe of the ``chaos-disk`` gate: the suite frees the disk at a moment of its choosing."""
    return bool(state().get("disk-free"))


app = create_app(
    Settings(),
    main="fr_chaos",
    gates=[Gate("chaos-disk", probe=CallableProbe(disk_has_room, "the disk has room"))],
)
app.conf.update(worker_send_task_events=False, broker_pool_limit=4)


def refund(data: dict[str, Any], idempotency_key: str) -> None:
    """The undo of a charge: the payment service refunds once per idempotency key."""
    client = state()
    client.incr(f"refund-calls:{idempotency_key}")
    if client.set(f"refunded:{idempotency_key}", 1, nx=True):
        client.incr(f"refunds:{data['task']}")


def charge(task_id: str, key: str) -> None:
    """The side effect: the payment service charges once per idempotency key."""
    client = state()
    if client.set(f"charged:{key}", 1, nx=True):
        client.incr(f"charges:{task_id}")


@app.task(base=RecoverableTask, bind=True, name="chaos.job")
def job(
    self: RecoverableTask, kind: str, *, fails: int = 0, batch: str = "", pays: bool = False, work: float = 0.0
) -> str:
    """Do what ``kind`` says (see the module's docstring); ``work`` seconds of work first."""
    task_id, attempt = str(self.request.id), self.attempt
    client = state()
    client.incr(f"starts:{task_id}")
    if pays:
        key = f"charge:{task_id}"
        charge(task_id, key)
        self.compensation.record_operation("charge", undo=refund, data={"task": task_id}, idempotency_key=key)
    if work:
        threading.Event().wait(work)
    error: Exception | None = None
    if kind == "transient" and attempt <= fails:
        error = TransientError(f"upstream 503 on attempt {attempt}", reason="service_unavailable", retry_after=0.2)
    elif kind == "resource" and not disk_has_room():
        error = ResourceError("[Errno 28] No space left on device", resource="chaos-disk", reason="disk_full")
    elif kind == "validation":
        error = ValidationError("amount must be positive", user_message="The amount must be positive.")
    elif kind == "permanent" and not client.get(f"fixed:{batch}"):
        error = PermanentError(f"order rejected by the upstream [{batch}]", reason="not_found")
    if error is not None:
        client.sadd(f"raised:{task_id}", attempt)
        raise error
    client.incr(f"oks:{task_id}")
    client.sadd("ok", task_id)
    return "ok"

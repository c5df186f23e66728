"""The Celery app the end-to-end tests run in real ``celery worker`` processes.

Its settings come from the environment the test gives the worker (database, broker, policy). Each
task records its own ground truth in Redis (``FR_TEST_STATE_URL``): how many times its body started,
so tests can compare the database's record with what really happened.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from error_handling.exceptions import PermanentError, ResourceError, TransientError, ValidationError
from function_runner.app import create_app
from function_runner.gates import CallableProbe, Gate
from function_runner.settings import Settings
from function_runner.wrapper.task import RecoverableTask
from tests.support.ground_truth import state


def licence_file_present() -> bool:
    """The probe of the ``licence`` gate: the file named by ``FR_TEST_GATE_FILE`` exists."""
    path = os.environ.get("FR_TEST_GATE_FILE")
    return bool(path) and os.path.exists(str(path))


GATES = [
    Gate("licence", probe=CallableProbe(licence_file_present, "licence file present")),
    Gate("slot", capacity=2),
]

app = create_app(Settings(), main="fr_e2e", gates=GATES)
# a test may raise the pool limit: Flower inspects the workers on several threads at once while its
# events thread starts, and four connections are not enough for both (its events never arrive)
app.conf.update(worker_send_task_events=False, broker_pool_limit=int(os.environ.get("FR_TEST_BROKER_POOL_LIMIT", "4")))


def started(task: RecoverableTask) -> int:
    """Count a start of this task's body; return how many starts so far."""
    return int(state().incr(f"started:{task.request.id}"))


@app.task(base=RecoverableTask, bind=True, name="e2e.flaky")
def flaky(self: RecoverableTask, fail_times: int, api_key: str | None = None) -> str:
    """Fails transiently ``fail_times`` times, then succeeds."""
    n = started(self)
    if n <= fail_times:
        raise TransientError(f"upstream 503 on start {n} key={api_key}", reason="service_unavailable", retry_after=0.1)
    return "ok"


@app.task(base=RecoverableTask, bind=True, name="e2e.needs_gpu")
def needs_gpu(self: RecoverableTask) -> str:
    """Waits (as a resource failure) until the test sets the ``gpu-free`` key."""
    started(self)
    if not state().get("gpu-free"):
        raise ResourceError("CUDA out of memory", resource="gpu", reason="gpu_unavailable")
    return "rendered"


@app.task(base=RecoverableTask, bind=True, name="e2e.validate")
def validate(self: RecoverableTask, amount: Any) -> str:
    """Fails validation."""
    started(self)
    raise ValidationError(f"amount must be positive, got {amount!r}", user_message="Amount must be positive.")


@app.task(base=RecoverableTask, bind=True, name="e2e.permanent")
def permanent(self: RecoverableTask, password: str | None = None, note: str = "") -> str:
    """Fails permanently."""
    started(self)
    raise PermanentError(f"credentials revoked ({note})", reason="auth_failed")


@app.task(base=RecoverableTask, bind=True, name="e2e.slow_then")
def slow_then(self: RecoverableTask, outcome: str) -> str:
    """On its first start, signals and blocks (to be killed); afterwards succeeds or fails per ``outcome``."""
    n = started(self)
    if n == 1:
        state().set(f"running:{self.request.id}", os.getpid())
        threading.Event().wait(timeout=120)  # blocks until the test kills this process
    if outcome == "permanent":
        raise PermanentError("failed after the crash")
    return "survived"


@app.task(base=RecoverableTask, bind=True, name="e2e.transient_once_then_ok")
def transient_once_then_ok(self: RecoverableTask, retry_after: float) -> str:
    """Fails once with a retry hint of ``retry_after`` seconds, then succeeds."""
    n = started(self)
    if n == 1:
        raise TransientError("rate limited", reason="rate_limited", retry_after=retry_after)
    return "ok"


@app.task(base=RecoverableTask, bind=True, name="e2e.retried_then_held")
def retried_then_held(self: RecoverableTask) -> str:
    """Fails transiently on its first start; on its second, signals ``running:<task id>``, waits until
    the test sets ``go:<task id>`` and fails permanently."""
    n = started(self)
    if n == 1:
        raise TransientError("upstream 503", reason="service_unavailable", retry_after=0.1)
    state().set(f"running:{self.request.id}", os.getpid())
    while not state().get(f"go:{self.request.id}"):
        threading.Event().wait(timeout=0.05)
    raise PermanentError("upstream rejects the request", reason="not_found")


@app.task(base=RecoverableTask, bind=True, name="e2e.count")
def count(self: RecoverableTask) -> str:
    """Counts its starts and succeeds (for duplicate-dispatch tests)."""
    started(self)
    return "ok"


@app.task(base=RecoverableTask, bind=True, name="e2e.fails_until_fixed")
def fails_until_fixed(self: RecoverableTask, order: str, api_key: str | None = None) -> str:
    """Fails permanently until the test sets the ``fixed`` key (the cause is fixed); then records, under
    ``done:<task id>``, the arguments it was given, and succeeds."""
    started(self)
    if not state().get("fixed"):
        raise PermanentError(f"upstream rejects order {order}", reason="not_found")
    state().hset(f"done:{self.request.id}", mapping={"order": order, "api_key": api_key or ""})
    return "fixed"


def undo_effect(data: dict[str, Any], idempotency_key: str) -> None:
    """An undo: counts its runs, blocks on its first run when asked (to be killed), then applies its
    effect once per idempotency key, appending the step to ``undone:<saga>`` in order."""
    runs = int(state().incr(f"undo-runs:{idempotency_key}"))
    if data.get("block") and runs == 1:
        state().set(f"undoing:{idempotency_key}", os.getpid())
        threading.Event().wait(timeout=120)  # blocks until the test kills this process
    if state().set(f"undo-applied:{idempotency_key}", 1, nx=True):
        state().rpush(f"undone:{data['saga']}", data["step"])


def undo_until_fixed(data: dict[str, Any]) -> None:
    """An undo whose remote side refuses it until the test sets ``undo-fixed``."""
    if not state().get("undo-fixed"):
        raise ValueError("refund rejected: account frozen")
    state().rpush(f"undone:{data['saga']}", data["step"])


@app.task(base=RecoverableTask, bind=True, name="e2e.books_three")
def books_three(self: RecoverableTask, block_step: int = 0, undo: str = "effect") -> str:
    """Records three compensation steps (their effects made), then fails validation."""
    started(self)
    saga = self.compensation.saga_id
    undo_fn = undo_effect if undo == "effect" else undo_until_fixed
    for step in (1, 2, 3):
        data = {"saga": saga, "step": step, "password": "pw-compensation-canary-3141"}
        if step == block_step:
            data["block"] = True
        self.compensation.record_operation(f"step-{step}", undo=undo_fn, data=data)
    raise ValidationError("the booking is invalid", user_message="We could not book this.")


@app.task(base=RecoverableTask, bind=True, name="e2e.saga_step")
def saga_step(self: RecoverableTask, previous: Any, step: int, fail: bool) -> int:
    """One task of a chain: records a step, then dead-letters when ``fail``."""
    started(self)
    with self.compensation.operation(
        f"step-{step}", undo=undo_effect, data={"saga": self.compensation.saga_id, "step": step}
    ):
        state().rpush(f"done:{self.compensation.saga_id}", step)
    if fail:
        raise PermanentError(f"step {step} rejected", reason="not_found")
    return step


@app.task(base=RecoverableTask, bind=True, name="e2e.needs_licence")
def needs_licence(self: RecoverableTask) -> str:
    """Parks on the ``licence`` gate until the test creates the gate's file."""
    started(self)
    if not licence_file_present():
        raise ResourceError("licence server busy", resource="licence", reason="licence_unavailable")
    state().incr("licensed")
    return "licensed"


_TRACK_MAX = """
local now = redis.call('INCR', KEYS[1])
local seen = tonumber(redis.call('GET', KEYS[2]) or '0')
if now > seen then redis.call('SET', KEYS[2], now) end
return now
"""


@app.task(base=RecoverableTask, bind=True, name="e2e.uses_slot", resources={"slot": 1})
def uses_slot(self: RecoverableTask) -> str:
    """Holds one unit of the ``slot`` gate (capacity 2) for a moment; records how many held it at once."""
    started(self)
    state().eval(_TRACK_MAX, 2, "slot:holding", "slot:max")
    try:
        threading.Event().wait(0.4)  # the work done while holding the unit
    finally:
        state().decr("slot:holding")
    state().incr("slot:done")
    return "ok"


@app.task(base=RecoverableTask, bind=True, name="e2e.retried_booking", compensate_on="every_failure")
def retried_booking(self: RecoverableTask) -> str:
    """Holds a seat and sends a notice (nothing to undo) on each attempt; the first attempt then fails
    transiently, so its hold is undone before the retry."""
    n = started(self)
    saga = self.compensation.saga_id
    self.compensation.record_operation("hold", undo=undo_effect, data={"saga": saga, "step": n})
    self.compensation.record_operation("notify", undo=None, data={"sent": n})
    if n == 1:
        raise TransientError("seat service 503", reason="service_unavailable", retry_after=0.1)
    return "booked"


def _ask(url: str, prompt: str) -> str:
    """One call of a (fake) provider at ``url``, the way the providers' SDKs make it."""
    import httpx

    response = httpx.post(url, json={"prompt": prompt}, timeout=5)
    response.raise_for_status()
    return str(response.json()["answer"])


@app.task(base=RecoverableTask, bind=True, name="e2e.chat")
def chat(self: RecoverableTask, prompt: str, urls: list[str], degraded: bool = False) -> dict[str, Any]:
    """Asks the providers at ``urls`` in order through a fallback chain (each named ``p<i>``)."""
    from function_runner.resilience.fallbacks import Provider
    from function_runner.runtime import runtime_for

    started(self)
    providers = [Provider(f"e2e-p{i}", lambda p, url=url: _ask(url, p)) for i, url in enumerate(urls)]
    chain = runtime_for(app).fallbacks.chain(
        "e2e-chat",
        providers,
        degraded=(lambda p: f"cached answer to {p}") if degraded else None,
    )
    answer = chain.call(prompt)
    result = {"value": answer.value, "provider": answer.provider, "degraded": answer.degraded}
    state().set(f"result:{self.request.id}", json.dumps(result))
    return result


@app.task(base=RecoverableTask, bind=True, name="e2e.ask_budgeted", retry_budget="e2e-down")
def ask_budgeted(self: RecoverableTask, url: str) -> str:
    """One call of the provider at ``url``; its retries are limited by the ``e2e-down`` budget."""
    started(self)
    return _ask(url, "hello")


@app.task(base=RecoverableTask, bind=True, name="e2e.ask_guarded", breaker="e2e-llm")
def ask_guarded(self: RecoverableTask, url: str) -> str:
    """One call of the provider at ``url`` behind the ``e2e-llm`` circuit breaker."""
    started(self)
    return _ask(url, "hello")


def _die(how: str) -> None:
    """End this pool process the way real crashes do."""
    import signal

    if how == "exit":
        os._exit(1)  # a C extension's abort, sys.exit in a library: no exception, no cleanup
    os.kill(os.getpid(), signal.SIGKILL)  # the OOM killer, an operator's kill -9


@app.task(base=RecoverableTask, bind=True, name="e2e.poison")
def poison(self: RecoverableTask, how: str, after: float = 0.05) -> str:
    """Kills its own pool process ``after`` seconds into every start until the test sets the
    ``poison-fixed`` key."""
    started(self)
    if not state().get("poison-fixed"):
        if after:
            threading.Event().wait(after)
        _die(how)
    state().set(f"succeeded:{self.request.id}", 1)
    return "fixed"


@app.task(base=RecoverableTask, bind=True, name="e2e.killed_once", retry_budget="e2e-kill")
def killed_once(self: RecoverableTask) -> str:
    """SIGKILLs its own pool process on its first start, then succeeds (its retries would draw on
    the ``e2e-kill`` budget)."""
    if started(self) == 1:
        threading.Event().wait(0.05)
        _die("sigkill")
    return "ok"


@app.task(base=RecoverableTask, bind=True, name="e2e.chaotic")
def chaotic(self: RecoverableTask, crash: float, fail: float) -> str:
    """On each start: dies (at once or mid-run) with probability ``crash``, fails transiently with
    probability ``fail``, else succeeds (and says so in the ground truth)."""
    import random

    started(self)
    roll = random.random()
    if roll < crash:
        threading.Event().wait(random.choice([0, 0.05]))  # at once, or mid-run
        _die(random.choice(["exit", "sigkill"]))
    if roll < crash + fail:
        raise TransientError("upstream 503", reason="service_unavailable", retry_after=0.1)
    state().set(f"succeeded:{self.request.id}", 1)
    return "ok"


@app.task(base=RecoverableTask, bind=True, name="e2e.sleeps")
def sleeps(self: RecoverableTask, seconds: float) -> str:
    """Sleeps (to meet its time limits)."""
    started(self)
    threading.Event().wait(seconds)
    return "slept"


@app.task(base=RecoverableTask, bind=True, name="e2e.own_mark")
def own_mark(self: RecoverableTask) -> None:
    """Says whether this execution's start mark is in the worker's shared memory."""
    from function_runner.wrapper import start_marks

    marks = start_marks.marks
    found = marks is not None and marks.map.find(marks.digest(str(self.request.id))) != -1
    state().set(f"marked:{self.request.id}", int(found))


@app.task(base=RecoverableTask, bind=True, name="e2e.counts_retries")
def counts_retries(self: RecoverableTask, fail_times: int, api_key: str | None = None) -> str:
    """Notes ``self.request.retries`` on each start; fails transiently ``fail_times`` times with the
    key in its message, then succeeds."""
    n = started(self)
    state().rpush(f"retries:{self.request.id}", self.request.retries)
    if n <= fail_times:
        raise TransientError(f"upstream 503 with key={api_key}", reason="service_unavailable", retry_after=0.1)
    state().set(f"succeeded:{self.request.id}", 1)
    return "ok"


class LeakyClientError(Exception):
    """An error of a client library whose constructor needs more than a message."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


@app.task(base=RecoverableTask, bind=True, name="e2e.leaks_key")
def leaks_key(self: RecoverableTask, api_key: str) -> str:
    """Fails for good with the key in its message, in its cause, and in a note."""
    started(self)
    try:
        raise LeakyClientError(f"401 from upstream, Authorization: Bearer {api_key}", status=401)
    except LeakyClientError as cause:
        error = PermanentError(f"rejected key {api_key}", reason="auth_failed")
        error.add_note(f"called with api_key={api_key}")
        raise error from cause


class _Unprintable(PermanentError):
    """An exception whose ``str()`` raises."""

    def __str__(self) -> str:
        raise RuntimeError("__str__ is broken")


@app.task(base=RecoverableTask, bind=True, name="e2e.refused")
def refused(self: RecoverableTask, how: str, *args: Any, **kwargs: Any) -> str:
    """Fails with a value the database refuses (``how``; the rest is carried in the message), unless
    the test set ``refused-fixed``: ``invalid`` (a ValidationError; the refused values are in the
    args), ``nul_message`` (NUL in the message and so the traceback), ``surrogate_message``, ``long_reason``
    and ``long_resource`` (an application reason or resource longer than its column), ``unprintable``
    (``str()`` of the exception raises), ``marked`` (the traceback holds a marker a test's trigger
    refuses), ``once`` (fails transiently on its first attempt only), ``die`` (kills its pool process)."""
    started(self)
    if how == "once" and self.attempt > 1:
        return "retried"
    if how == "once":
        raise TransientError("upstream 503", reason="service_unavailable", retry_after=0.1)
    if state().get("refused-fixed"):
        state().set(f"args:{self.request.id}", json.dumps([how, list(args), kwargs]))
        state().set(f"succeeded:{self.request.id}", 1)
        return "fixed"
    if how == "die":
        threading.Event().wait(0.05)
        _die("sigkill")
    if how == "nul_message":
        raise ValidationError("abc\x00def")
    if how == "surrogate_message":
        raise ValidationError("abc\ud800def")
    if how == "long_reason":
        raise PermanentError("an application failure", reason="r" * 200)
    if how == "long_resource":
        raise ResourceError("no such resource", resource="s" * 200, reason="resource_unavailable")
    if how == "unprintable":
        raise _Unprintable()
    if how == "marked":
        raise PermanentError("REFUSED-BY-TRIGGER")
    raise ValidationError("invalid input")


# --- diagnosis: what a retry cannot fix, what waits, what a provider says -----------------------------


@app.task(base=RecoverableTask, bind=True, name="e2e.summarise_bug")
def summarise_bug(self: RecoverableTask, document: Any = None) -> Any:
    """A bug: reads an attribute of None (a retry would run the same code again)."""
    started(self)
    return document.text.split()


@app.task(base=RecoverableTask, bind=True, name="e2e.validate_order")
def validate_order(self: RecoverableTask, order: dict[str, Any]) -> int:
    """Malformed input: pydantic refuses the order."""
    import pydantic

    class Order(pydantic.BaseModel):
        quantity: int

    started(self)
    return Order.model_validate(order).quantity


@app.task(base=RecoverableTask, bind=True, name="e2e.pool_starved")
def pool_starved(self: RecoverableTask) -> str:
    """Needs a database connection from a pool of one that the test's other connection holds, until the
    test sets ``pool-free``: SQLAlchemy's real ``QueuePool limit ... reached`` timeout."""
    import sqlalchemy as sa

    started(self)
    if state().get("pool-free"):
        return "connected"
    engine = sa.create_engine(os.environ["FUNCTION_RUNNER_DATABASE_URL"], pool_size=1, max_overflow=0, pool_timeout=0.2)
    try:
        with engine.connect(), engine.connect():
            return "unreachable"
    finally:
        engine.dispose()


@app.task(base=RecoverableTask, bind=True, name="e2e.model_loading")
def model_loading(self: RecoverableTask, estimated_time: float) -> str:
    """Hugging Face's Inference API while the model loads: 503 with ``estimated_time``, then an answer."""
    import httpx

    if started(self) == 1:
        request = httpx.Request("POST", "https://api-inference.huggingface.co/models/org/model")
        body = {"error": "Model org/model is currently loading", "estimated_time": estimated_time}
        httpx.Response(503, json=body, request=request).raise_for_status()
    return "generated"

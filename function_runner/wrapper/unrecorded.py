"""Failures that could not be recorded yet: kept in Redis until the database is back.

When a task fails while the database is unreachable, the wrapper cannot record the failure, so it
does not ack the message: it gives it back to the broker (invariant 1). Without more, the redelivery
would run the body again, and if that run succeeded (the upstream recovered meanwhile) the first
failure would never be recorded. So before giving the message back the wrapper keeps the failure
report it could not write (message and traceback already redacted, payload sealed: the same form the
database gets) in Redis under ``fr:unrecorded:{task_id}:{attempt}``, for seven days. The redelivery
finds it, records it, and follows its decision (retry, wait, fail fast, dead letter) without running
the body again, exactly as if the database had been there the first time.

The broker can lose the message given back (a Redis broker restarted without persistence, or kombu's
Redis transport dropping a message it popped for a worker that died before it held it). So every kept
failure is also indexed in ``fr:unrecorded:seen`` with the last time a delivery of its message was
seen (kept, or found by a redelivery that could not record it either). The dispatcher publishes a
failure not seen for ``unrecorded_redeliver_after`` seconds again, as a copy of its message marked
``fr_kept`` (:func:`overdue`, ``UnrecordedRole.redeliver``): the copy records it like a
redelivery would. A copy that arrives after the original redelivery recorded it is a duplicate and
is skipped (the attempt is already recorded, or its run already claimed).

This needs the Redis the workers share (``redis_url``, or the broker when it is Redis: the connection
of the shared breakers). Without it, the redelivery runs the body again and records what that run does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import time
from typing import TYPE_CHECKING, Any

import redis

from error_handling.categories import Category
from error_handling.classification import Classification
from error_handling.persistence.reports import FailureReport, TaskPayload
from function_runner.events import log_event

if TYPE_CHECKING:
    from function_runner.services import SharedState

__all__ = [
    "SEEN",
    "TTL",
    "Kept",
    "UnrecordedFailure",
    "decode",
    "encode",
    "forget",
    "keep",
    "overdue",
    "overdue_again",
    "take",
]

#: How long an unrecorded failure is kept (seconds): as long as the delivery counters.
TTL = 7 * 24 * 3600
#: The sorted set of kept failures (``{task_id}:{attempt}``) by when a delivery of theirs was last seen.
SEEN = "fr:unrecorded:seen"

# Take the members last seen at or before ARGV[1] (at most ARGV[3]) and mark them seen at ARGV[2], in
# one step, so that two dispatchers never publish the same failure again at once.
_CLAIM_OVERDUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(due) do
    redis.call('ZADD', KEYS[1], ARGV[2], member)
end
return due
"""


class UnrecordedFailure(Exception):
    """Stands for a failure that happened while the database was unreachable, on the delivery that
    records it (the original exception object is gone; its classification was kept)."""

    @classmethod
    def of(cls, classification: Classification) -> UnrecordedFailure:
        """The stand-in for the failure classified as ``classification``."""
        return cls(f"{classification.exc_type or 'error'}: {classification.message}")


@dataclasses.dataclass(frozen=True)
class Kept:
    """A kept failure and what is needed to publish its message again.

    Attributes:
        report: the failure report the database could not take.
        token: the dispatch token of the scheduled run the failed execution came from, if any (the copy
            must carry it to claim that run).
    """

    report: FailureReport
    token: str | None = None


def _member(task_id: str, attempt: int) -> str:
    return f"{task_id}:{attempt}"


def _key(task_id: str, attempt: int) -> str:
    return _key_of(_member(task_id, attempt))


def _key_of(member: str) -> str:
    """The key of the kept failure that ``member`` of :data:`SEEN` indexes."""
    return f"fr:unrecorded:{member}"


def encode(report: FailureReport, *, token: str | None = None) -> str:
    """The report (and the run's dispatch token, if any) as JSON."""
    fields = dataclasses.asdict(report)
    fields["classification"]["category"] = report.classification.category.value
    for name in ("failed_at", "started_at"):
        moment = fields[name]
        fields[name] = moment.isoformat() if moment is not None else None
    if token is not None:
        fields["token"] = token
    return json.dumps(fields, separators=(",", ":"))


def decode(text: str | bytes) -> FailureReport:
    """The report from :func:`encode`'s JSON."""
    return _decode_kept(text).report


def _decode_kept(text: str | bytes) -> Kept:
    fields: dict[str, Any] = json.loads(text)
    token = fields.pop("token", None)
    classification = fields.pop("classification")
    classification["category"] = Category(classification["category"])
    payload = fields.pop("payload")
    for name in ("failed_at", "started_at"):
        if fields[name] is not None:
            fields[name] = dt.datetime.fromisoformat(fields[name])
    report = FailureReport(classification=Classification(**classification), payload=TaskPayload(**payload), **fields)
    return Kept(report, token=str(token) if token is not None else None)


def _client(shared: SharedState) -> Any | None:
    try:
        return shared.shared_redis.require()
    except RuntimeError:  # no Redis
        return None


def keep(shared: SharedState, report: FailureReport, *, token: str | None = None) -> bool:
    """Keep a failure the database could not take; False if there is nowhere to keep it. ``token``:
    the dispatch token of the run the execution came from."""
    client = _client(shared)
    if client is None:
        return False
    try:
        pipe = client.pipeline(transaction=True)
        pipe.set(_key(report.task_id, report.attempt), encode(report, token=token), ex=TTL)
        pipe.zadd(SEEN, {_member(report.task_id, report.attempt): time.time()})
        pipe.execute()
    except (redis.RedisError, TypeError, ValueError) as problem:
        log_event("failure.keep_failed", level=logging.WARNING, task_id=report.task_id, error=type(problem).__name__)
        return False
    return True


def take(shared: SharedState, task_id: str, attempt: int) -> FailureReport | None:
    """The failure kept for ``(task_id, attempt)``, if any (it stays kept until :func:`forget`). A
    redelivery calls it: its message is marked seen now, so the dispatcher does not publish it again."""
    client = _client(shared)
    if client is None:
        return None
    try:
        pipe = client.pipeline(transaction=False)
        pipe.get(_key(task_id, attempt))
        pipe.zadd(SEEN, {_member(task_id, attempt): time.time()}, xx=True)
        text, _ = pipe.execute()
    except redis.RedisError as problem:
        log_event("failure.lookup_failed", level=logging.WARNING, task_id=task_id, error=type(problem).__name__)
        return None
    if text is None:
        return None
    try:
        return decode(text)
    except (ValueError, TypeError, KeyError) as problem:
        log_event("failure.unreadable", level=logging.ERROR, task_id=task_id, error=type(problem).__name__)
        return None


def forget(shared: SharedState, task_id: str, attempt: int) -> None:
    """Drop the kept failure once it is recorded (a leftover is harmless: recording it again is a
    duplicate that writes nothing)."""
    client = _client(shared)
    if client is None:
        return
    try:
        pipe = client.pipeline(transaction=True)
        pipe.delete(_key(task_id, attempt))
        pipe.zrem(SEEN, _member(task_id, attempt))
        pipe.execute()
    except redis.RedisError as problem:
        log_event("failure.forget_failed", level=logging.WARNING, task_id=task_id, error=type(problem).__name__)


def overdue(shared: SharedState, *, unseen_for: float, limit: int = 100, now: float | None = None) -> list[Kept]:
    """Kept failures whose message no delivery has been seen with for ``unseen_for`` seconds (at most
    ``limit``, longest unseen first), marked seen now: the caller publishes their messages again.
    Index entries whose failure is gone (forgotten, or past :data:`TTL`) are dropped.

    Without a shared Redis nothing is kept and this returns nothing.

    Raises:
        redis.RedisError: Redis failed.
    """
    client = _client(shared)
    if client is None:
        return []
    moment = time.time() if now is None else now
    members = client.register_script(_CLAIM_OVERDUE)(keys=[SEEN], args=[moment - unseen_for, moment, limit])
    if not members:
        return []
    names = [m.decode() if isinstance(m, bytes) else str(m) for m in members]
    texts = client.mget([_key_of(name) for name in names])
    found: list[Kept] = []
    gone: list[str] = []
    for name, text in zip(names, texts, strict=True):
        if text is None:
            gone.append(name)
            continue
        try:
            found.append(_decode_kept(text))
        except (ValueError, TypeError, KeyError) as problem:
            log_event("failure.unreadable", level=logging.ERROR, kept=name, error=type(problem).__name__)
    if gone:
        client.zrem(SEEN, *gone)
    return found


def overdue_again(shared: SharedState, kept: list[Kept]) -> None:
    """Make these failures overdue again at once (:func:`overdue` took them but their messages could
    not be published). Best effort: if this fails too, they are overdue again after the usual delay."""
    if not kept:
        return
    client = _client(shared)
    if client is None:
        return
    try:
        client.zadd(SEEN, {_member(k.report.task_id, k.report.attempt): 0 for k in kept}, xx=True)
    except redis.RedisError as problem:
        log_event("failure.overdue_again_failed", level=logging.WARNING, error=type(problem).__name__)

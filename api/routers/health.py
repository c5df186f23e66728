"""``GET /api/v1/errors/health``: database and broker reachable, dispatchers alive, backlog, the
health of the external services called through breakers (calls, success rate, latency, errors), and
the latest retention run (rows deleted per table, dead letters purged).

``status`` is ``ok`` when the database and the broker answer and, if runs are due, a dispatcher is
alive; ``degraded`` when the database answers but the broker does not; ``unavailable`` when the
database does not answer (or is not migrated), or when runs are due and no dispatcher is alive (no
retry will ever be published). The endpoint itself always answers 200, so a load balancer can tell
"degraded" from "down". On a Redis broker it also counts the worker consumers whose liveness is alive
or lapsed and the messages restored from lapsed ones (see ``function_runner.broker.liveness``).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import sqlalchemy as sa
from fastapi import APIRouter, Request
from kombu.exceptions import OperationalError as BrokerError
from kombu.transport import redis as kombu_redis
from pydantic import BaseModel, Field

from api.celery_dep import get_celery
from api.deps import get_engine, get_settings
from error_handling.persistence import heartbeats, retention
from error_handling.persistence.db import UNAVAILABLE_ERRORS
from error_handling.persistence.models import utcnow
from error_handling.persistence.reads import runs, summaries
from function_runner.broker import liveness

router = APIRouter(tags=["health"])

#: A database that is down, or not migrated yet, is reported as unhealthy rather than raised.
_UNHEALTHY: tuple[type[BaseException], ...] = (*UNAVAILABLE_ERRORS, sa.exc.ProgrammingError)
#: How long the broker check may take, in seconds.
BROKER_TIMEOUT = 2.0


#: The window of the services' figures, in minutes.
SERVICES_WINDOW_MINUTES = 15


class ServiceHealthPublic(BaseModel):
    """How the calls of one external service went over the last 15 minutes, across every worker."""

    service: str
    calls: int
    failures: int
    success_rate: float | None
    p50_ms: float | None = Field(description="Latency percentiles: the upper bound of the histogram bucket.")
    p95_ms: float | None
    p99_ms: float | None
    errors_by_reason: dict[str, int]
    last_error_reason: str | None
    last_error_message: str | None = Field(description="Redacted.")
    last_error_at: dt.datetime | None


class FallbackHealthPublic(BaseModel):
    """How one logical service's fallback chain served calls over the last 15 minutes."""

    service: str
    served_by: dict[str, int] = Field(description="Calls answered by a later provider, by provider.")
    degraded: int = Field(description="Calls answered by the degraded result.")
    passed_over: dict[str, dict[str, int]] = Field(description="Providers passed over, by provider and reason.")
    last_at: dt.datetime


class RetentionPublic(BaseModel):
    """The latest finished run of the retention role (``fr_retention_runs``)."""

    runner: str = Field(description="The dispatcher that ran it.")
    started_at: dt.datetime
    finished_at: dt.datetime
    deleted: dict[str, int] = Field(description="Rows deleted, by table.")
    purged: int = Field(description="Dead letters whose sealed secrets were purged.")


def _retention(session: sa.orm.Session) -> RetentionPublic | None:
    run = retention.last_finished_run(session)
    if run is None or run.finished_at is None:
        return None
    return RetentionPublic(
        runner=run.runner,
        started_at=run.started_at,
        finished_at=run.finished_at,
        deleted={str(k): int(v) for k, v in (run.deleted or {}).items()},
        purged=run.purged,
    )


class HealthPublic(BaseModel):
    """Health of the error-handling system."""

    status: Literal["ok", "degraded", "unavailable"]
    database: bool
    broker: bool
    #: ``shared``: circuit breakers and retry budgets live in Redis, shared by every worker;
    #: ``per_process``: Redis cannot be reached, each process runs its own (same rules, not shared);
    #: ``none``: no Redis to share them (the broker is not Redis and ``redis_url`` is unset): per process.
    breakers: Literal["shared", "per_process", "none"] = "none"
    #: Dispatchers seen within the last 30 seconds.
    dispatchers_alive: int | None = None
    #: Scheduled retries and resource re-checks due but not yet published.
    due_runs: int | None = None
    #: Age of the oldest due run, in seconds (how far behind the dispatchers are).
    oldest_due_seconds: float | None = None
    #: External services called through breakers (``ai_service_health``), last 15 minutes.
    services: list[ServiceHealthPublic] = []
    #: Fallback chains not answered by their first provider (``ai_fallback_events``), last 15 minutes.
    fallbacks: list[FallbackHealthPublic] = []
    #: The latest finished retention run (None: none yet, or retention is off).
    retention: RetentionPublic | None = None
    #: Redis broker: worker consumers whose liveness heartbeat is alive (None on other brokers).
    workers_alive: int | None = None
    #: Redis broker: worker consumers whose heartbeat lapsed, their messages not yet restored by a dispatcher.
    workers_lapsed: int | None = None
    #: Redis broker: messages the dispatchers restored from lapsed workers, in total.
    messages_restored: int | None = None
    checked_at: dt.datetime


def _liveness(request: Request) -> liveness.Census | None:
    """The worker consumers of a Redis broker (None on other brokers, or when it does not answer)."""
    import redis

    celery = get_celery(request)
    try:
        with celery.connection_for_read() as connection:
            channel = connection.default_channel
            if not isinstance(channel, kombu_redis.Channel):
                return None
            return liveness.census(channel)
    except (BrokerError, OSError, redis.RedisError):
        return None


def _breakers_mode(request: Request, broker: bool) -> Literal["shared", "per_process", "none"]:
    settings = get_settings(request)
    url = settings.shared_state_url
    if url is None:
        return "none"
    if not settings.redis_url:  # the broker is the Redis
        return "shared" if broker else "per_process"
    import redis

    client = redis.Redis.from_url(url, socket_timeout=BROKER_TIMEOUT, socket_connect_timeout=BROKER_TIMEOUT)
    try:
        client.ping()
    except redis.RedisError:
        return "per_process"
    finally:
        client.close()
    return "shared"


def _broker_reachable(request: Request) -> bool:
    celery = get_celery(request)
    try:
        with celery.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT)
    except (BrokerError, OSError):
        return False
    return True


@router.get("/health", response_model=HealthPublic)
def health(request: Request) -> HealthPublic:
    """Report whether the database and the broker answer, how many dispatchers are alive, and how many
    scheduled runs are due but not yet published."""
    now = utcnow()
    broker = _broker_reachable(request)
    breakers = _breakers_mode(request, broker)
    try:
        with get_engine(request).connect() as conn, sa.orm.Session(bind=conn) as session:
            due, oldest = runs.due_backlog(session, now=now)
            alive = heartbeats.alive(session, kind="dispatcher", now=now)
            services = [
                ServiceHealthPublic(
                    **{k: v for k, v in vars(s).items() if k != "last_error"},
                    last_error_reason=s.last_error[0] if s.last_error else None,
                    last_error_message=s.last_error[1] if s.last_error else None,
                    last_error_at=s.last_error[2] if s.last_error else None,
                )
                for s in summaries.service_health(session, since=now - dt.timedelta(minutes=SERVICES_WINDOW_MINUTES))
            ]
            fallbacks = [
                FallbackHealthPublic(**vars(f))
                for f in summaries.fallback_summary(session, since=now - dt.timedelta(minutes=SERVICES_WINDOW_MINUTES))
            ]
            retained = _retention(session)
    except _UNHEALTHY:
        return HealthPublic(status="unavailable", database=False, broker=broker, breakers=breakers, checked_at=now)
    oldest_due = (now - oldest).total_seconds() if oldest is not None else None
    workers = _liveness(request) if broker else None
    status: Literal["ok", "degraded", "unavailable"] = "ok" if broker else "degraded"
    if due and not alive:  # nobody publishes the due runs: retries are stranded
        status = "unavailable"
    return HealthPublic(
        status=status,
        workers_alive=workers.alive if workers else None,
        workers_lapsed=workers.lapsed if workers else None,
        messages_restored=workers.restored if workers else None,
        database=True,
        broker=broker,
        breakers=breakers,
        dispatchers_alive=alive,
        due_runs=int(due),
        oldest_due_seconds=oldest_due,
        services=services,
        fallbacks=fallbacks,
        retention=retained,
        checked_at=now,
    )

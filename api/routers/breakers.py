"""Circuit breakers: ``GET /circuit-breakers`` (each service's state and its last transition),
``POST /circuit-breakers/{service}/reset`` and ``POST /circuit-breakers/{service}/open`` (an operator
closes or opens a service's breaker, cluster-wide; both need the write scope and are recorded: a
``circuit_breaker_events`` row and an audit event, ``breaker.reset`` / ``breaker.open``, in one
transaction committed after the shared state changed)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import redis
from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from api.celery_dep import RuntimeDep
from api.deps import PrincipalDep, SessionDep
from api.errors import ApiError, error_responses
from error_handling.persistence import audit
from error_handling.persistence.models import utcnow
from error_handling.persistence.reads import resilience

router = APIRouter(prefix="/circuit-breakers", tags=["circuit-breakers"])

ServiceName = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,128}$", description="The service, e.g. `openai` or `anthropic:claude`.")
]


class TransitionPublic(BaseModel):
    """A recorded transition of a breaker."""

    from_state: str
    to_state: str
    cause: str = Field(description="failure_ratio, timeout, probe, local, reset or forced_open.")
    calls: int
    failures: int
    actor: str | None
    at: dt.datetime


class BreakerPublic(BaseModel):
    """A service's circuit breaker."""

    service: str
    state: str = Field(description="closed, open or half_open (shared state; per process when degraded).")
    degraded: bool = Field(description="True when this API process cannot reach Redis and shows a local state.")
    last_transition: TransitionPublic | None


class BreakersPublic(BaseModel):
    """Every service with a recorded breaker transition."""

    data: list[BreakerPublic]


def _public(session: Any, runtime: Any, service: str) -> BreakerPublic:
    last = resilience.last_transition(session, service=service)
    return BreakerPublic(
        service=service,
        state=runtime.breakers.state(service),
        degraded=service in runtime.breakers.degraded(),
        last_transition=TransitionPublic.model_validate(last, from_attributes=True) if last else None,
    )


def _unavailable(exc: Exception) -> ApiError:
    return ApiError(
        503,
        f"the breakers' shared state (Redis) did not answer ({type(exc).__name__}); nothing was changed",
        code="shared_state_unavailable",
    )


def _audit(session: Any, principal: str, action: audit.AuditAction, service: str, detail: dict[str, Any]) -> None:
    audit.record(session, action, service, actor=principal, now=utcnow(), detail=detail)


@router.get("", response_model=BreakersPublic, responses=error_responses(503))
def list_breakers(session: SessionDep, runtime: RuntimeDep) -> BreakersPublic:
    """Each service whose breaker ever changed state: its state now and its last transition."""
    return BreakersPublic(data=[_public(session, runtime, name) for name in resilience.breaker_services(session)])


@router.post("/{service}/reset", response_model=BreakerPublic, responses=error_responses(422, 503))
def reset_breaker(
    session: SessionDep, runtime: RuntimeDep, principal: PrincipalDep, service: ServiceName
) -> BreakerPublic:
    """Close a service's breaker and forget its counts, cluster-wide (recorded as `reset`; audited as
    `breaker.reset`). 503 when Redis does not answer (nothing is recorded)."""
    try:
        with session.begin():
            before = runtime.breakers.reset(service, actor=principal, session=session)
            _audit(session, principal, audit.AuditAction.BREAKER_RESET, service, {"from_state": before})
    except redis.RedisError as exc:
        raise _unavailable(exc) from None
    return _public(session, runtime, service)


@router.post("/{service}/open", response_model=BreakerPublic, responses=error_responses(409, 422, 503))
def open_breaker(
    session: SessionDep,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    service: ServiceName,
    seconds: Annotated[float, Query(gt=0, le=86_400, description="How long to keep it open.")] = 300,
) -> BreakerPublic:
    """Open a service's breaker for `seconds`, cluster-wide (recorded as `forced_open`); calls fail fast
    with a retry at the time it may close. 409 without Redis (there is no shared state to open). Audited
    as `breaker.open`."""
    try:
        with session.begin():
            before = runtime.breakers.force_open(service, seconds=seconds, actor=principal, session=session)
            _audit(
                session, principal, audit.AuditAction.BREAKER_OPEN, service, {"from_state": before, "seconds": seconds}
            )
    except RuntimeError as exc:
        raise ApiError(409, str(exc), code="no_shared_state", param="service") from None
    except redis.RedisError as exc:
        raise _unavailable(exc) from None
    return _public(session, runtime, service)

"""Resource gates: ``GET /resources``: each gate's last probe state, its capacity in use, and the tasks
waiting on it (and on any resource without a declared gate)."""

from __future__ import annotations

import datetime as dt

import redis
from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError

from api.celery_dep import RuntimeDep
from api.deps import SessionDep
from api.errors import error_responses
from error_handling.persistence.reads import resilience, runs

router = APIRouter(tags=["resources"])


class ResourcePublic(BaseModel):
    """A resource tasks wait on: its gate's last known state and its queue of waits."""

    name: str
    gate: bool = Field(description="Whether a monitor has reported a gate of this name.")
    capacity: int | None = Field(description="Units that may be held at once, cluster-wide (null: no limit).")
    capacity_used: int | None = Field(description="Units held or reserved now (null when unknown).")
    capacity_error: str | None = Field(description="Why the capacity in use could not be read, if it could not.")
    probe: str | None = Field(description="What the gate's probe checks.")
    available: bool | None = Field(description="The probe's last verdict (null: no probe or not checked yet).")
    detail: str | None = Field(description="What the probe read.")
    checked_at: dt.datetime | None
    monitor: str | None = Field(description="The dispatcher that checked it last.")
    waiting: int = Field(description="Tasks parked on it now.")
    oldest_wait: dt.datetime | None = Field(description="When the longest-waiting of them was parked.")


class ResourcesPublic(BaseModel):
    """Every resource with a gate or with waiting tasks, by name."""

    data: list[ResourcePublic]


@router.get("/resources", response_model=ResourcesPublic, responses=error_responses(503))
def list_resources(session: SessionDep, runtime: RuntimeDep) -> ResourcesPublic:
    """Each resource gate (as its monitor last saw it: probe verdict, capacity, units in use) and every
    resource tasks wait on, with how many wait and since when the oldest waits."""
    gates = resilience.gates(session)
    waits = runs.resource_waits(session)
    data = []
    for name in sorted(set(gates) | set(waits)):
        gate = gates.get(name)
        used: int | None = None
        error: str | None = None
        if gate is not None and gate.capacity is not None:
            try:
                used = runtime.lease_store.used(name)
            except (redis.RedisError, SQLAlchemyError, OSError) as exc:
                error = f"cannot read the leases: {type(exc).__name__}"
        count, oldest = waits.get(name, (0, None))
        data.append(
            ResourcePublic(
                name=name,
                gate=gate is not None,
                capacity=gate.capacity if gate else None,
                capacity_used=used,
                capacity_error=error,
                probe=gate.probe if gate else None,
                available=gate.available if gate else None,
                detail=gate.detail if gate else None,
                checked_at=gate.checked_at if gate else None,
                monitor=gate.monitor if gate else None,
                waiting=count,
                oldest_wait=oldest,
            )
        )
    return ResourcesPublic(data=data)

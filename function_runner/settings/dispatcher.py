"""The dispatchers' pace: polling, batches, gate checks and leases, and when lost work is published again."""

from __future__ import annotations

from pydantic import BaseModel, Field


class DispatcherSettings(BaseModel):
    """How often dispatchers look, how much they take at once, and when they give up waiting."""

    dispatcher_interval: float = Field(default=1.0, gt=0, description="Dispatcher poll interval (s).")
    dispatcher_batch_size: int = Field(default=500, ge=1, le=10_000, description="Runs claimed per transaction.")
    gate_check_interval: float = Field(
        default=5.0, gt=0, description="Seconds between two checks of the resource gates by each dispatcher."
    )
    gate_lease_seconds: float = Field(
        default=60.0, gt=1, description="A capacity lease expires this long after its last renewal (its worker died)."
    )
    gate_reservation_seconds: float = Field(
        default=300.0,
        gt=1,
        description="Units reserved for a released wait are given back if the task has not started by then.",
    )
    compensation_sweep_after: float = Field(
        default=30.0,
        gt=0,
        description="Seconds after which the dispatcher republishes a compensation that seems lost (pending "
        "steps nobody touched, e.g. a discard's or a worker that died before publishing).",
    )
    redispatch_after: float = Field(
        default=600.0,
        gt=0,
        description="A dispatched run whose message never started is published again after this (s).",
    )

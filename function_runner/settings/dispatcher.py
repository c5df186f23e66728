"""The dispatchers' pace: polling, batches, gate checks and leases, and when lost work is published again."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from function_runner.settings.group import Seconds, SettingsGroup

#: A lease or a reservation in seconds: more than one.
LeaseSeconds = Annotated[float, Field(gt=1)]


class DispatcherSettings(SettingsGroup):
    """How often dispatchers look, how much they take at once, and when they give up waiting."""

    dispatcher_interval: Seconds = 1.0
    """Dispatcher poll interval (s)."""
    dispatcher_batch_size: Annotated[int, Field(ge=1, le=10_000)] = 500
    """Runs claimed per transaction."""
    gate_check_interval: Seconds = 5.0
    """Seconds between two checks of the resource gates by each dispatcher."""
    gate_lease_seconds: LeaseSeconds = 60.0
    """A capacity lease expires this long after its last renewal (its worker died)."""
    gate_reservation_seconds: LeaseSeconds = 300.0
    """Units reserved for a released wait are given back if the task has not started by then."""
    compensation_sweep_after: Seconds = 30.0
    """Seconds after which the dispatcher republishes a compensation that seems lost (pending steps nobody
    touched, e.g. a discard's or a worker that died before publishing)."""
    redispatch_after: Seconds = 600.0
    """A dispatched run whose message never started is published again after this (s)."""

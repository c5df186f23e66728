"""Resource gates: a named resource that parked tasks wait on, with a probe and/or a capacity.

Declare the gates on the app, and what a task needs::

    app = create_app(settings, gates=[
        Gate("gpu", capacity=2, probe=GpuMemoryFree(min_mib=8000)),
        Gate("disk", probe=DiskFree("/data", min_bytes=10 * 2**30)),
    ])

    @app.task(base=RecoverableTask, resources={"gpu": 1})
    def render(scene): ...

The package: :mod:`~function_runner.gates.gate` (the declaration), :mod:`~function_runner.gates.probes`
(whether a resource is available now), :mod:`~function_runner.gates.leases` (capacity, cluster-wide),
:mod:`~function_runner.gates.monitor` (the dispatcher's check that releases waiting tasks).
"""

from __future__ import annotations

from function_runner.gates.gate import Gate
from function_runner.gates.probes import (
    CallableProbe,
    DiskFree,
    GpuMemoryFree,
    MemoryAvailable,
    PostgresConnections,
    Probe,
    ProbeResult,
)

__all__ = [
    "CallableProbe",
    "DiskFree",
    "Gate",
    "GpuMemoryFree",
    "MemoryAvailable",
    "PostgresConnections",
    "Probe",
    "ProbeResult",
]

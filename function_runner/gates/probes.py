"""Probes: whether a resource is available now (free disk, memory, GPU memory, Postgres connections, or
any callable). A gate's monitor evaluates them; a probe that raises says unavailable."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from collections.abc import Callable
from typing import Protocol

from error_handling.persistence.gates import free_connections

__all__ = [
    "CallableProbe",
    "DiskFree",
    "GpuMemoryFree",
    "MemoryAvailable",
    "PostgresConnections",
    "Probe",
    "ProbeResult",
]


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    """A probe's verdict: available or not, what it read, and optionally how many units are free."""

    available: bool
    detail: str = ""
    free: int | None = None


class Probe(Protocol):
    """Says whether a resource is available now."""

    def __call__(self) -> ProbeResult: ...

    def describe(self) -> str:
        """What the probe checks, e.g. ``disk_free(/data) >= 10.0 GiB``."""
        ...


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


@dataclasses.dataclass(frozen=True)
class DiskFree:
    """Available when the filesystem of ``path`` has at least ``min_bytes`` free."""

    path: str
    min_bytes: int

    def __call__(self) -> ProbeResult:
        free = shutil.disk_usage(self.path).free
        return ProbeResult(free >= self.min_bytes, f"{_gib(free)} free on {self.path}")

    def describe(self) -> str:
        return f"disk_free({self.path}) >= {_gib(self.min_bytes)}"


@dataclasses.dataclass(frozen=True)
class MemoryAvailable:
    """Available when the machine has at least ``min_bytes`` of memory available (``MemAvailable``)."""

    min_bytes: int
    meminfo: str = "/proc/meminfo"

    def __call__(self) -> ProbeResult:
        with open(self.meminfo, encoding="ascii") as handle:
            fields = dict(line.split(":", 1) for line in handle if ":" in line)
        available = int(fields["MemAvailable"].split()[0]) * 1024
        return ProbeResult(available >= self.min_bytes, f"{_gib(available)} available")

    def describe(self) -> str:
        return f"memory_available >= {_gib(self.min_bytes)}"


@dataclasses.dataclass(frozen=True)
class GpuMemoryFree:
    """Available when a GPU (any, or ``index``) has at least ``min_mib`` MiB free, read with ``nvidia-smi``.

    ``free`` is how many GPUs have that much free. Without ``nvidia-smi`` the GPU is unavailable.
    """

    min_mib: int
    index: int | None = None
    timeout: float = 10.0

    def __call__(self) -> ProbeResult:
        command = ["nvidia-smi", "--query-gpu=memory.free", "--format=csv,noheader,nounits"]
        if self.index is not None:
            command.append(f"--id={self.index}")
        if shutil.which(command[0]) is None:
            return ProbeResult(False, "nvidia-smi not found")
        output = subprocess.run(command, capture_output=True, text=True, timeout=self.timeout, check=True).stdout
        free = [int(line.strip()) for line in output.splitlines() if line.strip()]
        enough = sum(1 for mib in free if mib >= self.min_mib)
        return ProbeResult(enough > 0, f"free MiB per GPU: {free}", free=enough)

    def describe(self) -> str:
        where = f"gpu {self.index}" if self.index is not None else "any gpu"
        return f"gpu_memory_free({where}) >= {self.min_mib} MiB"


@dataclasses.dataclass(frozen=True)
class PostgresConnections:
    """Available when a Postgres server has at least ``min_free`` connections left."""

    url: str
    min_free: int = 5

    def __call__(self) -> ProbeResult:
        free, limit = free_connections(self.url)
        return ProbeResult(free >= self.min_free, f"{free} of {limit} connections free", free=free)

    def describe(self) -> str:
        return f"postgres_free_connections >= {self.min_free}"


@dataclasses.dataclass(frozen=True)
class CallableProbe:
    """Any function: it returns a bool, or a :class:`ProbeResult`."""

    function: Callable[[], bool | ProbeResult]
    description: str = ""

    def __call__(self) -> ProbeResult:
        value = self.function()
        return value if isinstance(value, ProbeResult) else ProbeResult(bool(value))

    def describe(self) -> str:
        return self.description or getattr(self.function, "__qualname__", repr(self.function))

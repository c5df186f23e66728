"""A gate's declaration: a named resource with a probe and/or a capacity, and the app's gates by name."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from error_handling.exceptions import ConfigurationError
from error_handling.redaction import DEFAULT_REDACTOR
from function_runner.gates.probes import Probe, ProbeResult

__all__ = ["Gate", "declared"]


@dataclasses.dataclass(frozen=True)
class Gate:
    """A named resource: a probe and/or a capacity (see :mod:`function_runner.gates`).

    Attributes:
        name: the resource name tasks and ``ResourceError(resource=...)`` use.
        probe: whether the resource is available now (None: only the capacity counts).
        capacity: at most this many units held at once, cluster-wide (None: no limit).
        release_batch: for a gate without capacity, at most this many waits released per check.
    """

    name: str
    probe: Probe | None = None
    capacity: int | None = None
    release_batch: int = 10

    def __post_init__(self) -> None:
        """Check the declaration.

        Raises:
            ConfigurationError: an empty or too long name, a capacity or ``release_batch`` below 1.
        """
        if not self.name or len(self.name) > 64:
            raise ConfigurationError("a gate's name must have 1 to 64 characters")
        if self.capacity is not None and self.capacity < 1:
            raise ConfigurationError("a gate's capacity must be at least 1")
        if self.release_batch < 1:
            raise ConfigurationError("release_batch must be at least 1")

    def check(self) -> ProbeResult | None:
        """Evaluate the probe (None without one); a probe that raises says unavailable, with the error."""
        if self.probe is None:
            return None
        try:
            return self.probe()
        except Exception as exc:  # noqa: BLE001 - a user's probe: any error of it means unavailable
            return ProbeResult(False, DEFAULT_REDACTOR.redact_text(f"probe failed: {type(exc).__name__}: {exc}"))


def declared(gates: Iterable[Gate]) -> dict[str, Gate]:
    """Gates by name.

    Raises:
        ConfigurationError: two gates share a name.
    """
    found: dict[str, Gate] = {}
    for gate in gates:
        if gate.name in found:
            raise ConfigurationError(f"two gates are named {gate.name!r}")
        found[gate.name] = gate
    return found

"""Waiting on a condition with a deadline: the only way tests wait."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class TimedOut(AssertionError):
    """The condition did not hold before the deadline."""


def wait_until(
    condition: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.1, what: str = "condition"
) -> T:
    """Poll ``condition`` until it returns something truthy; return it. Fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise TimedOut(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")

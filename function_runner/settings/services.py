"""Calls to outside services: the circuit breakers' thresholds and the fallback chains."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from function_runner.settings.group import AtLeastOne, Seconds, SettingsGroup


class ServiceSettings(SettingsGroup):
    """Circuit breakers (shared by every worker) and fallback chains by logical service."""

    breaker_failure_ratio: Annotated[float, Field(gt=0, le=1)] = 0.5
    """A circuit breaker opens when this share of its calls in the window failed."""
    breaker_window: Seconds = 30.0
    """The breakers' sliding window (s)."""
    breaker_min_calls: AtLeastOne = 10
    """A breaker does not open before this many calls in its window."""
    breaker_open_seconds: Seconds = 30.0
    """How long an open breaker refuses calls before one probe is let through (s)."""
    fallbacks: dict[str, list[str]] = Field(default_factory=dict)
    """Fallback chains by logical service, JSON: {"chat": ["openai:gpt-4o", "anthropic:claude", "cache"]}. Each
    name is a provider registered on the app (or a degraded result, last)."""

"""Calls to outside services: the circuit breakers' thresholds and the fallback chains."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ServiceSettings(BaseModel):
    """Circuit breakers (shared by every worker) and fallback chains by logical service."""

    breaker_failure_ratio: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="A circuit breaker opens when this share of its calls in the window failed.",
    )
    breaker_window: float = Field(default=30.0, gt=0, description="The breakers' sliding window (s).")
    breaker_min_calls: int = Field(
        default=10, ge=1, description="A breaker does not open before this many calls in its window."
    )
    breaker_open_seconds: float = Field(
        default=30.0, gt=0, description="How long an open breaker refuses calls before one probe is let through (s)."
    )
    fallbacks: dict[str, list[str]] = Field(
        default_factory=dict,
        description='Fallback chains by logical service, JSON: {"chat": ["openai:gpt-4o", '
        '"anthropic:claude", "cache"]}. Each name is a provider registered on the app (or a '
        "degraded result, last).",
    )

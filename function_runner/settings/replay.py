"""Secrets and replays: extra key names to redact, and what a replay may be sent to or edited with."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from function_runner.settings.group import AtLeastOne, SettingsGroup


class ReplaySettings(SettingsGroup):
    """Redaction keys and the limits of a replay (its queues, the size and depth of an edit)."""

    redact_keys: list[str] = Field(default_factory=list)
    """Extra key names whose values are secret."""
    replay_allowed_queues: list[str] = Field(default_factory=list)
    """Queues a replay may be sent to besides those the app declares (its default queue, task_queues, the queues
    of dict task_routes) and the dead letter's own queue, JSON: ["reprocess", "slow"]."""
    replay_edit_max_bytes: AtLeastOne = 262_144
    """The largest replay edit accepted: args or kwargs as canonical JSON, in bytes (UTF-8)."""
    replay_edit_max_depth: Annotated[int, Field(ge=1, le=90)] = 32
    """The deepest nesting of lists and objects accepted in a replay edit (args or kwargs)."""

"""Error groups and their analysis: how long a group stays ``new`` (and ``regressed``)."""

from __future__ import annotations

from function_runner.settings.group import Seconds, SettingsGroup


class AnalysisSettings(SettingsGroup):
    """How error groups are read: the period a group is ``new`` after its first attempt."""

    groups_new_period: Seconds = 86_400.0
    """Seconds an error group stays 'new' after its first attempt, and 'regressed' after it came back once
    resolved (then it is 'ongoing')."""

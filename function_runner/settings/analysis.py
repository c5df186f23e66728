"""Error groups and their analysis: how long a group stays ``new``, how often the dispatchers update the
groups' states, and the thresholds of the anomalies that users tune most (the others keep the defaults of
:class:`~error_handling.analytics.AnalysisConfig`, documented in docs/analysis.md)."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from pydantic import Field

from error_handling.analytics import DEFAULT_CONFIG, AnalysisConfig
from function_runner.settings.group import AtLeastOne, Seconds, SettingsGroup

#: A share between 0 and 1.
Share = Annotated[float, Field(gt=0, le=1)]


class AnalysisSettings(SettingsGroup):
    """How error groups are kept and how the analysis judges a window."""

    groups_new_period: Seconds = 86_400.0
    """Seconds an error group stays 'new' after its first attempt, and 'regressed' after it came back once
    resolved (then it is 'ongoing')."""
    groups_check_interval: Seconds = 60.0
    """Seconds between two updates of the groups' states by each dispatcher (new and regressed groups
    settling into 'ongoing', groups escalating and calming down)."""
    analysis_spike_min_count: AtLeastOne = DEFAULT_CONFIG.spike_min_count
    """A spike (of a group, or of a task's errors) needs at least this many errors in the window."""
    analysis_spike_min_multiplier: Annotated[float, Field(ge=1)] = DEFAULT_CONFIG.spike_min_multiplier
    """... and at least this many times its baseline's expected count."""
    analysis_error_rate_threshold: Share = DEFAULT_CONFIG.error_rate_threshold
    """A task whose failed executions are more than this share of its executions in the window is reported."""
    analysis_error_rate_min_executions: AtLeastOne = DEFAULT_CONFIG.error_rate_min_executions
    """An error rate over fewer executions than this is not judged."""
    analysis_flapping_opens_per_hour: Annotated[float, Field(gt=0)] = DEFAULT_CONFIG.flapping_opens_per_hour
    """A breaker that opens this many times an hour or more is flapping."""

    def analysis_config(self) -> AnalysisConfig:
        """The analysis' thresholds: these settings over the defaults."""
        return dataclasses.replace(
            DEFAULT_CONFIG,
            spike_min_count=self.analysis_spike_min_count,
            spike_min_multiplier=self.analysis_spike_min_multiplier,
            error_rate_threshold=self.analysis_error_rate_threshold,
            error_rate_min_executions=self.analysis_error_rate_min_executions,
            flapping_opens_per_hour=self.analysis_flapping_opens_per_hour,
        )

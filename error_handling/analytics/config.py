"""Every threshold of the analysis, in one frozen value with named defaults (settings expose it later).

The spike test, in words: a count is a spike when it is at least ``spike_min_count``, at least
``spike_min_multiplier`` times the baseline's expected count (at least 1), and above the expected count by
more than ``spike_mad_k`` robust standard deviations (``1.4826 * MAD``, the MAD floored at ``mad_floor`` or
``mad_floor_ratio`` of the median, whichever is larger), and it is at most ``spike_max_probability`` likely
under a Poisson law at the baseline's rate. Each condition keeps a class of false alarms away: sparse series
(1 -> 3 errors), proportional noise of large series, noisy series (the MAD), and series of a few errors an
hour whose tails are heavier than a median of a week of samples shows (the Poisson tail).
"""

from __future__ import annotations

import dataclasses
import datetime as dt


@dataclasses.dataclass(frozen=True, kw_only=True)
class AnalysisConfig:
    """The thresholds of the anomaly evaluators and the recommendation rules (defaults are production's)."""

    # -- baselines
    #: Previous weeks looked at for a same-hour-of-week baseline (used when 3 or more are in the history: a spike needs 3 samples).
    seasonal_weeks: int = 4
    #: Previous days looked at for a same-hour-of-day baseline (used when 3 or more are in the history).
    seasonal_days: int = 7
    #: Windows just before the window looked at for a recent baseline (the fallback).
    recent_samples: int = 24
    #: The MAD is never taken below this (counts), so a flat history still tolerates some noise.
    mad_floor: float = 1.0
    #: Nor below this share of the median.
    mad_floor_ratio: float = 0.1

    # -- spikes (a group's or a task's errors against its baseline)
    #: A spike needs at least this many errors in the window.
    spike_min_count: int = 10
    #: ... at least this many times the expected count (an expected count below 1 counts as 1).
    spike_min_multiplier: float = 3.0
    #: ... and more than this many robust standard deviations (1.4826 MAD) above the expected count.
    spike_mad_k: float = 4.0
    #: ... and at most this likely under a Poisson law at the baseline's rate (the larger of its median and
    #: mean): sparse series (a few errors an hour) have heavier tails than their MAD says.
    spike_max_probability: float = 1e-6
    #: A baseline of fewer samples than this cannot show a spike (too little history).
    min_baseline_samples: int = 3
    #: A spike (or an error rate) this many times its expected value is critical, not a warning.
    critical_multiplier: float = 10.0

    # -- groups
    #: A group first seen in the window is reported new once it has this many errors there.
    new_group_min_count: int = 1
    #: A new group with this many errors in the window is critical.
    new_group_critical_count: int = 100

    # -- error rate (failed executions / executions of a task in the window)
    #: The rate above which a task is reported.
    error_rate_threshold: float = 0.2
    #: The rate at and above which it is critical.
    error_rate_critical: float = 0.5
    #: A rate over fewer executions than this is not judged.
    error_rate_min_executions: int = 20

    # -- recovery failing (share of retried tasks that ended dead-lettered)
    #: The share is not judged over fewer retried tasks than this.
    recovery_min_retried: int = 20
    #: The share must reach this ...
    recovery_dead_letter_floor: float = 0.2
    #: ... and exceed the median share of the previous windows by this much.
    recovery_min_rise: float = 0.1

    # -- resource gates
    #: A gate is reported when at least this many of its waits timed out in the window ...
    wait_timeout_min: int = 5
    #: ... and they are at least this share of its waits.
    wait_timeout_share: float = 0.1

    # -- breakers
    #: A breaker flaps when it opened at least this many times in the window ...
    flapping_min_opens: int = 3
    #: ... at this many opens per hour or more.
    flapping_opens_per_hour: float = 4.0

    # -- recommendations
    #: Quota errors of one service must be at least this many ...
    quota_min_count: int = 20
    #: ... and this share of that service's errors in the window.
    quota_share: float = 0.5
    #: An unclassified group with this many errors in the window gets a suggested rule.
    unclassified_min_count: int = 20
    #: Transient failures of one reason dead-lettered after their retries: at least this many ...
    exhausted_min_count: int = 10
    #: ... and this share of that reason's finished transient failures (recovered + dead-lettered).
    exhausted_share: float = 0.2
    #: A validation group first seen within this period after a task's new version points at the producer.
    deploy_period: dt.timedelta = dt.timedelta(hours=1)


#: The defaults.
DEFAULT_CONFIG = AnalysisConfig()

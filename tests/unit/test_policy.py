"""The policy: a pure function from a classification to a decision."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from error_handling.categories import Category, Reason
from error_handling.classification import Classification
from error_handling.exceptions import ConfigurationError
from error_handling.policy import (
    ConstantBackoff,
    DeadLetter,
    FailFast,
    FullJitterBackoff,
    RecoveryPolicy,
    Retry,
    Wait,
    budget_group,
    decide,
    get_backoff,
)

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
POLICY = RecoveryPolicy()


def c(category: Category, reason: str, **kw: object) -> Classification:
    return Classification(category=category, reason=reason, **kw)  # type: ignore[arg-type]


class MaxRandom:
    """A random source that always returns the upper bound."""

    def uniform(self, a: float, b: float) -> float:
        return b


class MinRandom:
    """A random source that always returns the lower bound."""

    def uniform(self, a: float, b: float) -> float:
        return a


@pytest.mark.parametrize(
    "failures, ceiling", [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (10, 512.0), (11, 600.0), (100, 600.0)]
)
def test_full_jitter_ceiling_doubles_up_to_the_cap(failures: int, ceiling: float) -> None:
    assert FullJitterBackoff().ceiling(failures) == ceiling
    assert FullJitterBackoff().delay(failures, MaxRandom()) == ceiling
    assert FullJitterBackoff().delay(failures, MinRandom()) == 0.0


@pytest.mark.parametrize("failures", [1, 2, 3, 5, 8, 12])
def test_full_jitter_samples_stay_within_bounds_and_spread(failures: int) -> None:
    rng = random.Random(failures)
    backoff = FullJitterBackoff(base=1.0, max_delay=600.0)
    samples = [backoff.delay(failures, rng) for _ in range(2000)]
    ceiling = backoff.ceiling(failures)
    assert all(0.0 <= s <= ceiling for s in samples)
    # full jitter: the samples cover the whole interval, not a band near the ceiling
    assert min(samples) < ceiling * 0.05
    assert max(samples) > ceiling * 0.95


def test_transient_failure_is_retried_with_backoff() -> None:
    d = decide(c(Category.TRANSIENT, Reason.TIMEOUT), failures=3, now=NOW, policy=POLICY, rng=MaxRandom())
    assert d == Retry(at=NOW + dt.timedelta(seconds=4), delay=4.0)


@pytest.mark.parametrize(
    "hint, jitter_max, expected",
    [
        (30.0, True, 30.0),  # hint larger than the computed delay wins
        (0.5, True, 4.0),  # a smaller hint does not shorten the backoff
        (None, True, 4.0),
        (10.0, False, 10.0),
        (5 * 3600.0, False, 5 * 3600.0),  # a daily token limit's hours are waited for, not 2 s
        (86400.0, False, 86400.0),  # up to the cap itself
    ],
)
def test_server_hint_wins_when_larger(hint: float | None, jitter_max: bool, expected: float) -> None:
    rng = MaxRandom() if jitter_max else MinRandom()
    d = decide(
        c(Category.TRANSIENT, Reason.RATE_LIMITED, retry_after=hint), failures=3, now=NOW, policy=POLICY, rng=rng
    )
    assert isinstance(d, Retry)
    assert d.delay == expected
    assert d.at == NOW + dt.timedelta(seconds=expected)


@pytest.mark.parametrize("failures, dead", [(1, False), (4, False), (5, True), (6, True)])
def test_transient_budget_is_five_attempts(failures: int, dead: bool) -> None:
    d = decide(c(Category.TRANSIENT, Reason.CONNECTION), failures=failures, now=NOW, policy=POLICY)
    assert (d == DeadLetter(reason=Reason.RETRIES_EXHAUSTED.value)) is dead
    assert isinstance(d, Retry) is (not dead)


@pytest.mark.parametrize("failures, dead", [(1, False), (2, False), (3, True)])
def test_unclassified_budget_is_three_then_dead_letter_as_unclassified(failures: int, dead: bool) -> None:
    d = decide(c(Category.TRANSIENT, Reason.UNCLASSIFIED), failures=failures, now=NOW, policy=POLICY)
    assert (d == DeadLetter(reason="unclassified")) is dead


def test_budgets_are_overridable_per_task() -> None:
    policy = POLICY.merged({"transient_max_attempts": 2, "backoff": 7})
    assert isinstance(decide(c(Category.TRANSIENT, "timeout"), failures=1, now=NOW, policy=policy), Retry)
    assert decide(c(Category.TRANSIENT, "timeout"), failures=1, now=NOW, policy=policy).delay == 7.0  # type: ignore[union-attr]
    assert decide(c(Category.TRANSIENT, "timeout"), failures=2, now=NOW, policy=policy) == DeadLetter(
        "retries_exhausted"
    )


def test_validation_fails_fast_with_the_user_message() -> None:
    d = decide(
        c(Category.VALIDATION, "invalid_input", user_message="Fix the amount."), failures=1, now=NOW, policy=POLICY
    )
    assert d == FailFast(reason="invalid_input", user_message="Fix the amount.")


def test_permanent_goes_to_the_dead_letter_queue_at_once() -> None:
    assert decide(c(Category.PERMANENT, "auth_failed"), failures=1, now=NOW, policy=POLICY) == DeadLetter("auth_failed")


def test_resource_waits_until_deadline_then_dead_letters() -> None:
    gpu = c(Category.RESOURCE, "gpu_unavailable", resource="gpu")
    first = decide(gpu, failures=1, now=NOW, policy=POLICY)
    assert first == Wait(resource="gpu", deadline=NOW + dt.timedelta(hours=1), check_at=NOW + dt.timedelta(seconds=15))
    later = NOW + dt.timedelta(minutes=59, seconds=50)
    near_end = decide(gpu, failures=5, now=later, policy=POLICY, waiting_since=NOW)
    assert isinstance(near_end, Wait)
    assert near_end.deadline == NOW + dt.timedelta(hours=1)  # the deadline does not move
    assert near_end.check_at == NOW + dt.timedelta(hours=1)  # never checked past the deadline
    timed_out = decide(gpu, failures=6, now=NOW + dt.timedelta(hours=1), policy=POLICY, waiting_since=NOW)
    assert timed_out == DeadLetter(reason="resource_wait_timeout")


def test_a_transient_hint_past_the_cap_waits_on_the_quota_instead_of_retrying() -> None:
    limited = c(Category.TRANSIENT, Reason.RATE_LIMITED, retry_after=10 * 86400.0)
    d = decide(limited, failures=1, now=NOW, policy=POLICY, rng=MaxRandom())
    cap = dt.timedelta(seconds=POLICY.max_retry_after)
    assert d == Wait(resource="quota", deadline=NOW + cap, check_at=NOW + cap)


def test_a_hint_of_hours_past_a_shorter_cap_is_a_wait_checked_at_the_cap() -> None:
    policy = RecoveryPolicy(max_retry_after=1800.0)
    daily = c(Category.TRANSIENT, Reason.RATE_LIMITED, retry_after=6 * 3600.0, resource="openai")
    d = decide(daily, failures=2, now=NOW, policy=policy, rng=MaxRandom())
    assert d == Wait(resource="openai", deadline=NOW + dt.timedelta(hours=1), check_at=NOW + dt.timedelta(minutes=30))
    later = NOW + dt.timedelta(hours=1)
    assert decide(daily, failures=3, now=later, policy=policy, waiting_since=NOW) == DeadLetter(
        reason="resource_wait_timeout"
    )


def test_a_hint_past_the_cap_still_counts_against_the_budgets() -> None:
    limited = c(Category.TRANSIENT, Reason.RATE_LIMITED, retry_after=10 * 86400.0)
    assert decide(limited, failures=5, now=NOW, policy=POLICY) == DeadLetter(reason="retries_exhausted")
    assert decide(limited, failures=1, now=NOW, policy=POLICY, retry_allowed=False) == DeadLetter(
        reason="retry_budget_exhausted"
    )


def test_a_resource_hint_longer_than_the_wait_timeout_extends_the_deadline_up_to_the_cap() -> None:
    quota = c(Category.RESOURCE, "quota_exceeded", resource="quota", retry_after=3 * 3600.0)
    d = decide(quota, failures=1, now=NOW, policy=POLICY)
    assert d == Wait(resource="quota", deadline=NOW + dt.timedelta(hours=3), check_at=NOW + dt.timedelta(hours=3))
    capped = decide(quota, failures=1, now=NOW, policy=RecoveryPolicy(max_retry_after=7200.0))
    assert capped == Wait(resource="quota", deadline=NOW + dt.timedelta(hours=2), check_at=NOW + dt.timedelta(hours=2))


def test_resource_hint_delays_the_next_check() -> None:
    quota = c(Category.RESOURCE, "quota_exceeded", resource="quota", retry_after=120.0)
    d = decide(quota, failures=1, now=NOW, policy=POLICY)
    assert isinstance(d, Wait)
    assert d.check_at == NOW + dt.timedelta(seconds=120)


@pytest.mark.parametrize(
    "reason, category, group",
    [
        ("unclassified", Category.TRANSIENT, "unclassified"),
        ("timeout", Category.TRANSIENT, "transient"),
        ("disk_full", Category.RESOURCE, "resource"),
    ],
)
def test_budget_groups(reason: str, category: Category, group: str) -> None:
    assert budget_group(c(category, reason)) == group


def test_every_category_has_a_route() -> None:
    routes = {type(decide(c(cat, "x", resource="r"), failures=1, now=NOW, policy=POLICY)) for cat in Category}
    assert routes == {Retry, Wait, FailFast, DeadLetter}


@pytest.mark.parametrize(
    "spec, expected",
    [
        (None, FullJitterBackoff()),
        (3, ConstantBackoff(3.0)),
        (0.5, ConstantBackoff(0.5)),
        (ConstantBackoff(2), ConstantBackoff(2)),
    ],
)
def test_get_backoff_shorthands(spec: object, expected: object) -> None:
    assert get_backoff(spec) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("spec", ["fast", True, [1], -1])
def test_get_backoff_rejects_nonsense(spec: object) -> None:
    with pytest.raises(ConfigurationError):
        get_backoff(spec)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "overrides",
    [
        {"transient_max_attempts": 0},
        {"resource_wait_timeout": -1},
        {"no_such_option": 1},
        {"unclassified_max_attempts": 1.5},
    ],
)
def test_invalid_policy_options_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        POLICY.merged(overrides)


def test_failures_must_count_this_failure() -> None:
    with pytest.raises(ConfigurationError):
        decide(c(Category.TRANSIENT, "timeout"), failures=0, now=NOW, policy=POLICY)


def test_decide_changes_nothing() -> None:
    classification = c(Category.TRANSIENT, "timeout")
    before = (classification, POLICY)
    decide(classification, failures=1, now=NOW, policy=POLICY)
    assert (classification, POLICY) == before


def test_an_empty_retry_budget_turns_a_retry_into_a_dead_letter_and_nothing_else() -> None:
    transient = c(Category.TRANSIENT, Reason.SERVICE_UNAVAILABLE.value)
    assert decide(transient, failures=1, now=NOW, policy=RecoveryPolicy(), retry_allowed=False) == DeadLetter(
        reason=Reason.RETRY_BUDGET_EXHAUSTED.value
    )
    assert isinstance(decide(transient, failures=1, now=NOW, policy=RecoveryPolicy()), Retry)
    resource = c(Category.RESOURCE, Reason.GPU_UNAVAILABLE.value)
    assert isinstance(decide(resource, failures=1, now=NOW, policy=RecoveryPolicy(), retry_allowed=False), Wait)

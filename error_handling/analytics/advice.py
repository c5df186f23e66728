"""The recommendation rules about error groups: quota errors dominating a provider, a frequent
unclassified group, transient retries exhausted for one reason, a validation group right after a new
task version. Each is a pure function; none speaks without the numbers that made it fire."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from error_handling.analytics.config import DEFAULT_CONFIG, AnalysisConfig
from error_handling.analytics.findings import Recommendation, RecommendationRule, share_text
from error_handling.analytics.inputs import GroupSeries, TaskSeries, Window
from error_handling.analytics.rule_suggestion import suggested_rule
from error_handling.categories import Category, Reason


def quota_dominates(
    groups: Iterable[GroupSeries], *, window: Window, config: AnalysisConfig = DEFAULT_CONFIG
) -> list[Recommendation]:
    """One recommendation per service whose ``quota_exceeded`` errors in the window are at least
    ``quota_min_count`` and ``quota_share`` of its errors (groups without a service are not counted)."""
    quota: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for group in groups:
        if group.service is not None:
            total[group.service] += group.count
            if group.reason == Reason.QUOTA_EXCEEDED:
                quota[group.service] += group.count
    found = []
    for service in sorted(quota):
        share = quota[service] / total[service]
        if quota[service] < config.quota_min_count or share < config.quota_share:
            continue
        found.append(
            Recommendation(
                rule=RecommendationRule.QUOTA_DOMINATES,
                subject=service,
                title=f"{service}: {quota[service]} of its {total[service]} errors ({share_text(share)}) are quota errors",
                action=f"Raise the quota of {service} with its provider, or add a fallback provider: a chain in "
                f'the setting `fallbacks` (FUNCTION_RUNNER_FALLBACKS=\'{{"<service>": ["{service}", '
                f'"<another provider>"]}}\'), called through runtime.fallbacks.',
                evidence={
                    "service": service,
                    "quota_errors": quota[service],
                    "errors": total[service],
                    "share": round(share, 4),
                    "threshold": config.quota_share,
                    "window": window.evidence(),
                },
            )
        )
    return found


def unclassified_group(
    group: GroupSeries, *, window: Window, config: AnalysisConfig = DEFAULT_CONFIG
) -> Recommendation | None:
    """A suggested classification rule for an ``unclassified`` group with at least
    ``unclassified_min_count`` errors in the window."""
    if group.reason != Reason.UNCLASSIFIED or group.count < config.unclassified_min_count:
        return None
    code = suggested_rule(group.exc_type, group.message)
    return Recommendation(
        rule=RecommendationRule.UNCLASSIFIED_GROUP,
        subject=group.fingerprint,
        title=f"group {group.fingerprint} ({group.exc_type or 'no type'}): {group.count} unclassified errors, "
        "retried with the small unclassified budget then dead-lettered",
        action=f"Classify it: add to the app's rules (create_app(rules=[...]) or install(app, rules=[...])), "
        f"checking the category: {code}",
        evidence={
            "fingerprint": group.fingerprint,
            "exc_type": group.exc_type,
            "message": group.message,
            "count": group.count,
            "tasks": dict(group.tasks),
            "rule": code,
            "window": window.evidence(),
        },
    )


def retries_exhausted(
    groups: Iterable[GroupSeries], *, window: Window, config: AnalysisConfig = DEFAULT_CONFIG
) -> list[Recommendation]:
    """One recommendation per reason of transient groups whose failed tasks ended dead-lettered at least
    ``exhausted_min_count`` times in the window, at least ``exhausted_share`` of those that finished
    (recovered or dead-lettered)."""
    dead: Counter[str] = Counter()
    finished: Counter[str] = Counter()
    tasks: dict[str, Counter[str]] = {}
    for group in groups:
        if group.category == Category.TRANSIENT:
            dead[group.reason] += group.outcomes.dead_lettered
            finished[group.reason] += group.outcomes.dead_lettered + group.outcomes.recovered
            tasks.setdefault(group.reason, Counter()).update(group.tasks)
    found = []
    for reason in sorted(dead):
        share = dead[reason] / finished[reason] if finished[reason] else 0.0
        if dead[reason] < config.exhausted_min_count or share < config.exhausted_share:
            continue
        names = [name for name, _ in tasks[reason].most_common(5)]
        found.append(
            Recommendation(
                rule=RecommendationRule.RETRIES_EXHAUSTED,
                subject=reason,
                title=f"{reason}: {dead[reason]} of {finished[reason]} retried tasks ({share_text(share)}) "
                "were dead-lettered with their retries exhausted",
                action="Raise the transient retry budget (setting `transient_max_attempts`, "
                "FUNCTION_RUNNER_TRANSIENT_MAX_ATTEMPTS, or a task's policy option "
                f'{{"transient_max_attempts": N}}) for {", ".join(names)}; or, if one service is down, put it '
                'behind a circuit breaker (breaker="<service>" on the task) so its retries wait for it.',
                evidence={
                    "reason": reason,
                    "dead_lettered": dead[reason],
                    "finished": finished[reason],
                    "share": round(share, 4),
                    "tasks": dict(tasks[reason].most_common(5)),
                    "window": window.evidence(),
                },
            )
        )
    return found


def validation_after_deploy(
    group: GroupSeries,
    tasks: Mapping[str, TaskSeries],
    *,
    window: Window,
    config: AnalysisConfig = DEFAULT_CONFIG,
) -> Recommendation | None:
    """A recommendation to check the producer when a ``validation`` group with errors in the window was
    first seen within ``deploy_period`` after the first attempt of a new version of one of its tasks.
    Quiet when no task of the group has a known version."""
    if group.category != Category.VALIDATION or group.count <= 0:
        return None
    for name in sorted(group.tasks):
        task = tasks.get(name)
        started = task.version_first_seen if task is not None else None
        if task is None or started is None or not started <= group.first_seen < started + config.deploy_period:
            continue
        after = group.first_seen - started
        return Recommendation(
            rule=RecommendationRule.VALIDATION_AFTER_DEPLOY,
            subject=group.fingerprint,
            title=f"validation group {group.fingerprint} ({group.count} errors) appeared {after} after "
            f"{name} version {task.version or '?'} started",
            action=f"Check the producer of {name}: what it sends no longer matches what version "
            f"{task.version or '?'} accepts (the failed tasks are failed fast; replay their dead letters "
            "or resubmit once fixed).",
            evidence={
                "fingerprint": group.fingerprint,
                "task": name,
                "version": task.version,
                "version_first_seen": started.isoformat(),
                "first_seen": group.first_seen.isoformat(),
                "seconds_after": after.total_seconds(),
                "count": group.count,
                "window": window.evidence(),
            },
        )
    return None

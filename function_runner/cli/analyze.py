"""``function-runner analyze``: what went wrong in the last minutes, what changed, and what to do.

The same analysis as ``GET /api/v1/errors/analysis`` (``--json`` prints its document): totals, the error
rate and its distribution by category, the trend against the previous window and the same window a day and
a week earlier, then the anomalies and recommendations, each with its numbers.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from api.schemas.analysis import AnalysisPublic, analysis_public
from error_handling.persistence.reads.analysis import analyse
from function_runner.cli.common import database_session, load_settings
from function_runner.cli.output import JsonOption, out, print_json

__all__ = ["analyze"]

#: The window analysed when none is given, in minutes (the API's default).
DEFAULT_MINUTES = 5
#: The longest window, in minutes (a week, as the API's).
MAX_MINUTES = 10_080


def analyze(
    window_minutes: Annotated[
        int, typer.Option("--window-minutes", "-w", min=1, max=MAX_MINUTES, help="How far back to look.")
    ] = DEFAULT_MINUTES,
    as_json: JsonOption = False,
) -> None:
    """Analyse the last --window-minutes: errors, error rate, trend, anomalies and recommendations."""
    settings = load_settings()
    until = dt.datetime.now(dt.UTC)
    since = until - dt.timedelta(minutes=window_minutes)
    with database_session() as session:
        document = analysis_public(
            analyse(
                session,
                since=since,
                until=until,
                new_period=dt.timedelta(seconds=settings.groups_new_period),
                config=settings.analysis_config(),
            )
        )
    if as_json:
        print_json(document)
        return
    _print(document)


def _rate(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate * 100:.2f}%"


def _print(document: AnalysisPublic) -> None:
    out.print(
        f"last {document.window_minutes} min: {document.total_errors} errors in {document.executions} executions "
        f"(error rate {_rate(document.error_rate)})",
        highlight=False,
    )
    if document.error_distribution:
        out.print("by category: " + ", ".join(f"{c} {n}" for c, n in document.error_distribution.items()))
    trend = Table("compared with", "errors", "error rate", "change", box=None)
    for name, totals in document.trend.items():
        change = "" if totals.change is None else f"{totals.change * 100:+.0f}%"
        trend.add_row(name.replace("_", " "), str(totals.total_errors), _rate(totals.error_rate), change)
    out.print(trend)
    out.print(f"anomalies: {len(document.anomalies) or 'none'}")
    for anomaly in document.anomalies:
        out.print(f"  [{anomaly.severity.value}] {anomaly.kind.value}: {escape(anomaly.summary)}", highlight=False)
    out.print(f"recommendations: {len(document.recommendations) or 'none'}")
    for advice in document.recommendations:
        out.print(f"  {escape(advice.title)}\n    -> {escape(advice.action)}", highlight=False)

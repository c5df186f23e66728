"""The analysis of a window: ``GET /analysis`` (mounted under ``/api/v1/errors``)."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter

from api.deps import SessionDep, SettingsDep
from api.errors import error_responses
from api.params import WindowMinutes, window
from api.schemas.analysis import AnalysisPublic, analysis_public
from error_handling.persistence.reads.analysis import analyse

router = APIRouter(tags=["analysis"])

#: The window analysed when none is given, in minutes (the design's example).
DEFAULT_ANALYSIS_MINUTES = 5


@router.get("/analysis", response_model=AnalysisPublic, responses=error_responses(422, 503))
def analysis(
    session: SessionDep,
    settings: SettingsDep,
    window_minutes: WindowMinutes = DEFAULT_ANALYSIS_MINUTES,
) -> AnalysisPublic:
    """What went wrong in the last `window_minutes`, what changed, and what to do about it: failed attempts,
    the error rate (failed attempts / executions, successes counted by the workers), the distribution by
    category, the trend against the previous window and the same window a day and a week earlier, the
    anomalies (spikes against a seasonal baseline, new and regressed groups, error rates, recovery
    failing, waits timing out, flapping breakers) and the recommendations, each with its evidence."""
    since, until = window(window_minutes)
    return analysis_public(
        analyse(
            session,
            since=since,
            until=until,
            new_period=dt.timedelta(seconds=settings.groups_new_period),
            config=settings.analysis_config(),
        )
    )

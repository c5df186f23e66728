"""A Celery app that uses RecoverableTask without ``install``: its runtime comes from the environment."""

from __future__ import annotations

import os

from celery import Celery

from function_runner import RecoverableTask

app = Celery("fr_e2e_bare", broker=os.environ.get("FUNCTION_RUNNER_BROKER_URL", "memory://"))


@app.task(base=RecoverableTask, name="e2e.bare")
def bare() -> None:
    """Does nothing."""

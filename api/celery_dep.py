"""The Celery app the API publishes replays through: built once per API app from its settings.

It is created on the first request that needs it (nothing connects at import time) and kept on
``app.state``; on RabbitMQ its task queues are checked then, so a ``celery`` queue a user's app declared
without function-runner's arguments is published to as it is (as the dispatcher does).
:func:`close_celery` releases its connections when the API shuts down.
"""

from __future__ import annotations

import logging
import threading
from typing import Annotated

from celery import Celery
from fastapi import Depends, FastAPI, Request
from kombu.exceptions import OperationalError as BrokerError

from error_handling.exceptions import ConfigurationError
from function_runner.app import create_app
from function_runner.broker import queues
from function_runner.events import log_event
from function_runner.runtime import Runtime, runtime_for

__all__ = ["CeleryDep", "RuntimeDep", "close_celery", "get_celery", "get_runtime"]

#: Serialises the first creation per process; the app itself lives on ``app.state``.
_creating = threading.Lock()


def get_celery(request: Request) -> Celery:
    """The API app's Celery app (created on first use from the API's settings)."""
    state = request.app.state
    celery: Celery | None = getattr(state, "celery", None)
    if celery is None:
        with _creating:
            celery = getattr(state, "celery", None)
            if celery is None:
                celery = state.celery = create_app(state.settings, main="function_runner_api")
    if not getattr(state, "celery_queues_checked", False):
        state.celery_queues_checked = _check_queues(celery)
    return celery


def _check_queues(celery: Celery) -> bool:
    """RabbitMQ: publish to task queues that exist with other arguments as they are (see
    ``function_runner.broker.queues.use_queues_as_found``); False when the broker did not answer (checked again
    on the next request)."""
    try:
        queues.use_queues_as_found(celery)
    except (BrokerError, ConnectionError, OSError):
        return False
    except ConfigurationError as exc:  # said once; publishing then fails with the broker's own answer
        log_event("api.queue_refused", level=logging.ERROR, error=str(exc))
    return True


def get_runtime(celery: Annotated[Celery, Depends(get_celery)]) -> Runtime:
    """The function-runner runtime of the API's Celery app (sealer, redactor, settings)."""
    return runtime_for(celery)


def close_celery(app: FastAPI) -> None:
    """Release the Celery app of an API app, if one was created (call at shutdown)."""
    celery: Celery | None = getattr(app.state, "celery", None)
    if celery is not None:
        runtime_for(celery).close()
        celery.close()
        app.state.celery = None


CeleryDep = Annotated[Celery, Depends(get_celery)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]

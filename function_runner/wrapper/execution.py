"""One execution of a recoverable task, as every step of the wrapper sees it.

An :class:`Execution` is read once from Celery's request when the task is called: which task, which
attempt, which scheduled run (if the dispatcher published it), and the arguments. The steps
(``claim``, ``leases``, ``guards``, ``classify``, ``payload``, ``failures``, ``refusals``,
``outcome``) take it instead of the task, so none of them reaches into the task or another step.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from function_runner.events import log_event
from function_runner.wrapper import headers as H

if TYPE_CHECKING:
    from function_runner.wrapper.services import Services

__all__ = ["Execution", "attempt_of", "custom_headers", "int_header"]


def custom_headers(request: Any) -> dict[str, Any]:
    """The message's application headers (a copy; empty when there are none)."""
    headers = getattr(request, "headers", None)
    return dict(headers) if isinstance(headers, dict) else {}


def int_header(headers: dict[str, Any], name: str, *, default: int | None) -> Any:
    """The header ``name`` as an int, or ``default`` when it is absent or not a number."""
    value = headers.get(name)
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def attempt_of(request: Any) -> int:
    """The attempt number a request carries: 1 for the first, 2 for the first retry, ..."""
    return int(int_header(custom_headers(request), H.ATTEMPT, default=1))


@dataclasses.dataclass(frozen=True)
class Execution:
    """The facts of one execution that the wrapper's steps share.

    Attributes:
        services: the app's services.
        request: Celery's request of this execution.
        task_name: the task's registered name.
        args: the positional arguments.
        kwargs: the keyword arguments.
        attempt: the attempt number (the ``fr_attempt`` header, 1 when absent).
        run_id: the scheduled run this message executes (``fr_run``), if the dispatcher published it.
        token: the dispatch token that lets this message claim the run (``fr_token``).
    """

    services: Services
    request: Any
    task_name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    attempt: int
    run_id: int | None = None
    token: str | None = None

    @classmethod
    def of(
        cls, services: Services, request: Any, *, task_name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Execution:
        """Read the execution from Celery's request."""
        headers = custom_headers(request)
        token = headers.get(H.TOKEN)
        return cls(
            services=services,
            request=request,
            task_name=task_name,
            args=args,
            kwargs=kwargs,
            attempt=attempt_of(request),
            run_id=int_header(headers, H.RUN, default=None),
            token=str(token) if token else None,
        )

    @property
    def task_id(self) -> str:
        """The task's id."""
        return str(self.request.id)

    def log(self, event: str, *, level: int = logging.INFO, exc_info: bool = False, **fields: Any) -> None:
        """Log ``event`` about this execution: its ``task_id``, ``task`` and ``attempt`` (which ``fields``
        may override), then ``fields``."""
        identity = {"task_id": self.task_id, "task": self.task_name, "attempt": self.attempt}
        log_event(event, level=level, exc_info=exc_info, **(identity | fields))

    @property
    def headers(self) -> dict[str, Any]:
        """The message's application headers."""
        return custom_headers(self.request)

    @property
    def redelivered(self) -> bool:
        """The broker delivered this message before (its ``redelivered`` flag)."""
        return bool((self.request.delivery_info or {}).get("redelivered"))

    @property
    def kept_copy(self) -> bool:
        """This message is the dispatcher's copy of one the broker lost (``fr_kept``)."""
        return bool(self.headers.get(H.KEPT))

    @property
    def queue(self) -> str | None:
        """The routing key it was delivered with."""
        return (self.request.delivery_info or {}).get("routing_key")

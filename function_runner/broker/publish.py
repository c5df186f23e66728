"""Publishing a task from its stored form: the one place that turns stored delivery options into
``send_task`` arguments (the time limits are arguments of their own, the rest are passed as they are).

The dispatcher's roles, single replays and bulk replay jobs all publish through :func:`send_task`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from celery import Celery

__all__ = ["send_task"]


def send_task(
    app: Celery,
    name: str,
    *,
    args: Any,
    kwargs: Any,
    headers: dict[str, Any],
    options: dict[str, Any],
    task_id: str,
    producer: Any = None,
    root_id: str | None = None,
    parent_id: str | None = None,
) -> None:
    """Publish task ``name`` through ``app`` with its stored delivery ``options``.

    Raises:
        kombu OperationalError / ConnectionError: the broker did not take the message.
    """
    options = dict(options)
    time_limit = options.pop("time_limit", None)
    soft_time_limit = options.pop("soft_time_limit", None)
    app.send_task(
        name,
        args=args,
        kwargs=kwargs,
        task_id=task_id,
        headers=headers,
        producer=producer,
        time_limit=time_limit,
        soft_time_limit=soft_time_limit,
        root_id=root_id,
        parent_id=parent_id,
        **options,
    )

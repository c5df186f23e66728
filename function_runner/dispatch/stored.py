"""Publishing a run from its stored form: secrets unsealed, function-runner's headers added.

The due-runs and kept-failures roles publish through a :class:`StoredPublisher` (an app and a sealer,
not the whole runtime).
"""

from __future__ import annotations

import dataclasses
from contextlib import AbstractContextManager
from typing import Any

from celery import Celery

from error_handling.sealing import Sealer, unseal_secrets
from function_runner.broker.publish import send_task

__all__ = ["StoredPublisher"]


@dataclasses.dataclass(frozen=True)
class StoredPublisher:
    """Publishes stored runs through one Celery app, unsealing their secrets with ``sealer``."""

    app: Celery
    sealer: Sealer

    def producer(self) -> AbstractContextManager[Any]:
        """A producer of the app's pool (one per batch)."""
        producer: AbstractContextManager[Any] = self.app.producer_or_acquire()
        return producer

    def send(
        self,
        name: str,
        *,
        payload: tuple[Any, Any, Any],
        ours: dict[str, Any],
        task_id: str,
        root_id: str | None,
        parent_id: str | None,
        options: dict[str, Any],
        producer: Any,
    ) -> None:
        """Publish a task from its stored form: ``payload`` is its args, kwargs and headers with secrets
        sealed (unsealed here), ``ours`` the function-runner headers to add.

        Raises:
            SealedValueError: a secret cannot be opened with the configured keys.
            kombu OperationalError / ConnectionError: the broker did not take the message.
        """
        args, kwargs, headers = (unseal_secrets(part, sealer=self.sealer) for part in payload)
        send_task(
            self.app,
            name,
            args=args or [],
            kwargs=kwargs or {},
            headers={**(headers or {}), **ours},
            options=options,
            task_id=task_id,
            producer=producer,
            root_id=root_id,
            parent_id=parent_id,
        )

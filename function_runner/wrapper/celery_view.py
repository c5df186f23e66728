"""What Celery's own tools see of a task: redacted arguments and exceptions, and the true attempt.

Celery puts a task's arguments into every message as text, the ``argsrepr`` and ``kwargsrepr``
headers (protocol 2): the worker logs them and sends them in its ``task-received`` event, which
Flower shows in its task list and API. It sends an exception's ``repr`` and traceback in
``task-failed`` / ``task-retried``, and it counts retries in the message's ``retries`` header, which
``self.request.retries``, Flower and exporters read. Here:

- :class:`PublishHook`, connected by :func:`function_runner.install` to Celery's
  ``before_task_publish`` signal, rewrites on every message a process publishes (a user's ``.delay()``,
  the dispatcher's retries and released waits, replays) ``argsrepr`` and ``kwargsrepr`` as the
  ``repr`` of the redacted arguments (by key name and by pattern, :meth:`Redactor.redact`); a repr the
  caller chose itself (``apply_async(argsrepr=...)``) is kept, redacted as text. On a message that
  carries function-runner's attempt header, it sets ``retries`` to ``attempt - 1`` (when the message
  does not count retries already), so Celery's count agrees with the task's history.
- :class:`RedactingRequest`, the base of the worker-side request of ``RecoverableTask``, redacts as
  text the ``argsrepr`` and ``kwargsrepr`` a message arrives with (one published by a process that did
  not call ``install`` carries Celery's own repr), before the worker logs them, sends them in
  ``task-received`` or answers ``inspect active``/``reserved`` with them; it redacts the ``exception``
  and ``traceback`` of every event it sends.

What holds: with ``install`` in the producer, the arguments shown are redacted structurally (a value
under a secret key is hidden whatever its type); without it, the worker still redacts the repr it
receives, by pattern (``'api_key': 'sk-...'`` and ``'password': '...'`` are found; a secret object's
own repr under a secret key may not be). Not covered: Celery's ``task-sent`` event (off unless
``task_send_sent_event``), which the producer builds from Celery's repr before any hook runs, and
``result_extended``, with which the result backend stores the arguments themselves. Leave both off, or
pass ``argsrepr``/``kwargsrepr`` yourself.

The exceptions Celery stores and sends are redacted copies raised by the wrapper
(:mod:`function_runner.wrapper.redacted_errors`).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

from celery import Celery, signals
from celery.utils.saferepr import saferepr
from celery.worker.request import Request

from error_handling.redaction import Redactor
from function_runner.wrapper import headers as H

__all__ = ["HOOK_ATTRIBUTE", "PublishHook", "RedactingRequest", "install_publish_hook"]

#: Attribute under which an app's :class:`PublishHook` hangs on it (the signal holds it weakly).
HOOK_ATTRIBUTE = "function_runner_publish_hook"
#: Event fields that carry an exception's text.
_EXCEPTION_FIELDS = ("exception", "traceback")


class PublishHook:
    """Rewrites the headers of each task message published, as the module says.

    Args:
        app: the app whose repr limits (``argsrepr_maxsize``, ``task_repr_maxlevels``) apply.
        redactor: the rules to redact with.
    """

    def __init__(self, app: Celery, redactor: Redactor) -> None:
        self._app = weakref.ref(app)
        self.redactor = redactor

    def on_before_publish(self, *, body: Any = None, headers: Any = None, **_: Any) -> None:
        """The ``before_task_publish`` receiver: change ``headers`` in place."""
        if not isinstance(headers, dict):
            return
        if isinstance(body, tuple | list) and len(body) >= 2:  # protocol 2: (args, kwargs, embed)
            headers["argsrepr"] = self._repr(headers.get("argsrepr"), body[0], kwargs=False)
            headers["kwargsrepr"] = self._repr(headers.get("kwargsrepr"), body[1], kwargs=True)
        attempt = _int(headers.get(H.ATTEMPT))
        if attempt is not None and attempt > 1 and not _int(headers.get("retries")):
            headers["retries"] = attempt - 1

    def _repr(self, given: object, value: object, *, kwargs: bool) -> str:
        maxsize, maxlevels = self._limits(kwargs=kwargs)
        if given is None or given == saferepr(value, maxsize, maxlevels=maxlevels):
            return str(saferepr(self.redactor.redact(value), maxsize, maxlevels=maxlevels))
        return self.redactor.redact_text(str(given))  # the caller's own repr

    def _limits(self, *, kwargs: bool) -> tuple[int, int]:
        app = self._app()
        if app is None:
            return 1024, 3
        amqp = app.amqp
        maxsize = amqp.kwargsrepr_maxsize if kwargs else amqp.argsrepr_maxsize
        return int(maxsize), int(app.conf.task_repr_maxlevels)


def install_publish_hook(app: Celery, redactor: Redactor) -> PublishHook:
    """Connect a :class:`PublishHook` for ``app`` (replacing one connected before) and return it.

    The signal is Celery's, global to the process: a hook rewrites the messages of every app the
    process publishes with (each of them redacted, which does no harm). It lives as long as ``app``.
    """
    previous = getattr(app, HOOK_ATTRIBUTE, None)
    if isinstance(previous, PublishHook):
        signals.before_task_publish.disconnect(previous.on_before_publish)
    hook = PublishHook(app, redactor)
    setattr(app, HOOK_ATTRIBUTE, hook)
    signals.before_task_publish.connect(hook.on_before_publish, weak=True)
    return hook


class RedactingRequest(Request):  # type: ignore[misc]
    """A worker-side request whose argument reprs and event exception texts are redacted."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        redact = self._redactor().redact_text
        argsrepr = redact(str(getattr(self, "_argsrepr", None) or ""))
        kwargsrepr = redact(str(getattr(self, "_kwargsrepr", None) or ""))
        self._argsrepr, self._kwargsrepr = argsrepr, kwargsrepr
        request_dict = getattr(self, "_request_dict", None)  # what the pool process gets, and logs on a failure
        if isinstance(request_dict, dict):
            request_dict["argsrepr"], request_dict["kwargsrepr"] = argsrepr, kwargsrepr

    def _redactor(self) -> Redactor:
        redactor: Redactor = self.task.services.redactor  # the app's (RecoverableTask.services)
        return redactor

    def send_event(self, type: str, **fields: Any) -> None:
        """Send a task event with its exception text and traceback redacted."""
        for name in _EXCEPTION_FIELDS:
            if isinstance(fields.get(name), str):
                fields[name] = self._redactor().redact_text(fields[name])
        super().send_event(type, **fields)

    def info(self, safe: bool = False) -> dict[str, Any]:
        """What ``inspect active``/``reserved`` answer: with the arguments redacted."""
        data: dict[str, Any] = super().info(safe=safe)
        if not safe:
            redactor = self._redactor()
            data["args"] = redactor.redact(data.get("args"))
            kwargs = data.get("kwargs")
            data["kwargs"] = redactor.redact(kwargs) if isinstance(kwargs, Mapping) else kwargs
        return data


def _int(value: object) -> int | None:
    try:
        return int(value) if value is not None else None  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None

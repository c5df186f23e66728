"""The errors of a replay::

    FunctionRunnerError
    └── ReplayError                     a replay could not be carried out
        ├── InvalidReplayEdit           the operator's args/kwargs edits cannot be used
        │   ├── EditTooLarge            more bytes of JSON than replay_edit_max_bytes
        │   ├── EditTooDeep             nested deeper than replay_edit_max_depth
        │   └── SecretMoved             a sealed secret put at another path than its own
        ├── QueueNotAllowed             the queue is not one the app declares or the settings allow
        ├── ReservedIdempotencyKey      the Idempotency-Key uses the bulk replay jobs' prefix
        └── ReplayPublishFailed         the broker did not take the message; nothing was marked

Besides these, a replay raises the refusals of :mod:`error_handling.persistence.dead_letters`.
"""

from __future__ import annotations

from error_handling.exceptions import FunctionRunnerError
from error_handling.persistence.replay_jobs import IDEMPOTENCY_PREFIX

__all__ = [
    "EditTooDeep",
    "EditTooLarge",
    "InvalidReplayEdit",
    "QueueNotAllowed",
    "ReplayError",
    "ReplayPublishFailed",
    "ReservedIdempotencyKey",
    "SecretMoved",
]


class ReplayError(FunctionRunnerError):
    """A replay could not be carried out."""


class InvalidReplayEdit(ReplayError):
    """The operator's edits of args or kwargs cannot be used (the message says what to fix).

    Args:
        message: what is wrong.
        param: ``"args"`` or ``"kwargs"``.
    """

    #: The stable code of the refusal (the API's ``error.code``).
    code = "invalid_edit"

    def __init__(self, message: str, *, param: str) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class EditTooLarge(InvalidReplayEdit):
    """An edit is larger than ``replay_edit_max_bytes`` as canonical JSON."""

    code = "edit_too_large"


class EditTooDeep(InvalidReplayEdit):
    """An edit nests lists and objects deeper than ``replay_edit_max_depth``."""

    code = "edit_too_deep"


class SecretMoved(InvalidReplayEdit):
    """An edit puts a sealed secret (its ``[REDACTED]`` placeholder or its sealed marker) at another path
    than the one it is stored at."""

    code = "secret_moved"


class QueueNotAllowed(ReplayError):
    """The replay's queue is not one the app declares, the dead letter's own, or one the settings allow."""

    def __init__(self, queue: str, allowed: set[str]) -> None:
        shown = ", ".join(sorted(allowed)[:20]) + (", ..." if len(allowed) > 20 else "")
        self.message = (
            f"queue {queue!r} is not declared by the app (allowed: {shown}); "
            "add it to FUNCTION_RUNNER_REPLAY_ALLOWED_QUEUES to replay to it"
        )
        super().__init__(self.message)
        self.queue = queue


class ReservedIdempotencyKey(ReplayError):
    """The ``Idempotency-Key`` starts with the prefix the bulk replay jobs use for their own replays."""

    def __init__(self) -> None:
        self.message = f"Idempotency-Key values starting with {IDEMPOTENCY_PREFIX!r} are reserved for bulk replay jobs"
        super().__init__(self.message)


class ReplayPublishFailed(ReplayError):
    """The broker did not take the replayed message; the dead letter was left as it was."""

"""User-facing messages: what an end user may be told about a failure, per reason code.

The built-in message of each reason is :data:`~error_handling.classification.REASON_USER_MESSAGES`
(by category for a reason of a user's own rule). A task's own ``user_message``
(``ValidationError(..., user_message=...)``) and a rule's always win; an app replaces the built-in ones
with its own templates::

    install(app, user_messages={"rate_limited": "Our assistant is busy; your answer is on its way."})

A template may use ``{resource}`` (the resource a task waits for). The API returns the message next
to the technical one (``user_message`` and ``message`` of an attempt).
"""

from __future__ import annotations

import string
from collections.abc import Mapping

from error_handling.classification import Classification, default_user_message
from error_handling.exceptions import ConfigurationError

__all__ = ["UserMessages"]


class UserMessages:
    """An app's overrides of the built-in user messages, by reason code.

    Raises:
        ConfigurationError: an override is not a valid template (only ``{resource}`` may be used).
    """

    def __init__(self, overrides: Mapping[str, str] | None = None) -> None:
        self.overrides = dict(overrides or {})
        for reason, template in self.overrides.items():
            try:
                fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
            except ValueError as exc:
                raise ConfigurationError(f"user message of {reason!r} is not a valid template: {exc}") from None
            if fields - {"resource"}:
                raise ConfigurationError(
                    f"user message of {reason!r} uses {sorted(fields - {'resource'})}; only {{resource}} is known"
                )

    def for_classification(self, classification: Classification) -> str:
        """The message for an end user: the error's or rule's own, else the app's template for the
        reason, else the built-in one."""
        built_in = default_user_message(classification.category, classification.reason)
        own = classification.user_message
        template = self.overrides.get(classification.reason)
        if own and own != built_in:
            return own
        if template is not None:
            return template.format(resource=classification.resource or "a resource")
        return own or built_in

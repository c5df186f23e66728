"""User-facing messages: one per reason, safe to show (no internals), overridable per app, the task's
own message first; recorded by the wrapper next to the technical message."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from error_handling.categories import Category, Reason
from error_handling.classification import REASON_USER_MESSAGES, Classification, default_user_message
from error_handling.exceptions import ConfigurationError, TransientError
from error_handling.messages import UserMessages
from error_handling.sealing import generate_key
from function_runner.app import create_app
from function_runner.migrate import upgrade
from function_runner.runtime import runtime_for
from function_runner.settings import Settings
from function_runner.wrapper.task import RecoverableTask


def c(reason: str, category: Category = Category.TRANSIENT, **kw: Any) -> Classification:
    return Classification(category=category, reason=reason, fingerprint="f" * 16, message="HTTP 429 from api.x", **kw)


def test_every_built_in_reason_has_a_message_that_names_no_internals() -> None:
    assert set(REASON_USER_MESSAGES) == {r.value for r in Reason}
    internals = re.compile(r"http|exception|error code|\b\d{3}\b|openai|anthropic|redis|postgres|celery", re.I)
    for reason, message in REASON_USER_MESSAGES.items():
        assert not internals.search(message), reason


def test_the_tasks_own_message_wins_then_the_apps_then_the_built_in_then_the_category() -> None:
    busy = "Our assistant is busy; your answer is on its way."
    messages = UserMessages({"rate_limited": busy, "resource_unavailable": "Waiting for the {resource}."})
    assert messages.for_classification(c("rate_limited", user_message="Try later.")) == "Try later."
    built_in = default_user_message(Category.TRANSIENT, "rate_limited")
    assert messages.for_classification(c("rate_limited", user_message=built_in)) == busy  # the classifier's default
    assert messages.for_classification(c("rate_limited")) == busy
    assert messages.for_classification(c("timeout")) == REASON_USER_MESSAGES["timeout"]
    assert "queued" in messages.for_classification(c("printer_jammed", Category.RESOURCE))
    waiting = messages.for_classification(c("resource_unavailable", Category.RESOURCE, resource="scanner"))
    assert waiting == "Waiting for the scanner."
    with pytest.raises(ConfigurationError, match="only"):
        UserMessages({"timeout": "took {seconds} s"})
    with pytest.raises(ValueError, match="not a valid template"):  # a ConfigurationError is a ValueError too
        UserMessages({"timeout": "took {"})


def test_the_wrapper_records_the_message_next_to_the_technical_one(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    upgrade(url)
    settings = Settings(database_url=url, data_dir=tmp_path, encryption_key=SecretStr(generate_key()))
    app = create_app(settings, main="fr_unit_messages", user_messages={"rate_limited": "Busy; we will retry."})

    @app.task(base=RecoverableTask, name="unit.chat")
    def chat() -> None:
        raise TransientError("429 from api.provider.test for key sk-live-123", reason="rate_limited")

    chat.apply(task_id="chat-1")
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        message, user_message = conn.execute(
            sa.text("SELECT message, user_message FROM fr_failed_attempts WHERE task_id = 'chat-1'")
        ).one()
    engine.dispose()
    runtime_for(app).close()
    assert "429 from api.provider.test" in message
    assert user_message == "Busy; we will retry."

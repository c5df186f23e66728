"""The operator audit's repository on SQLite and Postgres: events written in the caller's transaction,
listed newest first with filters and cursor pagination; the redacted diff of edits; the CLI's actor."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session, sessionmaker

from error_handling.persistence import audit
from error_handling.persistence.audit import AuditAction, AuditTarget
from error_handling.persistence.db import transaction
from error_handling.redaction import REDACTED, Redactor
from function_runner.cli.common import cli_actor

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


def write(
    sessions: sessionmaker[Session], actor: str, action: AuditAction, target: AuditTarget, tid: str, at: dt.datetime
) -> None:
    assert action.target is target  # the action names what it is done to
    with transaction(sessions) as s:
        audit.record(s, action, tid, actor=actor, detail={"n": tid}, now=at)


def test_events_are_listed_newest_first_with_filters_and_a_cursor(sessions: sessionmaker[Session]) -> None:
    write(sessions, "ops", AuditAction.DEAD_LETTER_REPLAY, AuditTarget.DEAD_LETTER, "1", T0)
    write(sessions, "cli:bob", AuditAction.DEAD_LETTER_DISCARD, AuditTarget.DEAD_LETTER, "2", T0)  # same instant
    write(sessions, "ops", AuditAction.BREAKER_RESET, AuditTarget.BREAKER, "openai", T0 + dt.timedelta(minutes=1))
    write(sessions, "ops", AuditAction.REPLAY_JOB_CREATE, AuditTarget.REPLAY_JOB, "7", T0 + dt.timedelta(minutes=2))

    walked: list[str | None] = []
    cursor = None
    with sessions() as s:
        while True:
            page = audit.list_events(s, audit.AuditFilter(), cursor=cursor, limit=1)
            walked += [event.target_id for event in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert walked == ["7", "openai", "2", "1"]  # ties on the instant broken by id, each once

        def ids(**filters: object) -> list[str | None]:
            flt = audit.AuditFilter(**filters)  # type: ignore[arg-type]
            return [e.target_id for e in audit.list_events(s, flt, limit=50).items]

        assert ids(actor="ops") == ["7", "openai", "1"]
        assert ids(action="dead_letter.discard") == ["2"]
        assert ids(target_type="breaker", target_id="openai") == ["openai"]
        assert ids(since=T0 + dt.timedelta(minutes=1)) == ["7", "openai"]
        assert ids(until=T0 + dt.timedelta(minutes=1)) == ["2", "1"]
        (first,) = audit.list_events(s, audit.AuditFilter(action="dead_letter.replay"), limit=5).items
        assert (first.actor, first.at, first.detail) == ("ops", T0, {"n": "1"})


def test_an_event_is_rolled_back_with_its_action(sessions: sessionmaker[Session]) -> None:
    class Refused(Exception):
        pass

    with pytest.raises(Refused), transaction(sessions) as s:
        audit.record(s, AuditAction.BREAKER_OPEN, "x", actor="ops", now=T0)
        raise Refused  # the action fails after its event was written: neither is kept
    with sessions() as s:
        assert audit.list_events(s, audit.AuditFilter(), limit=10).items == []


def test_every_action_names_a_target_type() -> None:
    assert {action.target for action in AuditAction} == set(AuditTarget)


def test_the_diff_of_edits_hides_secrets_by_key_and_by_pattern() -> None:
    before = {"password": REDACTED, "amount": 10, "items": [1, 2, 3], "gone": "x"}
    after = {"password": "hunter2-typed", "amount": 11, "items": [1, 5], "url": "https://u:p4ss@host/x"}
    changes, more = audit.edit_diff(before, after, redactor=Redactor(), root="kwargs")
    assert more == 0
    assert sorted(changes, key=lambda c: c["path"]) == [
        {"path": "kwargs.amount", "op": "changed", "from": 10, "to": 11},
        {"path": "kwargs.gone", "op": "removed", "from": "x"},
        {"path": "kwargs.items[1]", "op": "changed", "from": 2, "to": 5},
        {"path": "kwargs.items[2]", "op": "removed", "from": 3},
        {"path": "kwargs.password", "op": "changed", "from": REDACTED, "to": REDACTED},
        {"path": "kwargs.url", "op": "added", "to": Redactor().redact_text("https://u:p4ss@host/x")},
    ]
    assert "hunter2" not in repr(changes) and "p4ss" not in repr(changes)
    many, more = audit.edit_diff([], list(range(250)), redactor=Redactor(), root="args")
    assert (len(many), more) == (audit.MAX_DIFF_CHANGES, 50)


def test_the_digest_is_that_of_the_canonical_json() -> None:
    assert audit.edit_digest({"b": 1, "a": [REDACTED]}) == audit.edit_digest({"a": [REDACTED], "b": 1})
    assert audit.edit_digest({"a": 1}) != audit.edit_digest({"a": 2})


def test_the_cli_actor_is_the_os_user_or_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("getpass.getuser", lambda: "alice")
    assert cli_actor() == "cli:alice"

    def no_user() -> str:
        raise OSError("No username set in the environment")

    monkeypatch.setattr("getpass.getuser", no_user)
    assert cli_actor() == "cli:unknown"


def test_public_names_are_exported_and_documented() -> None:
    import inspect

    for name in audit.__all__:
        value = getattr(audit, name)
        if inspect.isfunction(value) or inspect.isclass(value):
            assert value.__doc__, name
    assert {action.value.split(".")[0] for action in AuditAction} == {"dead_letter", "replay_job", "group", "breaker"}

"""``function-runner groups`` as a subprocess on real Postgres: list, show, resolve, ignore, unresolve,
and a group's dead letters previewed and handed to a job; audited as ``cli:<user>``; one-line errors."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import sqlalchemy as sa

from error_handling.categories import Category
from error_handling.persistence.db import make_sessionmaker
from error_handling.persistence.models import AuditEvent, ReplayJobRecord, utcnow
from tests.e2e.test_cli import run
from tests.support.failures import fail

FP = "d" * 16


def test_groups_commands(engine: sa.Engine, service_env: dict[str, str], tmp_path: Path) -> None:
    sessions = make_sessionmaker(engine)
    for n in range(3):
        at = utcnow() - dt.timedelta(minutes=10 - n)
        fail(sessions, f"cli-{n}", 1, at=at, category=Category.PERMANENT, reason="not_found", fingerprint=FP)

    listed = run("groups", "list", "--sort", "count", "--json", env=service_env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    [group] = json.loads(listed.stdout)["data"]
    assert (group["fingerprint"], group["count"], group["state"]) == (FP, 3, "new")

    shown = run("groups", "show", FP, env=service_env, cwd=tmp_path)
    assert shown.returncode == 0 and f"group {FP} [new]" in shown.stdout

    assert "resolved" in run("groups", "resolve", FP, env=service_env, cwd=tmp_path).stdout
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    ignored = run("groups", "ignore", FP, "--until", until, "--json", env=service_env, cwd=tmp_path)
    assert json.loads(ignored.stdout)["state"] == "ignored"
    assert "ongoing" in run("groups", "unresolve", FP, env=service_env, cwd=tmp_path).stdout

    preview = run("groups", "replay", FP, "--dry-run", "--json", env=service_env, cwd=tmp_path)
    assert json.loads(preview.stdout)["count"] == 3
    job = run("groups", "discard", FP, "--reason", "known", "--json", env=service_env, cwd=tmp_path)
    assert job.returncode == 0, job.stderr
    assert (json.loads(job.stdout)["action"], json.loads(job.stdout)["total"]) == ("discard", 3)

    missing = run("groups", "show", "0" * 16, env=service_env, cwd=tmp_path)
    assert missing.returncode == 1 and missing.stderr.strip().startswith("error: no error group")
    past = run("groups", "ignore", FP, "--until", "2001-01-01T00:00:00", env=service_env, cwd=tmp_path)
    assert past.returncode == 1 and "ignore_until must be in the future" in past.stderr

    with engine.connect() as conn:
        actions = conn.execute(sa.select(AuditEvent.actor, AuditEvent.action).order_by(AuditEvent.id)).all()
        assert conn.execute(sa.select(sa.func.count()).select_from(ReplayJobRecord)).scalar_one() == 1
    assert [action for _, action in actions] == ["group.update"] * 3 + ["replay_job.create"]
    assert all(actor.startswith("cli:") for actor, _ in actions)

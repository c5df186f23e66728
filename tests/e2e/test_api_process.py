"""The real API process (``function-runner api``, and the app under a plain ``uvicorn``) fails closed.

Each refusal (a relayed or remote client without a key, a cross-site change, a wrong ``Host``, an
oversized body) is answered in the envelope, over real HTTP, with ``FORWARDED_ALLOW_IPS=*`` in the
environment (uvicorn would believe anyone's ``X-Forwarded-For``), and nothing is written: the dead
letter stays pending with no replay. A client looks remote when it calls an address of this machine
that is not loopback.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from api.main import API_PREFIX
from error_handling.persistence.db import make_engine, make_sessionmaker
from error_handling.sealing import Sealer
from tests.conftest import TEST_KEY
from tests.e2e.conftest import rows
from tests.support.api_client import non_loopback_address
from tests.support.dead_letter_seed import seed_dead_letter
from tests.support.processes import Process, cli_args
from tests.support.services import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

READ_KEY = "e2e-read-key-0123456789"
WRITE_KEY = "e2e-write-key-9876543210"
SECRET = "sk-proj-e2eSECRETvalue0123456789abcdef"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def letter_id(pg_url: str) -> int:
    engine = make_engine(pg_url)
    try:
        return seed_dead_letter(
            make_sessionmaker(engine), "api-e2e-1", sealer=Sealer(TEST_KEY), at=dt.datetime.now(dt.UTC)
        )
    finally:
        engine.dispose()


def start_api(spawn: Callable[..., Process], env: dict[str, str], *args: str) -> Process:
    process = spawn(args, env={**env, "FORWARDED_ALLOW_IPS": "*"}, name="api")
    process.wait_for_log("Uvicorn running", timeout=90)
    return process


def assert_refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert set(response.json()["error"]) == {"message", "type", "code", "param"}
    assert response.json()["error"]["code"] == code


def assert_untouched(pg_url: str, letter_id: int) -> None:
    engine = make_engine(pg_url)
    try:
        (letter,) = rows(engine, "fr_dead_letters", id=letter_id)
        assert (letter["status"], letter["replayed_task_id"]) == ("pending", None)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM fr_replay_requests")).scalar() == 0
    finally:
        engine.dispose()


def test_the_local_api_refuses_relayed_cross_site_wrong_host_and_oversized_requests(
    spawn: Callable[..., Process], service_env: dict[str, str], pg_url: str, letter_id: int
) -> None:
    port = free_port()
    process = start_api(spawn, service_env, *cli_args("api", "--host", "127.0.0.1", "--port", str(port)))
    base = f"http://127.0.0.1:{port}{API_PREFIX}"
    replay, discard = f"{base}/dead-letters/{letter_id}/replay", f"{base}/dead-letters/{letter_id}"
    with httpx.Client(timeout=30) as client:
        assert client.get(f"{base}/dead-letters").status_code == 200  # a local client: served
        # relayed: whatever the forwarding header says, not a local client
        for forged in ({"X-Forwarded-For": "127.0.0.1"}, {"Forwarded": "for=127.0.0.1"}):
            assert_refused(client.get(f"{base}/dead-letters", headers=forged), 403, "remote_forbidden")
            assert_refused(client.post(replay, headers={**forged, **JSON}, content=b"{}"), 403, "remote_forbidden")
        # cross-site simple requests: a form, text/plain, a bodyless POST
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        assert_refused(client.post(replay, headers=form, content=b"force=true"), 403, "cross_site_request")
        text = {"Content-Type": "text/plain"}
        assert_refused(client.post(replay, headers=text, content=b'{"force":true}'), 403, "cross_site_request")
        assert_refused(client.post(replay), 403, "cross_site_request")
        # DNS rebinding: the right address under another name
        wrong_host = {"Host": "evil.example", "X-Requested-By": "page"}
        assert_refused(client.delete(discard, params={"reason": "x"}, headers=wrong_host), 400, "host_not_allowed")
        # a body over the default cap of 1 MiB, declared or streamed
        big = b'{"kwargs": {"x": "' + b"x" * (1024 * 1024) + b'"}}'
        assert_refused(client.post(replay, headers=JSON, content=big), 413, "body_too_large")
        assert_refused(client.post(replay, headers=JSON, content=iter([big[:1000], big[1000:]])), 413, "body_too_large")
        assert_untouched(pg_url, letter_id)
        # and the same client may change things the right way
        client.get(f"{base}/dead-letters", params={"q": f"token={SECRET}"})
        response = client.delete(discard, params={"reason": "done"}, headers={"X-Requested-By": "script"})
        assert response.status_code == 200, response.text
    assert SECRET not in process.log() and "[REDACTED]" in process.log()  # the access line is redacted


def test_a_remote_client_gets_nothing_without_a_key_and_cannot_forge_its_address(
    spawn: Callable[..., Process], service_env: dict[str, str], pg_url: str, letter_id: int
) -> None:
    address, port = non_loopback_address(), free_port()
    env = {**service_env, "FUNCTION_RUNNER_API_KEYS": f"read:{READ_KEY},ops=write:{WRITE_KEY}"}
    process = start_api(spawn, env, *cli_args("api", "--host", address, "--port", str(port)))
    base = f"http://{address}:{port}{API_PREFIX}"
    forged = {"X-Forwarded-For": "127.0.0.1", "X-Requested-By": "x"}
    reader = {"Authorization": f"Bearer {READ_KEY}", **forged}
    with httpx.Client(timeout=30) as client:
        assert_refused(client.get(f"{base}/dead-letters", headers=forged), 401, "missing_api_key")
        assert_refused(client.post(f"{base}/dead-letters/{letter_id}/replay", headers=forged), 401, "missing_api_key")
        read = client.get(f"{base}/dead-letters", headers=reader)
        assert read.status_code == 200 and read.json()["data"][0]["id"] == letter_id
        refused = client.post(f"{base}/dead-letters/{letter_id}/replay", headers=reader)
        assert_refused(refused, 403, "write_scope_required")
        assert client.get(f"http://{address}:{port}/openapi.json", headers=reader).status_code == 200
        assert_refused(client.get(f"http://{address}:{port}/openapi.json"), 401, "missing_api_key")
    assert_untouched(pg_url, letter_id)
    # proxy headers are off: uvicorn logged the real client, not the address it claimed
    access = [line for line in process.log().splitlines() if "/dead-letters HTTP" in line]
    assert access and all(f"{address}:" in line and "127.0.0.1" not in line for line in access)


def test_another_server_believing_forwarded_headers_still_serves_no_remote_client(
    spawn: Callable[..., Process], service_env: dict[str, str], pg_url: str, letter_id: int
) -> None:
    """The attack: uvicorn with ``--forwarded-allow-ips '*'`` turns ``X-Forwarded-For: 127.0.0.1`` into
    the client address; the app itself refuses a relayed request, so the remote client stays remote."""
    address, port = non_loopback_address(), free_port()
    args = [*cli_args("api")[:2], "uvicorn", "api.main:create_app", "--factory"]
    args += ["--host", address, "--port", str(port), "--proxy-headers", "--forwarded-allow-ips", "*"]
    start_api(spawn, service_env, *args)
    base = f"http://{address}:{port}{API_PREFIX}"
    with httpx.Client(timeout=30) as client:
        for headers in ({}, {"X-Forwarded-For": "127.0.0.1"}, {"X-Forwarded-For": "::1", "X-Real-IP": "127.0.0.1"}):
            extra: dict[str, Any] = {"X-Requested-By": "x", "Host": "localhost", **headers}
            assert_refused(client.get(f"{base}/dead-letters", headers=extra), 403, "remote_forbidden")
            response = client.delete(f"{base}/dead-letters/{letter_id}", params={"reason": "x"}, headers=extra)
            assert_refused(response, 403, "remote_forbidden")
    assert_untouched(pg_url, letter_id)


@pytest.mark.parametrize("host", ["0.0.0.0", "public"])
def test_the_api_command_will_not_listen_publicly_without_keys(service_env: dict[str, str], host: str) -> None:
    bind = non_loopback_address() if host == "public" else host
    result = subprocess.run(
        cli_args("api", "--host", bind, "--port", str(free_port())),
        env={**service_env, "COLUMNS": "300"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and result.stdout == ""
    assert "FUNCTION_RUNNER_API_KEYS" in lines[0] and "FUNCTION_RUNNER_API_ALLOW_OPEN=true" in lines[0]

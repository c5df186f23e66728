"""API keys: read and write scopes, loopback-only without keys, errors in the envelope."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pydantic
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from api.auth import authorize
from api.main import API_PREFIX, create_app
from error_handling.sealing import generate_key
from function_runner.settings import Settings

READ_KEY = "read-key-0123456789"
WRITE_KEY = "write-key-9876543210"


def make_app(tmp_path: Path, api_keys: str | None) -> FastAPI:
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'api.sqlite3'}",
        encryption_key=generate_key(),
        api_keys=api_keys,
    )
    app = create_app(settings)

    @app.post(f"{API_PREFIX}/_mutation", dependencies=[Depends(authorize)])
    def mutation() -> dict[str, bool]:
        return {"changed": True}

    return app


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(make_app(tmp_path, f"read:{READ_KEY},write:{WRITE_KEY}")) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize(
    "headers, code",
    [
        ({}, "missing_api_key"),
        ({"Authorization": f"Basic {READ_KEY}"}, "missing_api_key"),
        ({"Authorization": "Bearer "}, "missing_api_key"),
        (bearer("not-a-key"), "invalid_api_key"),
    ],
)
def test_requests_without_a_valid_key_get_401_in_the_envelope(
    keyed: TestClient, headers: dict[str, str], code: str
) -> None:
    for method, path in (("GET", f"{API_PREFIX}/health"), ("POST", f"{API_PREFIX}/_mutation")):
        response = keyed.request(method, path, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == code
        assert set(response.json()["error"]) == {"message", "type", "code", "param"}


def test_read_key_reads_but_cannot_change(keyed: TestClient) -> None:
    assert keyed.get(f"{API_PREFIX}/health", headers=bearer(READ_KEY)).status_code == 200
    response = keyed.post(f"{API_PREFIX}/_mutation", headers=bearer(READ_KEY))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "write_scope_required"


def test_write_key_reads_and_changes(keyed: TestClient) -> None:
    assert keyed.get(f"{API_PREFIX}/health", headers=bearer(WRITE_KEY)).status_code == 200
    response = keyed.post(f"{API_PREFIX}/_mutation", headers=bearer(WRITE_KEY))
    assert (response.status_code, response.json()) == (200, {"changed": True})


def test_without_keys_only_loopback_clients_are_served(tmp_path: Path) -> None:
    app = make_app(tmp_path, None)
    with TestClient(app, client=("127.0.0.1", 50000)) as local:
        assert local.get(f"{API_PREFIX}/health").status_code == 200
        assert local.post(f"{API_PREFIX}/_mutation").status_code == 200
    with TestClient(app, client=("203.0.113.7", 50000)) as remote:
        response = remote.get(f"{API_PREFIX}/health")
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "remote_forbidden"


def test_no_keys_logs_a_warning_at_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_app(tmp_path, None)
    assert any("api.no_keys" in r.getMessage() for r in caplog.records)
    caplog.clear()
    make_app(tmp_path, f"read:{READ_KEY}")
    assert not any("api.no_keys" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "value, secret",
    [
        ("admin:abc-secret-1", "abc-secret-1"),
        ("read:", None),
        ("justakey-secret-2", "justakey-secret-2"),
        ("read:ok-3,write", "ok-3"),
    ],
)
def test_malformed_api_keys_are_refused_without_echoing_them(value: str, secret: str | None) -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        Settings(api_keys=value)
    assert "must look like" in str(info.value)
    if secret:
        assert secret not in str(info.value)


def _mutations(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) of the real API that is not a read, with ids filled in."""
    found = []
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            if method.upper() not in {"GET", "HEAD", "OPTIONS"}:
                found.append((method.upper(), path.replace("{dead_letter_id}", "1").replace("{job_id}", "1")))
    return found


def test_every_mutating_endpoint_refuses_without_a_write_key(tmp_path: Path) -> None:
    app = create_app(
        Settings(
            data_dir=tmp_path,
            database_url=f"sqlite:///{tmp_path / 'api.sqlite3'}",
            encryption_key=generate_key(),
            api_keys=f"read:{READ_KEY},write:{WRITE_KEY}",
        )
    )
    mutations = _mutations(app)
    assert {m for m, _ in mutations} >= {"POST", "DELETE"}  # the replay and discard routes are there
    with TestClient(app) as client:
        for method, path in mutations:
            anonymous = client.request(method, path)
            assert anonymous.status_code == 401, (method, path)
            assert anonymous.json()["error"]["code"] == "missing_api_key"
            reader = client.request(method, path, headers=bearer(READ_KEY))
            assert reader.status_code == 403, (method, path)
            assert reader.json()["error"]["code"] == "write_scope_required"

"""Who may call the API: read and write keys, local clients without keys, the principal each acts as,
and the request guard (allowed Host, no cross-site change, a bounded body); errors in the envelope."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest
from fastapi import Depends, FastAPI, Request, WebSocket
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from typer.testing import CliRunner

from api.auth import authorize, open_bind_refusal
from api.main import API_PREFIX, create_app
from error_handling.sealing import generate_key
from function_runner.cli import app as cli
from function_runner.settings import Settings
from function_runner.settings.api import DEFAULT_API_MAX_BODY_BYTES
from function_runner.settings.api_keys import parse_api_keys
from tests.support.api_client import LOCAL_ADDRESS, REQUESTED_BY, bearer, local_client

READ_KEY = "read-key-0123456789"
WRITE_KEY = "write-key-9876543210"
NAMED_KEY = "alice-key-=:0123456789"
#: A client address that is not this machine's.
REMOTE_ADDRESS = ("203.0.113.7", 50000)
MUTATION = f"{API_PREFIX}/_mutation"
WHOAMI = f"{API_PREFIX}/_whoami"
SOCKET = f"{API_PREFIX}/_ws"
#: The socket's URL on this machine (a test client's WebSocket names testserver otherwise).
LOCAL_SOCKET = f"ws://localhost{SOCKET}"


def make_app(tmp_path: Path, api_keys: str | None, **settings: Any) -> FastAPI:
    """The real app plus a route that counts changes and one that says who the caller is."""
    app = create_app(
        Settings(
            data_dir=tmp_path,
            database_url=f"sqlite:///{tmp_path / 'api.sqlite3'}",
            encryption_key=generate_key(),
            api_keys=api_keys,
            **settings,
        )
    )
    app.state.changes = []

    @app.post(MUTATION, dependencies=[Depends(authorize)])
    async def mutation(request: Request) -> dict[str, int]:
        app.state.changes.append(await request.body())
        return {"size": len(app.state.changes[-1])}

    @app.get(WHOAMI, dependencies=[Depends(authorize)])
    def whoami(request: Request) -> dict[str, str]:
        return {"principal": request.state.principal}

    @app.websocket(SOCKET)
    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("events")
        await websocket.close()

    return app


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[TestClient]:
    app = make_app(tmp_path, f"read:{READ_KEY},write:{WRITE_KEY},alice=write:{NAMED_KEY}")
    with TestClient(app, headers=REQUESTED_BY) as client:
        yield client


def assert_refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "code", "param"}
    assert body["error"]["code"] == code


# --- keys --------------------------------------------------------------------------------------------


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
    for method, path in (("GET", f"{API_PREFIX}/health"), ("POST", MUTATION)):
        assert_refused(keyed.request(method, path, headers=headers), 401, code)


def test_read_key_reads_but_cannot_change(keyed: TestClient) -> None:
    assert keyed.get(f"{API_PREFIX}/health", headers=bearer(READ_KEY)).status_code == 200
    assert_refused(keyed.post(MUTATION, headers=bearer(READ_KEY)), 403, "write_scope_required")
    assert keyed.app.state.changes == []  # type: ignore[attr-defined]


def test_write_key_reads_and_changes(keyed: TestClient) -> None:
    assert keyed.get(f"{API_PREFIX}/health", headers=bearer(WRITE_KEY)).status_code == 200
    response = keyed.post(MUTATION, headers=bearer(WRITE_KEY))
    assert (response.status_code, response.json()) == (200, {"size": 0})


def test_the_principal_is_the_key_name_or_a_digest_never_the_key(keyed: TestClient) -> None:
    def principal(key: str) -> str:
        response = keyed.get(WHOAMI, headers=bearer(key))
        assert response.status_code == 200
        return str(response.json()["principal"])

    assert principal(NAMED_KEY) == "alice"
    assert principal(READ_KEY) == "key-" + hashlib.sha256(READ_KEY.encode()).hexdigest()[:8]
    assert principal(WRITE_KEY) == "key-" + hashlib.sha256(WRITE_KEY.encode()).hexdigest()[:8]
    assert READ_KEY not in principal(READ_KEY)


def test_keys_are_parsed_with_optional_names() -> None:
    keys = parse_api_keys(f" read:{READ_KEY} , alice=write:{NAMED_KEY},bob.ops@x=read:k=:1")
    assert {key: (grant.scope, grant.principal) for key, grant in keys.items()} == {
        READ_KEY: ("read", "key-" + hashlib.sha256(READ_KEY.encode()).hexdigest()[:8]),
        NAMED_KEY: ("write", "alice"),  # the key keeps its own '=' and ':'
        "k=:1": ("read", "bob.ops@x"),
    }


@pytest.mark.parametrize(
    "value, secret",
    [
        ("admin:abc-secret-1", "abc-secret-1"),
        ("read:", None),
        ("justakey-secret-2", "justakey-secret-2"),
        ("read:ok-3,write", "ok-3"),
        ("=write:abc-secret-4", "abc-secret-4"),
        ("local=write:abc-secret-5", "abc-secret-5"),
        ("open=read:abc-secret-6", "abc-secret-6"),
        ("key-1234abcd=read:abc-secret-7", "abc-secret-7"),
        ("al ice=read:abc-secret-8", "abc-secret-8"),
    ],
)
def test_malformed_api_keys_are_refused_without_echoing_them(value: str, secret: str | None) -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        Settings(api_keys=value)
    assert "API key entry #" in str(info.value)
    if secret:
        assert secret not in str(info.value)


# --- no keys: local clients only -----------------------------------------------------------------------


def test_without_keys_only_local_clients_are_served_as_local(tmp_path: Path) -> None:
    app = make_app(tmp_path, None)
    with local_client(app) as local:
        assert local.get(WHOAMI).json() == {"principal": "local"}
        assert local.post(MUTATION).status_code == 200
    with TestClient(app, base_url="http://localhost", client=REMOTE_ADDRESS, headers=REQUESTED_BY) as remote:
        assert_refused(remote.get(f"{API_PREFIX}/health"), 403, "remote_forbidden")
        assert_refused(remote.post(MUTATION), 403, "remote_forbidden")
    assert len(app.state.changes) == 1


def test_no_host_name_is_trusted_as_local(tmp_path: Path) -> None:
    """Only a loopback IP address is local: not the test client's name, not any other name."""
    app = make_app(tmp_path, None)
    for name in ("testclient", "localhost", "127.0.0.1.evil.example"):
        with TestClient(app, base_url="http://localhost", client=(name, 50000), headers=REQUESTED_BY) as client:
            assert_refused(client.get(WHOAMI), 403, "remote_forbidden")
            assert_refused(client.post(MUTATION), 403, "remote_forbidden")
    assert app.state.changes == []


@pytest.mark.parametrize(
    "header",
    [
        {"X-Forwarded-For": "127.0.0.1"},
        {"X-Forwarded-For": "203.0.113.7, 127.0.0.1"},
        {"Forwarded": "for=127.0.0.1"},
        {"X-Real-IP": "127.0.0.1"},
    ],
)
def test_a_request_relayed_by_a_proxy_is_not_local(tmp_path: Path, header: dict[str, str]) -> None:
    """Whatever the forwarding header says, a relayed request is not a local client: a remote client
    behind a proxy on this machine (or a server believing X-Forwarded-For) must not be served."""
    app = make_app(tmp_path, None)
    with local_client(app) as client:
        assert_refused(client.get(WHOAMI, headers=header), 403, "remote_forbidden")
        assert_refused(client.post(MUTATION, headers=header), 403, "remote_forbidden")
    assert app.state.changes == []


def test_an_open_api_serves_everyone_as_open(tmp_path: Path) -> None:
    app = make_app(tmp_path, None, api_allow_open=True, api_allowed_hosts="api.example.com")
    with TestClient(app, base_url="http://api.example.com", client=REMOTE_ADDRESS, headers=REQUESTED_BY) as client:
        assert client.get(WHOAMI).json() == {"principal": "open"}
        assert client.post(MUTATION).status_code == 200


def test_keys_win_over_the_open_setting(tmp_path: Path) -> None:
    app = make_app(tmp_path, f"read:{READ_KEY}", api_allow_open=True)
    with TestClient(app, client=REMOTE_ADDRESS) as client:
        assert_refused(client.get(WHOAMI), 401, "missing_api_key")


def test_no_keys_logs_a_warning_at_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_app(tmp_path, None)
    assert any("api.no_keys" in r.getMessage() for r in caplog.records)
    caplog.clear()
    make_app(tmp_path, None, api_allow_open=True)
    assert any("api.open" in r.getMessage() for r in caplog.records)
    caplog.clear()
    make_app(tmp_path, f"read:{READ_KEY}")
    assert not any(r.getMessage().startswith(("api.no_keys", "api.open")) for r in caplog.records)


# --- start-up refusal ----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_a_loopback_bind_needs_no_keys(host: str) -> None:
    assert open_bind_refusal(Settings(), host) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.2", "api.example.com"])
def test_a_public_bind_without_keys_is_refused_unless_keys_or_open(host: str) -> None:
    refusal = open_bind_refusal(Settings(), host)
    assert refusal is not None
    assert "FUNCTION_RUNNER_API_KEYS" in refusal and "FUNCTION_RUNNER_API_ALLOW_OPEN" in refusal
    assert open_bind_refusal(Settings(api_keys=f"read:{READ_KEY}"), host) is None
    assert open_bind_refusal(Settings(api_allow_open=True), host) is None


def test_the_api_command_refuses_a_public_bind_without_keys_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FUNCTION_RUNNER_API_KEYS", raising=False)
    monkeypatch.delenv("FUNCTION_RUNNER_API_ALLOW_OPEN", raising=False)
    result = CliRunner().invoke(cli, ["api", "--host", "0.0.0.0", "--port", "1"], env={"COLUMNS": "300"})
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "FUNCTION_RUNNER_API_KEYS" in lines[0] and "FUNCTION_RUNNER_API_ALLOW_OPEN=true" in lines[0]


# --- Host ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST"])
def test_without_keys_the_loopback_names_are_served(tmp_path: Path, host: str) -> None:
    with local_client(make_app(tmp_path, None)) as client:
        assert client.get(WHOAMI, headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.nip.io", "", "[::2]"])
def test_without_keys_another_host_is_refused_before_anything_runs(tmp_path: Path, host: str) -> None:
    """DNS rebinding: a page at evil.example whose name resolves to 127.0.0.1 is not served."""
    app = make_app(tmp_path, None)
    with local_client(app) as client:
        assert_refused(client.get(WHOAMI, headers={"Host": host}), 400, "host_not_allowed")
        assert_refused(client.post(MUTATION, headers={"Host": host}), 400, "host_not_allowed")
    assert app.state.changes == []


def test_configured_hosts_are_served_and_enforced_with_keys(tmp_path: Path) -> None:
    app = make_app(tmp_path, f"write:{WRITE_KEY}", api_allowed_hosts="api.example.com,10.0.0.5")
    with TestClient(app, client=REMOTE_ADDRESS, headers={**REQUESTED_BY, **bearer(WRITE_KEY)}) as client:
        for host in ("api.example.com", "API.example.com:443", "10.0.0.5:8000", "localhost:8000"):
            assert client.get(WHOAMI, headers={"Host": host}).status_code == 200, host
        assert_refused(client.post(MUTATION, headers={"Host": "evil.example"}), 400, "host_not_allowed")
    assert app.state.changes == []


def test_with_keys_and_no_host_list_any_host_is_served(tmp_path: Path) -> None:
    app = make_app(tmp_path, f"read:{READ_KEY}")
    with TestClient(app, base_url="http://api.example.com", client=REMOTE_ADDRESS) as client:
        assert client.get(WHOAMI, headers=bearer(READ_KEY)).status_code == 200


def test_a_star_serves_any_host_without_keys(tmp_path: Path) -> None:
    with local_client(make_app(tmp_path, None, api_allowed_hosts="*")) as client:
        assert client.get(WHOAMI, headers={"Host": "anything.example"}).status_code == 200


def test_allowed_hosts_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUNCTION_RUNNER_API_ALLOWED_HOSTS", " API.example.com, [::1] ,")
    assert Settings().api_allowed_hosts == ["api.example.com", "[::1]"]
    monkeypatch.setenv("FUNCTION_RUNNER_API_ALLOWED_HOSTS", "http://api.example.com/")
    with pytest.raises(pydantic.ValidationError, match="is not a host name"):
        Settings()


# --- cross-site requests -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers, body",
    [
        ({"Content-Type": "application/x-www-form-urlencoded"}, b"force=true"),
        ({"Content-Type": "multipart/form-data; boundary=x"}, b"--x--"),
        ({"Content-Type": "text/plain"}, b'{"force": true}'),
        ({}, b'{"force": true}'),  # fetch() of a Blob without a type: no Content-Type at all
        ({}, b""),  # a bodyless POST
    ],
)
def test_a_change_a_browser_could_send_cross_site_is_refused(
    tmp_path: Path, headers: dict[str, str], body: bytes
) -> None:
    app = make_app(tmp_path, None)
    with TestClient(app, base_url="http://localhost", client=LOCAL_ADDRESS) as client:
        assert_refused(client.post(MUTATION, headers=headers, content=body), 403, "cross_site_request")
        assert_refused(
            client.delete(f"{API_PREFIX}/dead-letters/1?reason=x", headers=headers), 403, "cross_site_request"
        )
    assert app.state.changes == []


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "application/json"},
        {"Content-Type": "Application/JSON; charset=utf-8"},
        {"X-Requested-By": "my-script"},
        {"X-Requested-By": "my-script", "Content-Type": "text/plain"},
    ],
)
def test_a_change_with_json_or_the_header_passes(tmp_path: Path, headers: dict[str, str]) -> None:
    app = make_app(tmp_path, None)
    with TestClient(app, base_url="http://localhost", client=LOCAL_ADDRESS) as client:
        assert client.post(MUTATION, headers=headers, content=b"{}").status_code == 200
    assert app.state.changes == [b"{}"]


def test_reads_need_neither(tmp_path: Path) -> None:
    with TestClient(make_app(tmp_path, None), base_url="http://localhost", client=LOCAL_ADDRESS) as client:
        assert client.get(WHOAMI).status_code == 200


# --- body size -----------------------------------------------------------------------------------------


def test_the_body_cap_defaults_to_one_mebibyte(tmp_path: Path) -> None:
    assert Settings().api_max_body_bytes == DEFAULT_API_MAX_BODY_BYTES == 1024 * 1024
    app = make_app(tmp_path, None)
    with local_client(app) as client:
        assert client.post(MUTATION, content=b"x" * DEFAULT_API_MAX_BODY_BYTES).status_code == 200
        assert_refused(client.post(MUTATION, content=b"x" * (DEFAULT_API_MAX_BODY_BYTES + 1)), 413, "body_too_large")
    assert [len(body) for body in app.state.changes] == [DEFAULT_API_MAX_BODY_BYTES]


def test_a_declared_length_over_the_cap_is_refused_before_reading(tmp_path: Path) -> None:
    app = make_app(tmp_path, None, api_max_body_bytes=10)
    with local_client(app) as client:
        response = client.post(MUTATION, content=b"x" * 5, headers={"Content-Length": "11"})
    assert_refused(response, 413, "body_too_large")
    assert app.state.changes == []


def test_a_streamed_body_is_counted_as_it_arrives(tmp_path: Path) -> None:
    """A chunked body declares no length: it is refused once more than the cap has arrived."""
    app = make_app(tmp_path, None, api_max_body_bytes=10)

    def chunks(count: int) -> Iterator[bytes]:
        yield from (b"abcd" for _ in range(count))

    with local_client(app) as client:
        assert client.post(MUTATION, content=chunks(2)).json() == {"size": 8}
        assert_refused(client.post(MUTATION, content=chunks(3)), 413, "body_too_large")
    assert app.state.changes == [b"abcdabcd"]


# --- docs and schema -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/docs", "/openapi.json"])
def test_docs_and_schema_follow_the_read_scope(keyed: TestClient, path: str) -> None:
    assert_refused(keyed.get(path), 401, "missing_api_key")
    assert keyed.get(path, headers=bearer(READ_KEY)).status_code == 200
    assert keyed.get("/redoc", headers=bearer(READ_KEY)).status_code == 404


@pytest.mark.parametrize("path", ["/docs", "/openapi.json"])
def test_docs_and_schema_without_keys_are_local_only(tmp_path: Path, path: str) -> None:
    app = make_app(tmp_path, None)
    with local_client(app) as client:
        assert client.get(path).status_code == 200
    with TestClient(app, base_url="http://localhost", client=REMOTE_ADDRESS) as remote:
        assert_refused(remote.get(path), 403, "remote_forbidden")


# --- every real mutation -------------------------------------------------------------------------------


def _mutations(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) of the real API that is not a read, with ids filled in."""
    found = []
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            if method.upper() not in {"GET", "HEAD", "OPTIONS"}:
                filled = path.replace("{dead_letter_id}", "1").replace("{job_id}", "1").replace("{service}", "s")
                found.append((method.upper(), filled))
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
    with TestClient(app, headers=REQUESTED_BY) as client:
        for method, path in mutations:
            assert_refused(client.request(method, path), 401, "missing_api_key")
            assert_refused(client.request(method, path, headers=bearer(READ_KEY)), 403, "write_scope_required")


def test_every_mutating_endpoint_refuses_a_cross_site_request_without_keys(tmp_path: Path) -> None:
    app = make_app(tmp_path, None)
    with TestClient(app, base_url="http://localhost", client=LOCAL_ADDRESS) as client:
        for method, path in _mutations(app):
            response = client.request(method, path, headers={"Content-Type": "text/plain"}, content=b"{}")
            assert_refused(response, 403, "cross_site_request")
    assert app.state.changes == []


# --- WebSockets ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("origin", [None, "http://localhost:3000", "http://127.0.0.1:8000"])
def test_a_websocket_from_this_machine_opens(tmp_path: Path, origin: str | None) -> None:
    headers = {"Origin": origin} if origin else {}
    with (
        local_client(make_app(tmp_path, None)) as client,
        client.websocket_connect(LOCAL_SOCKET, headers=headers) as ws,
    ):
        assert ws.receive_text() == "events"


@pytest.mark.parametrize("headers", [{"Origin": "http://evil.example"}, {"Origin": "null"}, {"Host": "evil.example"}])
def test_a_websocket_from_another_site_is_closed_before_it_opens(tmp_path: Path, headers: dict[str, str]) -> None:
    """A browser opens a WebSocket to any site without asking: the Origin it sends decides."""
    with (
        local_client(make_app(tmp_path, None)) as client,
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect(LOCAL_SOCKET, headers=headers),
    ):
        pass
    assert closed.value.code == 1008


# --- how the command runs uvicorn ----------------------------------------------------------------------


def _uvicorn_arguments(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Any]:
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(kwargs))
    for name in ("FUNCTION_RUNNER_API_KEYS", "FUNCTION_RUNNER_API_FORWARDED_ALLOW_IPS"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(cli, ["api", "--port", "1"], env=env)
    assert result.exit_code == 0, result.output
    (kwargs,) = calls
    return kwargs


def test_the_api_command_ignores_proxy_headers_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    kwargs = _uvicorn_arguments(monkeypatch, FORWARDED_ALLOW_IPS="*")
    assert kwargs["proxy_headers"] is False
    assert kwargs["host"] == "127.0.0.1"
    assert all("redact" in handler["filters"] for handler in kwargs["log_config"]["handlers"].values())


def test_the_api_command_believes_only_the_configured_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    kwargs = _uvicorn_arguments(monkeypatch, FUNCTION_RUNNER_API_FORWARDED_ALLOW_IPS="10.0.0.2")
    assert (kwargs["proxy_headers"], kwargs["forwarded_allow_ips"]) == (True, "10.0.0.2")

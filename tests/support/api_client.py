"""Clients of the error API for tests.

With no key configured the API serves only local clients; :func:`local_client` is one: its requests come
from 127.0.0.1 (the transport address the API checks), name ``localhost`` as their host, and say
``X-Requested-By`` so changes without a JSON body pass the cross-site check, as a script's would.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support import services

#: The transport address of a client on this machine.
LOCAL_ADDRESS = ("127.0.0.1", 50000)
#: The base URL a local client calls.
LOCAL_URL = "http://localhost"
#: The header a script sends with its changes (see ``api.guards``).
REQUESTED_BY = {"X-Requested-By": "function-runner-tests"}


def local_client(app: FastAPI, *, headers: dict[str, str] | None = None, **kwargs: Any) -> TestClient:
    """A TestClient that calls ``app`` as a local client (use it as a context manager to run the lifespan);
    ``headers`` are sent with every request besides ``X-Requested-By`` (e.g. :func:`bearer`)."""
    return TestClient(
        app, base_url=LOCAL_URL, client=LOCAL_ADDRESS, headers={**REQUESTED_BY, **(headers or {})}, **kwargs
    )


def bearer(key: str) -> dict[str, str]:
    """The header that presents an API key."""
    return {"Authorization": f"Bearer {key}"}


def non_loopback_address() -> str:
    """An IPv4 address of this machine that is not loopback, for a client that looks remote to a server
    bound on it. Skips (locally) or fails (in CI) when the machine has none.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # a documentation address: picks the outgoing interface, sends nothing
            address = str(probe.getsockname()[0])
        except OSError:
            address = ""
    if address and not address.startswith("127."):
        return address
    message = "this machine has no IPv4 address other than loopback"
    if services.IN_CI:
        pytest.fail(f"{message}; CI must provide one", pytrace=False)
    pytest.skip(message)

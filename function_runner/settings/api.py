"""The error API: its keys, the clients and host names it serves, the largest body it reads, its proxies."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from error_handling.exceptions import ConfigurationError
from function_runner.settings.api_keys import parse_api_keys
from function_runner.settings.group import AtLeastOne, SettingsGroup

#: The largest request body the API reads by default: 1 MiB.
DEFAULT_API_MAX_BODY_BYTES = 1024 * 1024
#: A host name, an IPv4 address, a bracketed IPv6 address, or ``*``.
ALLOWED_HOST = re.compile(r"^(\*|[A-Za-z0-9_.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])$")


class ApiSettings(SettingsGroup):
    """Who the API answers, and how much it reads."""

    api_keys: SecretStr | None = None
    """API keys of the error API, comma-separated 'scope:key' or 'NAME=scope:key' entries with scope read or
    write (write implies read); NAME is who the key belongs to, as the audit trail shows it. Unset: the API
    answers only local clients (the loopback address, no proxy in between)."""
    api_allow_open: bool = False
    """With no api_keys: serve every client, remote ones included, without a key (an open API; list the names
    it is reached by in api_allowed_hosts). Ignored when api_keys is set."""
    api_allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Host names the API answers to (the Host header, any port), comma-separated; '*' for any. The loopback
    names localhost, 127.0.0.1 and [::1] are always allowed. Empty: only those when no api_keys are set, any
    host when they are."""
    api_max_body_bytes: AtLeastOne = DEFAULT_API_MAX_BODY_BYTES
    """Largest request body the API reads (bytes); a larger one is refused (413) before it is parsed."""
    api_forwarded_allow_ips: str | None = None
    """Addresses of the reverse proxies whose X-Forwarded-For/-Proto headers `function-runner api` believes
    (uvicorn's forwarded_allow_ips, comma-separated, '*' for any). Unset: proxy headers are ignored."""

    @field_validator("api_keys")
    @classmethod
    def _check_api_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_api_keys(value.get_secret_value())
        return value

    @field_validator("api_allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):  # from the environment: comma-separated
            return [host.strip() for host in value.split(",") if host.strip()]
        return value

    @field_validator("api_allowed_hosts")
    @classmethod
    def _check_hosts(cls, value: list[str]) -> list[str]:
        for host in value:
            if not ALLOWED_HOST.match(host):
                raise ConfigurationError(
                    f"{host!r} is not a host name: write e.g. api.example.com, 10.0.0.5, [::1] or *"
                )
        return [host.lower() for host in value]

    @field_validator("api_forwarded_allow_ips")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

"""Rules for network failures that no retry fixes: a TLS certificate that does not verify (expired,
self-signed, for another host, an unknown issuer) and a redirect loop. Both stay until someone changes
the deployment (a CA bundle, a proxy, a URL), so they are permanent ``invalid_configuration``. Names only:
this module imports no library.

Most clients raise a certificate failure as their connection error, which is otherwise transient; the
message names it (``[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: ...``), so
:data:`NETWORK_MESSAGE_RULES` read it on those classes, before their own entry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from error_handling.rules.outcome import MessageRule, Outcome, Outcomes

#: Exceptions by qualified name.
NETWORK_EXCEPTION_RULES: Mapping[str, Outcome] = MappingProxyType(
    {
        "ssl.SSLCertVerificationError": Outcomes.CONFIGURATION,
        "aiohttp.client_exceptions.ClientConnectorCertificateError": Outcomes.CONFIGURATION,
        "httpx.TooManyRedirects": Outcomes.CONFIGURATION,
        "requests.exceptions.TooManyRedirects": Outcomes.CONFIGURATION,
        "aiohttp.client_exceptions.TooManyRedirects": Outcomes.CONFIGURATION,
        "urllib3.exceptions.LocationParseError": Outcomes.CONFIGURATION,
    }
)

#: The connection errors (of the standard library and of clients) that report a certificate failure.
_TLS_CARRIERS = frozenset(
    {
        "ssl.SSLError",
        "urllib.error.URLError",
        "httpx.ConnectError",
        "httpx.ProxyError",
        "httpcore.ConnectError",
        "requests.exceptions.SSLError",
        "requests.exceptions.ConnectionError",
        "urllib3.exceptions.SSLError",
        "urllib3.exceptions.MaxRetryError",
        "aiohttp.client_exceptions.ClientConnectorError",
        "aiohttp.client_exceptions.ClientSSLError",
        "botocore.exceptions.SSLError",
        "redis.exceptions.ConnectionError",
        "kombu.exceptions.OperationalError",
    }
)

#: Rules on messages.
NETWORK_MESSAGE_RULES: tuple[MessageRule, ...] = (
    MessageRule(
        "tls_verification_failed",
        re.compile(r"CERTIFICATE_VERIFY_FAILED|certificate verify failed", re.IGNORECASE),
        Outcomes.CONFIGURATION,
        _TLS_CARRIERS,
    ),
)

"""Cohere and Mistral error shapes, each as its SDK raises it: Cohere's generated ``ApiError`` subclasses
(``status_code``, ``headers``, ``body``), Mistral's ``SDKError`` (message ``API error occurred: Status N.
Body: ...``, the body as text). Each row cites where the shape is documented or seen."""

from __future__ import annotations

import json
from typing import Any

from error_handling.categories import Reason
from tests.corpus.shape import P, R, Shape, T, V, foreign, response, shapes_of, with_attrs

COHERE_ERRORS = "https://docs.cohere.com/reference/errors"

# --- Cohere ---------------------------------------------------------------------------------------------

#: The cohere SDK's class for each status (cohere/errors/*.py; others raise ApiError itself).
_COHERE_CLASS = {
    400: "bad_request_error.BadRequestError",
    401: "unauthorized_error.UnauthorizedError",
    403: "forbidden_error.ForbiddenError",
    404: "not_found_error.NotFoundError",
    422: "unprocessable_entity_error.UnprocessableEntityError",
    429: "too_many_requests_error.TooManyRequestsError",
    499: "client_closed_request_error.ClientClosedRequestError",
    500: "internal_server_error.InternalServerError",
    503: "service_unavailable_error.ServiceUnavailableError",
}


def cohere_error(status: int, message: str) -> BaseException:
    """Cohere's error for ``status``: ``ApiError.__str__`` shows headers, status and body."""
    base = foreign("cohere.core.api_error.ApiError")
    name = _COHERE_CLASS.get(status)
    cls = foreign(f"cohere.errors.{name}", base) if name else base
    headers = {"content-type": "application/json"}
    body = {"message": message}
    exc = cls(f"headers: {headers}, status_code: {status}, body: {body}")
    return with_attrs(exc, status_code=status, headers=headers, body=body)


def _co(status: int, message: str) -> Any:
    return lambda: cohere_error(status, message)


_TRIAL = (
    "You are using a Trial key, which is limited to {} API calls / minute. You can continue to use the Trial key "
    "for free or upgrade to a Production key with higher rate limits at 'https://dashboard.cohere.com/api-keys'. "
    "Contact us on 'https://discord.gg/XW44jPfYJu' or email us at support@cohere.com with any questions"
)

# --- Mistral --------------------------------------------------------------------------------------------


def mistral_error(status: int, body: str, content_type: str = "application/json") -> BaseException:
    """mistralai's ``SDKError`` (``mistralai.client.errors``): ``API error occurred: Status N. Body: <text>``
    (a content type other than ``application/json`` is named, quoted when it has a space)."""
    base = foreign("mistralai.client.errors.mistralerror.MistralError")
    cls = foreign("mistralai.client.errors.sdkerror.SDKError", base)
    reply = response(status, body, {"content-type": content_type}, url="https://api.mistral.ai/v1/chat/completions")
    named = (
        ""
        if content_type == "application/json"
        else f' Content-Type "{content_type}"'
        if " " in content_type
        else f" Content-Type {content_type}"
    )
    exc = cls(f"API error occurred: Status {status}{named}. Body: {body}")
    return with_attrs(exc, message=str(exc), status_code=status, body=body, headers=reply.headers, raw_response=reply)


def _mi(status: int, body: str, content_type: str = "application/json") -> Any:
    return lambda: mistral_error(status, body, content_type)


SHAPES: list[Shape] = [
    *shapes_of(
        "cohere",
        COHERE_ERRORS,
        [
            (
                "cohere:documents_empty",
                _co(400, "invalid request: list of documents must not be empty"),
                V,
                Reason.INVALID_INPUT,
            ),
            *(
                (
                    "cohere:too_many_texts",
                    _co(400, f"invalid request: total number of texts must be at most 96 - received {n}"),
                    V,
                    Reason.INVALID_INPUT,
                )
                for n in (104, 250)
            ),
            *(
                (
                    "cohere:prompt_too_many_tokens",
                    _co(
                        400,
                        f"too many tokens: total number of tokens in the prompt cannot exceed {limit} - received {got}. Try using a shorter prompt, or enabling prompt truncating. See https://docs.cohere.com/reference/generate for more details.",
                    ),
                    V,
                    Reason.PAYLOAD_TOO_LARGE,
                )
                for limit, got in ((4081, 4292), (4081, 5120))
            ),
            (
                "cohere:size_limit_exceeded",
                _co(
                    400,
                    "too many tokens: size limit exceeded by 11326 tokens. Try using shorter or fewer inputs, or setting prompt_truncation='AUTO'.",
                ),
                V,
                Reason.PAYLOAD_TOO_LARGE,
            ),
            ("cohere:invalid_api_token", _co(401, "invalid api token"), P, Reason.AUTH_FAILED),
            ("cohere:no_api_key", _co(401, "no api key supplied"), P, Reason.AUTH_FAILED),
            (
                "cohere:payment_method",
                _co(
                    402,
                    "Please add or update your payment method at https://dashboard.cohere.com/billing?tab=payment to continue",
                ),
                R,
                Reason.QUOTA_EXCEEDED,
            ),
            *(
                (
                    "cohere:model_not_found",
                    _co(
                        404,
                        f"model '{model}' not found, make sure the correct model ID was used and that you have access to the model.",
                    ),
                    P,
                    Reason.NOT_FOUND,
                )
                for model in ("xyz", "command-r7b-99-2099")
            ),
            *(("cohere:trial_key_rate_limit", _co(429, _TRIAL.format(n)), T, Reason.RATE_LIMITED) for n in (40, 10)),
            (
                "cohere:per_minute_limit",
                _co(429, "You are past the per minute request limit, please wait and try again later."),
                T,
                Reason.RATE_LIMITED,
            ),
            *(
                (
                    "cohere:trial_token_rate_limit",
                    _co(429, f"trial token rate limit exceeded, limit is {n} tokens per minute"),
                    T,
                    Reason.RATE_LIMITED,
                )
                for n in (100000, 50000)
            ),
            ("cohere:request_cancelled", _co(499, "request cancelled"), T, Reason.SERVICE_UNAVAILABLE),
            (
                "cohere:rerank_cancelled",
                _co(499, "failed to get rerank inference: request cancelled"),
                T,
                Reason.SERVICE_UNAVAILABLE,
            ),
        ],
    ),
    # --- Mistral ------------------------------------------------------------------------------------------
    *shapes_of(
        "mistral",
        "https://github.com/pydantic/pydantic-ai/issues/1885",
        [
            (
                "mistral:requests_rate_limit",
                _mi(429, '{"message":"Requests rate limit exceeded"}'),
                T,
                Reason.RATE_LIMITED,
            )
        ],
    ),
    *shapes_of(
        "mistral",
        "https://github.com/cline/cline/issues/9085",
        [
            (
                "mistral:rate_limited",
                _mi(
                    429,
                    '{"object":"error","message":"Rate limit exceeded","type":"rate_limited","param":null,"code":"1300"}',
                ),
                T,
                Reason.RATE_LIMITED,
            )
        ],
    ),
    *shapes_of(
        "mistral",
        "https://github.com/coolcline/CoolCline/issues/36",
        [
            (
                "mistral:unauthorized",
                _mi(
                    401,
                    json.dumps({"message": "Unauthorized", "request_id": request_id}, separators=(",", ":")),
                    "application/json; charset=utf-8",
                ),
                P,
                Reason.AUTH_FAILED,
            )
            for request_id in ("933f233947ff6d346065bb297e4a4d56", "5b1e0c7d2a9f4e86b3c1d0a7f6e2b4c9")
        ],
    ),
    *shapes_of(
        "mistral",
        "https://github.com/agent0ai/agent-zero/issues/539",
        [("mistral:detail_unauthorized", _mi(401, '{"detail":"Unauthorized"}'), P, Reason.AUTH_FAILED)],
    ),
    *shapes_of(
        "mistral",
        "https://github.com/mistralai/mistral-vibe/issues/617",
        [
            (
                "mistral:invalid_model",
                _mi(
                    400,
                    json.dumps(
                        {
                            "object": "error",
                            "message": f"Invalid model: {model}",
                            "type": "invalid_model",
                            "param": None,
                            "code": "1500",
                        },
                        separators=(",", ":"),
                    ),
                ),
                V,
                Reason.INVALID_INPUT,
            )
            for model in ("mistral-medium-3.5", "API")
        ],
    ),
]

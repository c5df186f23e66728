"""Hugging Face error shapes: huggingface_hub's ``HfHubHTTPError`` (built by ``hf_raise_for_status``: httpx's
message, the request id, the server's message) and its subclasses, and the Text Generation Inference errors
``InferenceClient`` raises from them. Each row cites where the shape is documented or seen.

PENDING (hints helper): the shapes marked ``# PENDING hint`` state their retry hint in the body (the Inference
API's ``estimated_time``) or only in the IETF ``ratelimit`` header and in prose ("Retry after 55 seconds");
they pass once the body and prose hint parsers are merged."""

from __future__ import annotations

from typing import Any

import httpx

from error_handling.categories import Reason
from tests.corpus.shape import P, Shape, T, V, foreign, raised, response, shapes_of, with_attrs

HF_HTTP = "https://github.com/huggingface/huggingface_hub/blob/main/src/huggingface_hub/utils/_http.py"
HF_COMMON = "https://github.com/huggingface/huggingface_hub/blob/main/src/huggingface_hub/inference/_common.py"

# --- Hugging Face ---------------------------------------------------------------------------------------

HF_HTTP_ERROR = foreign("huggingface_hub.errors.HfHubHTTPError", httpx.HTTPError, OSError)


def hf_error(
    status: int,
    body: Any,
    *,
    url: str,
    headers: dict[str, str] | None = None,
    cls: type[Exception] = HF_HTTP_ERROR,
    message: str | None = None,
) -> BaseException:
    """What ``hf_raise_for_status`` raises: ``message`` (default httpx's own), the request id after its first
    line, the server's message (the body's ``error``) after a blank line."""
    reply = response(
        status, body, {"x-request-id": "Root=1-6745f0a2-3b1c5e0f2d7a4c6b1e9f8a7d", **(headers or {})}, url=url
    )
    if message is None:
        try:
            reply.raise_for_status()
        except httpx.HTTPStatusError as exc:
            message = str(exc)
    assert message is not None
    server = body.get("error") if isinstance(body, dict) else None
    if server and server.lower() not in message.lower():
        message += ("\n" if "\n\n" in message else "\n\n") + server
    request_id = f" (Request ID: {reply.headers['x-request-id']})"
    first = message.find("\n")
    message = message + request_id if first < 0 else message[:first] + request_id + message[first:]
    exc = cls(message.strip())
    return with_attrs(
        exc, response=reply, request=reply.request, request_id=reply.headers["x-request-id"], server_message=server
    )


def _loading(model: str, estimated: float) -> Any:
    url = f"https://api-inference.huggingface.co/models/{model}"
    return lambda: hf_error(503, {"error": f"Model {model} is currently loading", "estimated_time": estimated}, url=url)


def _tgi(cls_name: str, status: int, error: str, error_type: str, model: str = "bigcode/starcoder") -> Any:
    """A Text Generation Inference error, raised from the HfHubHTTPError of its response."""

    def make() -> BaseException:
        url = f"https://router.huggingface.co/hf-inference/models/{model}"
        cause = hf_error(status, {"error": error, "error_type": error_type}, url=url)
        base = foreign("huggingface_hub.errors.TextGenerationError", httpx.HTTPError)
        return raised(foreign(f"huggingface_hub.errors.{cls_name}", base)(error), cause=cause)

    return make


def _hub_rate_limit(remaining: int, reset: int) -> Any:
    def make() -> BaseException:
        url = "https://huggingface.co/api/models/meta-llama/Llama-3.1-8B-Instruct/revision/main"
        message = (
            "\n\n429 Too Many Requests: you have reached your 'api' rate limit."
            f"\nRetry after {reset} seconds ({remaining}/500 requests remaining in current 300s window)."
            f"\nUrl: {url}."
        )
        headers = {
            "ratelimit": f'"api";r={remaining};t={reset}',
            "ratelimit-policy": '"fixed window";"api";q=500;w=300',
        }
        return hf_error(429, {"error": "Too Many Requests"}, url=url, headers=headers, message=message)

    return make


def _gated(repo: str) -> Any:
    def make() -> BaseException:
        url = f"https://huggingface.co/{repo}/resolve/main/config.json"
        cls = foreign(
            "huggingface_hub.errors.GatedRepoError",
            foreign("huggingface_hub.errors.RepositoryNotFoundError", HF_HTTP_ERROR),
        )
        error = f"Access to model {repo} is restricted and you are not in the authorized list. Visit https://huggingface.co/{repo} to ask for access."
        message = f"403 Client Error.\n\nCannot access gated repo for url {url}."
        return hf_error(403, {"error": error}, url=url, headers={"x-error-code": "GatedRepo"}, cls=cls, message=message)

    return make


SHAPES: list[Shape] = [
    *shapes_of(
        "huggingface",
        "https://github.com/huggingface/transformers/issues/23793",
        [
            # PENDING hint: estimated_time in the body (the hints helper's body parser)
            (
                "huggingface:model_loading",
                _loading("deepset/roberta-base-squad2", 20.0),
                T,
                Reason.SERVICE_UNAVAILABLE,
                20.0,
            ),
            (
                "huggingface:model_loading",
                _loading("deepset/roberta-base-squad2", 300.8891906738281),
                T,
                Reason.SERVICE_UNAVAILABLE,
                300.8891906738281,
            ),
        ],
    ),
    *shapes_of(
        "huggingface",
        "https://github.com/ela-codes/vibin/issues/2",
        # PENDING hint: estimated_time in the body
        [
            (
                "huggingface:model_loading_emotion",
                _loading("mrm8488/t5-base-finetuned-emotion", 35.6677131652832),
                T,
                Reason.SERVICE_UNAVAILABLE,
                35.6677131652832,
            )
        ],
    ),
    *shapes_of(
        "huggingface",
        "https://github.com/huggingface/huggingface_hub/issues/3033",
        [
            (
                "huggingface:service_unavailable",
                lambda: hf_error(503, "", url="https://router.huggingface.co/hf-inference/models/google/gemma-2b"),
                T,
                Reason.SERVICE_UNAVAILABLE,
            )
        ],
    ),
    *shapes_of(
        "huggingface",
        HF_HTTP,
        [
            # PENDING hint: stated in the IETF "ratelimit" header and in prose ("Retry after N seconds")
            *(
                ("huggingface:hub_rate_limit", _hub_rate_limit(0, reset), T, Reason.RATE_LIMITED, float(reset))
                for reset in (55, 212)
            ),
            ("huggingface:gated_repo", _gated("meta-llama/Llama-2-7b-hf"), P, Reason.AUTH_FAILED),
            (
                "huggingface:repo_not_found",
                lambda: hf_error(
                    404,
                    {"error": "Repository not found"},
                    url="https://huggingface.co/api/models/acme/does-not-exist",
                    headers={"x-error-code": "RepoNotFound"},
                    cls=foreign("huggingface_hub.errors.RepositoryNotFoundError", HF_HTTP_ERROR),
                    message=(
                        "404 Client Error.\n\nRepository Not Found for url: https://huggingface.co/api/models/acme/does-not-exist."
                        "\nPlease make sure you specified the correct `repo_id` and `repo_type`.\nIf you are trying to access a private or gated repo, "
                        "make sure you are authenticated and your token has the required permissions.\nFor more details, see https://huggingface.co/docs/huggingface_hub/authentication"
                    ),
                ),
                P,
                Reason.NOT_FOUND,
            ),
        ],
    ),
    *shapes_of(
        "huggingface",
        "https://github.com/huggingface/huggingface_hub/issues/1735",
        [
            (
                "huggingface:tgi_input_too_long",
                _tgi(
                    "ValidationError",
                    422,
                    f"Input validation error: `inputs` tokens + `max_new_tokens` must be <= 8192. Given: {got} `inputs` tokens and 20 `max_new_tokens`",
                    "validation",
                ),
                V,
                Reason.PAYLOAD_TOO_LARGE,
            )
            for got in (37500, 9001)
        ],
    ),
    *shapes_of(
        "huggingface",
        HF_COMMON,
        [
            (
                "huggingface:tgi_invalid_temperature",
                _tgi(
                    "ValidationError",
                    422,
                    "Input validation error: `temperature` must be strictly positive",
                    "validation",
                ),
                V,
                Reason.INVALID_INPUT,
            ),
            (
                "huggingface:tgi_overloaded",
                _tgi("OverloadedError", 429, "Model is overloaded", "overloaded"),
                T,
                Reason.RATE_LIMITED,
            ),
            (
                "huggingface:inference_timeout",
                lambda: raised(
                    foreign("huggingface_hub.errors.InferenceTimeoutError", httpx.HTTPError, TimeoutError)(
                        "Inference call timed out: https://router.huggingface.co/hf-inference/models/google/gemma-2b"
                    ),
                    cause=httpx.ReadTimeout("timed out"),
                ),
                T,
                Reason.TIMEOUT,
            ),
        ],
    ),
]

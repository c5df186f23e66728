"""Error shapes of OpenAI-compatible servers (vLLM, Ollama, Groq, Together, OpenRouter, DeepSeek, xAI) as the
openai SDK raises them (each server's own body shape), and Ollama's own client. Each row cites the public
issue (or source) the shape is taken from.

PENDING (hints helper): the Groq rows marked ``# PENDING hint`` state their wait only in prose ("Please try
again in 50.597142857s", "1m0.363142857s"); they pass once the prose hint parser is merged."""

from __future__ import annotations

from typing import Any

from error_handling.categories import Reason
from tests.corpus.providers_openai import openai_error
from tests.corpus.shape import P, R, Shape, T, V, foreign, shapes_of, with_attrs

FAMILY = "openai_compatible"


def _e(status: int, body: Any, headers: dict[str, str] | None = None) -> Any:
    return lambda: openai_error(status, body, headers)


def _err(message: str, type_: str | None, code: str | int | None, param: str | None = None) -> Any:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _vllm(message: str, type_: str, code: int) -> Any:
    """vLLM's error body (``ErrorResponse``): the error object itself, not nested."""
    return {"object": "error", "message": message, "type": type_, "param": None, "code": code}


def ollama_error(error: str, status: int) -> BaseException:
    """ollama-python's ``ResponseError``: the server's ``error`` text and the status."""
    return with_attrs(foreign("ollama._types.ResponseError")(error), error=error, status_code=status)


_GROQ_TPM = (
    "Rate limit reached for model `{model}` in organization `{org}` on tokens per minute (TPM): Limit {limit}, Used {used}, "
    "Requested {requested}. Please try again in {wait}. Visit https://console.groq.com/docs/rate-limits for more information."
)
_GROQ_TOO_LARGE = (
    "Request too large for model `llama-3.1-8b-instant` in organization `{org}` service tier `on_demand` on tokens per minute "
    "(TPM): Limit 6000, Requested {requested}, please reduce your message size and try again. Need more tokens? Upgrade to "
    "Dev Tier today at https://console.groq.com/settings/billing"
)
_CONTEXT = (
    "This model's maximum context length is {limit} tokens. However, you requested {total} tokens ({messages} in the messages, "
    "{completion} in the completion). Please reduce the length of the messages or completion."
)
_XAI = (
    "Your team {team} has either used all available credits or reached its monthly spending limit. To continue making API "
    "requests, please purchase more credits or raise your spending limit."
)


def _groq_tpm(model: str, org: str, limit: int, used: int, requested: str, wait: str) -> Any:
    message = _GROQ_TPM.format(model=model, org=org, limit=limit, used=used, requested=requested, wait=wait)
    return _e(429, _err(message, "tokens", "rate_limit_exceeded"))


SHAPES: list[Shape] = [
    # --- vLLM -------------------------------------------------------------------------------------------
    *shapes_of(
        FAMILY,
        "https://github.com/vllm-project/vllm/issues/20409",
        [
            (
                "openai_compatible:vllm_context_length",
                _e(
                    400,
                    _vllm(
                        _CONTEXT.format(limit=16384, total=total, messages=total - 10000, completion=10000) + " None",
                        "BadRequestError",
                        400,
                    ),
                ),
                V,
                Reason.PAYLOAD_TOO_LARGE,
            )
            for total in (19591, 122946)
        ],
    ),
    *shapes_of(
        FAMILY,
        "https://github.com/vllm-project/vllm/issues/3485",
        [
            (
                "openai_compatible:vllm_model_not_found",
                _e(404, _vllm(f"The model `{model}` does not exist.", "NotFoundError", 404)),
                P,
                Reason.NOT_FOUND,
            )
            for model in ("Qwen1.5-14B-Chat-GPTQ-Int8", "/data/Qwen1.5-72B-Chat")
        ],
    ),
    # --- Ollama -------------------------------------------------------------------------------------------
    *shapes_of(
        FAMILY,
        "https://github.com/ollama/ollama-python/blob/main/ollama/_types.py",
        [
            (
                "openai_compatible:ollama_model_not_found",
                lambda model=model: ollama_error(f'model "{model}" not found, try pulling it first', 404),
                P,
                Reason.NOT_FOUND,
            )
            for model in ("llama3", "qwen2.5:7b")
        ],
    ),
    *shapes_of(
        FAMILY,
        "https://github.com/continuedev/continue/issues/11715",
        [
            (
                "openai_compatible:ollama_needs_more_memory",
                _e(
                    500,
                    _err(
                        f"model requires more system memory ({need} GiB) than is available ({have} GiB)",
                        "api_error",
                        None,
                    ),
                ),
                R,
                Reason.OUT_OF_MEMORY,
            )
            for need, have in (("5.0", "3.9"), ("7.5", "5.2"))
        ],
    ),
    # --- Groq -------------------------------------------------------------------------------------------
    *shapes_of(
        FAMILY,
        "https://github.com/danielmiessler/Fabric/issues/364",
        [
            # PENDING hint: in prose only
            (
                "openai_compatible:groq_tpm",
                _groq_tpm("llama3-70b-8192", "org_01hrsvc1b8ey0anvbgha0xckf2", 7000, 0, "~12903", "50.597142857s"),
                T,
                Reason.RATE_LIMITED,
                50.597142857,
            ),
        ],
    ),
    *shapes_of(
        FAMILY,
        "https://github.com/OpenHands/OpenHands/pull/4167",
        [
            # PENDING hint: in prose only, a Go-style duration
            (
                "openai_compatible:groq_tpm",
                _groq_tpm("llama-3.2-90b-text-preview", "org_xxx", 7000, used, "7895", wait),
                T,
                Reason.RATE_LIMITED,
                hint,
            )
            for used, wait, hint in ((6148, "1m0.363142857s", 60.363142857), (0, "7.671428571s", 7.671428571))
        ],
    ),
    *shapes_of(
        FAMILY,
        "https://github.com/HunorLaczko/ha-groq-cloud-api/issues/27",
        [
            (
                "openai_compatible:groq_request_too_large",
                _e(413, _err(_GROQ_TOO_LARGE.format(org=org, requested=requested), "tokens", "rate_limit_exceeded")),
                V,
                Reason.PAYLOAD_TOO_LARGE,
            )
            for org, requested in (("org_xxxxxxx", 12328), ("org_01kw3t4t1ke018w1a90cd42bys", 36114))
        ],
    ),
    # --- Together ---------------------------------------------------------------------------------------
    *shapes_of(
        FAMILY,
        "https://github.com/e-p-armstrong/augmentoolkit/issues/5",
        [
            (
                "openai_compatible:together_free_qps",
                _e(
                    429,
                    _err(
                        "Request was rejected due to rate limiting. As a free user, your QPS is 1. If you want more, please upgrade your account.",
                        "credit_limit",
                        None,
                    ),
                ),
                T,
                Reason.RATE_LIMITED,
            )
        ],
    ),
    # --- OpenRouter -------------------------------------------------------------------------------------
    *shapes_of(
        FAMILY,
        "https://github.com/open-assistant-org/open-assistant/issues/80",
        [
            (
                "openai_compatible:openrouter_insufficient_credits",
                _e(
                    402,
                    {
                        "error": {
                            "message": "Insufficient credits. Add more using https://openrouter.ai/settings/credits",
                            "code": 402,
                            "metadata": {
                                "limit_source": "openrouter_credits",
                                "remedy_hint": "Add credits at https://openrouter.ai/settings/credits, or lower max_tokens / prompt size to fit your remaining balance.",
                            },
                        }
                    },
                ),
                R,
                Reason.QUOTA_EXCEEDED,
            )
        ],
    ),
    *shapes_of(
        FAMILY,
        "https://github.com/Gitlawb/openclaude/issues/43",
        [
            (
                "openai_compatible:openrouter_never_purchased",
                _e(
                    402,
                    {
                        "error": {
                            "message": "Insufficient credits. This account never purchased credits. Make sure your key is on the correct account or org, and if so, purchase more at https://openrouter.ai/settings/credits",
                            "code": 402,
                        }
                    },
                ),
                R,
                Reason.QUOTA_EXCEEDED,
            )
        ],
    ),
    *shapes_of(
        FAMILY,
        "https://github.com/QwenLM/qwen-code/issues/73",
        [
            (
                "openai_compatible:openrouter_more_credits",
                _e(
                    402,
                    {
                        "error": {
                            "message": f"This request requires more credits, or fewer max_tokens. You requested up to {asked} tokens, but can only afford {afford}. To increase, visit https://openrouter.ai/settings/credits and add more credits",
                            "code": 402,
                        }
                    },
                ),
                R,
                Reason.QUOTA_EXCEEDED,
            )
            for asked, afford in ((225702, 92985), (64000, 1200))
        ],
    ),
    # --- DeepSeek ---------------------------------------------------------------------------------------
    *shapes_of(
        FAMILY,
        "https://github.com/continuedev/continue/issues/9942",
        [
            (
                "openai_compatible:deepseek_insufficient_balance",
                _e(402, _err("Insufficient Balance", None, None)),
                R,
                Reason.QUOTA_EXCEEDED,
            )
        ],
    ),
    *shapes_of(
        FAMILY,
        "https://github.com/evalstate/fast-agent/issues/621",
        [
            (
                "openai_compatible:deepseek_context_length",
                _e(
                    400,
                    _err(
                        _CONTEXT.format(limit=131072, total=total, messages=total - 8192, completion=8192),
                        "invalid_request_error",
                        "invalid_request_error",
                    ),
                ),
                V,
                Reason.PAYLOAD_TOO_LARGE,
            )
            for total in (131134, 140020)
        ],
    ),
    # --- xAI ----------------------------------------------------------------------------------------------
    *shapes_of(
        FAMILY,
        "https://github.com/continuedev/continue/issues/10373",
        [
            (
                "openai_compatible:xai_credits_exhausted",
                _e(status, {"code": "Some resource has been exhausted", "error": _XAI.format(team=team)}),
                R,
                Reason.QUOTA_EXCEEDED,
            )
            for status, team in (
                (429, "16f2151a-40f4-4a80-8ad0-cae00c27e8dd"),
                (429, "c03b3526-bed4-49ed-8bd7-f20ef8830383"),
            )
        ],
    ),
]

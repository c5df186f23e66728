"""Family ``hints``: waits that providers state in a header, a body field or only in the message's prose
("Please try again in 7.66s", "Please retry after 21 seconds", ``estimated_time``, ``retryDelay``), each
as the provider sent it; and rate limits that state no wait, for which no hint may be made up."""

from __future__ import annotations

from typing import Any

from error_handling.categories import Reason
from tests.corpus.shape import Shape, T, foreign, httpx_status_error, sdk_status_error

OPENAI_LIMIT = "https://platform.openai.com/docs/guides/rate-limits"


def _openai(message: str, kind: str = "tokens", headers: dict[str, str] | None = None) -> Any:
    body = {"error": {"message": message, "type": kind, "param": None, "code": "rate_limit_exceeded"}}
    return lambda: sdk_status_error("openai.RateLimitError", 429, body, headers)


def _tpm(model: str, org: str, limit: int, used: int, requested: int, wait: str) -> str:
    return (
        f"Rate limit reached for {model} in organization {org} on tokens per min (TPM): Limit {limit}, "
        f"Used {used}, Requested {requested}. Please try again in {wait}. Visit "
        "https://platform.openai.com/account/rate-limits to learn more."
    )


def _groq(model: str, org: str, limit: int, used: int, requested: str, wait: str) -> Any:
    message = (
        f"Rate limit reached for model `{model}` in organization `{org}` on tokens per minute (TPM): "
        f"Limit {limit}, Used {used}, Requested {requested}. Please try again in {wait}. "
        "Visit https://console.groq.com/docs/rate-limits for more information."
    )
    body = {"error": {"message": message, "type": "tokens", "code": "rate_limit_exceeded"}}
    return lambda: sdk_status_error("groq.RateLimitError", 429, body)


def _azure(message: str) -> Any:
    body = {"error": {"code": "429", "message": message}}
    return lambda: sdk_status_error("openai.RateLimitError", 429, body)


def _azure_tier(operation: str, version: str, limit: str, tier: str, wait: int) -> str:
    return (
        f"Requests to the {operation} Operation under Azure OpenAI API version {version} have exceeded "
        f"{limit} rate limit of your current {tier} pricing tier. Please retry after {wait} seconds. "
        "Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the "
        "default rate limit."
    )


def _gemini(message: str, *details: dict[str, Any]) -> Any:
    body = {"error": {"code": 429, "message": message, "status": "RESOURCE_EXHAUSTED", "details": list(details)}}
    cls = foreign("google.genai.errors.ClientError", foreign("google.genai.errors.APIError"))

    def make() -> BaseException:
        exc = httpx_status_error(
            429, body, url="https://generativelanguage.googleapis.com/v1beta/models/x:generateContent"
        )
        inner = cls(f"429 RESOURCE_EXHAUSTED. {body}")
        inner.code, inner.status, inner.details, inner.response = 429, "RESOURCE_EXHAUSTED", body, exc.response  # type: ignore[attr-defined]
        return inner

    return make


def _retry_info(delay: str) -> dict[str, str]:
    return {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}


def _quota(metric: str, quota_id: str, model: str) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [
            {"quotaMetric": metric, "quotaId": quota_id, "quotaDimensions": {"location": "global", "model": model}}
        ],
    }


def _hf_loading(model: str, estimated: float) -> Any:
    body = {"error": f"Model {model} is currently loading", "estimated_time": estimated}
    return lambda: httpx_status_error(503, body, url=f"https://api-inference.huggingface.co/models/{model}")


def _telegram(wait: int, *, parameters: bool = True) -> Any:
    body: dict[str, Any] = {"ok": False, "error_code": 429, "description": f"Too Many Requests: retry after {wait}"}
    if parameters:
        body["parameters"] = {"retry_after": wait}
    return lambda: httpx_status_error(429, body, url="https://api.telegram.org/bot123:abc/sendMessage")


def _ptb_retry_after(wait: int) -> Any:
    cls = foreign("telegram.error.RetryAfter", foreign("telegram.error.TelegramError"))
    return lambda: cls(f"Flood control exceeded. Retry in {wait} seconds")


def _discord(body: dict[str, Any]) -> Any:
    return lambda: httpx_status_error(429, body, url="https://discord.com/api/v10/channels/1/messages")


def _anthropic(message: str, headers: dict[str, str] | None = None) -> Any:
    body = {"type": "error", "error": {"type": "rate_limit_error", "message": message}}
    return lambda: sdk_status_error("anthropic.RateLimitError", 429, body, headers)


ANTHROPIC_ORG = (
    "This request would exceed the rate limit for your organization ({org}) of {limit} input tokens per "
    "minute. For details, refer to: https://docs.anthropic.com/en/api/rate-limits. You can see the response "
    "headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again "
    "later. You may also contact sales at https://www.anthropic.com/contact-sales to discuss your options for a "
    "rate limit increase."
)

RL, SU = Reason.RATE_LIMITED, Reason.SERVICE_UNAVAILABLE

SHAPES: list[Shape] = [
    # OpenAI: the wait only in the message, in seconds, milliseconds or a Go duration.
    Shape(
        "hints",
        "hints:openai-tpm",
        "https://github.com/fetchfox/fetchfox/issues/10",
        _openai(_tpm("gpt-4o-mini", "org-4BPQ2vglazP9PM7I0T2xn68U", 200000, 191584, 45490, "11.122s")),
        T,
        RL,
        11.122,
    ),
    Shape(
        "hints",
        "hints:openai-tpm",
        "https://github.com/FoundationAgents/MetaGPT/issues/523",
        _openai(_tpm("gpt-4", "org-uVqpjtJiKqvVJMVfvpaounIh", 10000, 8554, 3082, "9.816s")),
        T,
        RL,
        9.816,
    ),
    Shape(
        "hints",
        "hints:openai-tpm",
        "https://github.com/BuilderIO/micro-agent/issues/86",
        _openai(_tpm("gpt-4o", "org-uOtiSEwvUnroadaOnJJquBEC", 30000, 29937, 385, "644ms")),
        T,
        RL,
        0.644,
    ),
    Shape(
        "hints",
        "hints:openai-tpm",
        "https://github.com/semanser/codel/issues/72",
        _openai(_tpm("gpt-4o", "org-Jw8R3kq2NnZ5xYtV7cLpA1mB", 30000, 14567, 24754, "18.642s")),
        T,
        RL,
        18.642,
    ),
    Shape(
        "hints",
        "hints:openai-tpm",
        "https://github.com/earendil-works/pi/issues/2366",
        _openai(_tpm("gpt-5.4", "org-XXX", 500000, 442231, 249686, "23.03s")),
        T,
        RL,
        23.03,
    ),
    Shape(
        "hints",
        "hints:openai-legacy-tpm",
        "https://github.com/Pythagora-io/gpt-pilot/pull/53",
        _openai(
            "Rate limit reached for 10KTPM-200RPM in organization org-OASFC7k1Ff5IzueeLArhQtnT on tokens per min. "
            "Limit: 10000 / min. Please try again in 6ms. Contact us through our help center at help.openai.com "
            "if you continue to have issues."
        ),
        T,
        RL,
        0.006,
    ),
    Shape(
        "hints",
        "hints:openai-legacy-tpm",
        "https://github.com/daveshap/Medical_Intake/issues/9",
        _openai(
            "Rate limit reached for 10KTPM-200RPM in organization org-gvAzf6Q9pR7y2UAiI9owd3LF on tokens per min. "
            "Limit: 10000 / min. Please try again in 6ms. Contact us through our help center at help.openai.com "
            "if you continue to have issues."
        ),
        T,
        RL,
        0.006,
    ),
    # OpenAI's rate-limit headers win over the message; the largest reset is waited for.
    Shape(
        "hints",
        "hints:openai-tpm",
        OPENAI_LIMIT,
        _openai(
            _tpm("gpt-4o", "org-4BPQ2vglazP9PM7I0T2xn68U", 30000, 29000, 2000, "2.002s"),
            headers={"x-ratelimit-reset-requests": "1s", "x-ratelimit-reset-tokens": "6m0s"},
        ),
        T,
        RL,
        360.0,
    ),
    # A rate limit that states no wait: no hint is made up.
    Shape(
        "hints",
        "hints:openai-no-wait",
        "https://github.com/Nutlope/aicommits/issues/235",
        _openai(
            "Rate limit reached for default-gpt-3.5-turbo in organization org-pWX3d5auFNjsEBqgeA5Rp0bd on tokens "
            "per min. Limit: 90000 / min. Current: 1 / min. Contact us through our help center at help.openai.com "
            "if you continue to have issues."
        ),
        T,
        RL,
        None,
    ),
    # Groq (OpenAI-compatible): fractional seconds and compound Go durations in the message. One error
    # whatever the model: the model is a quoted value in it, as OpenAI's "Rate limit reached for <model>".
    Shape(
        "hints",
        "hints:groq-tpm",
        "https://github.com/danielmiessler/Fabric/issues/364",
        _groq("llama3-70b-8192", "org_01hrsvc1b8ey0anvbgha0xckf2", 7000, 0, "~12903", "50.597142857s"),
        T,
        RL,
        50.597142857,
    ),
    Shape(
        "hints",
        "hints:groq-tpm",
        "https://github.com/OpenHands/OpenHands/pull/4167",
        _groq("llama-3.2-90b-text-preview", "org_xxx", 7000, 6148, "7895", "1m0.363142857s"),
        T,
        RL,
        60.363142857,
    ),
    Shape(
        "hints",
        "hints:groq-tpm",
        "https://github.com/OpenHands/OpenHands/pull/4167",
        _groq("llama-3.2-90b-text-preview", "org_xxx", 7000, 0, "7895", "7.671428571s"),
        T,
        RL,
        7.671428571,
    ),
    Shape(
        "hints",
        "hints:groq-tpm",
        "https://github.com/openinterpreter/openinterpreter/issues/408",
        _groq("llama-3.3-70b-versatile", "org_01hs26sgxde6dva0eke39336sv", 6000, 3513, "3166", "6.780999999s"),
        T,
        RL,
        6.780999999,
    ),
    Shape(
        "hints",
        "hints:groq-tpm",
        "https://github.com/crewAIInc/crewAI/issues/494",
        _groq("llama3-70b-8192", "org_123", 5000, 5747, "~4251", "59.977s"),
        T,
        RL,
        59.977,
    ),
    # Groq's documented headers: retry-after and the resets, the largest wins over the message.
    Shape(
        "hints",
        "hints:groq-tpm",
        "https://console.groq.com/docs/rate-limits",
        lambda: sdk_status_error(
            "groq.RateLimitError",
            429,
            {
                "error": {
                    "message": "Rate limit reached for model `llama3-8b-8192` in organization `org_01hrsvc1b8ey0anvbgha0xckf2` "
                    "on tokens per minute (TPM): Limit 18000, Used 17997, Requested 1200. Please try again in 7.66s. "
                    "Visit https://console.groq.com/docs/rate-limits for more information.",
                    "type": "tokens",
                    "code": "rate_limit_exceeded",
                }
            },
            {"retry-after": "2", "x-ratelimit-reset-requests": "2m59.56s", "x-ratelimit-reset-tokens": "7.66s"},
        ),
        T,
        RL,
        179.56,
    ),
    # Azure OpenAI: "Please retry after N seconds", up to a day (a daily quota).
    Shape(
        "hints",
        "hints:azure-token-rate",
        "https://github.com/alex-wolf-ps/dbchatprov2/issues/2",
        _azure(_azure_tier("ChatCompletions_Create", "2024-05-01-preview", "token", "OpenAI S0", 86400)),
        T,
        RL,
        86400.0,
    ),
    Shape(
        "hints",
        "hints:azure-token-rate",
        "https://github.com/vanderschaarlab/climb/issues/1",
        _azure(_azure_tier("ChatCompletions_Create", "2024-08-01-preview", "token", "OpenAI S0", 86400)),
        T,
        RL,
        86400.0,
    ),
    Shape(
        "hints",
        "hints:azure-call-rate",
        "https://github.com/microsoft/action-python/issues/12",
        _azure(_azure_tier("Creates a completion for the chat message", "2023-03-15-preview", "call", "OpenAI S0", 3)),
        T,
        RL,
        3.0,
    ),
    Shape(
        "hints",
        "hints:azure-peak-load",
        "https://github.com/pollinations/pollinations/issues/6260",
        _azure(
            "The system is currently experiencing high demand and cannot process your request. Your request exceeds "
            "the maximum usage size allowed during peak load. Please retry after 20 seconds. For improved latency "
            "reliability, consider switching to Provisioned Throughput."
        ),
        T,
        RL,
        20.0,
    ),
    Shape(
        "hints",
        "hints:azure-apim",
        "https://github.com/Azure-Samples/azure-search-openai-demo/issues/177",
        lambda: httpx_status_error(
            429, {"statusCode": 429, "message": "Rate limit is exceeded. Try again in 30 seconds."}
        ),
        T,
        RL,
        30.0,
    ),
    # Gemini: RetryInfo's retryDelay (structured) wins over the prose "Please retry in ...".
    Shape(
        "hints",
        "hints:gemini-quota",
        "https://github.com/googleapis/python-genai/issues/1875",
        _gemini(
            "You exceeded your current quota, please check your plan and billing details. For more information on "
            "this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. Please retry in 53.016342224s.",
            _retry_info("53s"),
        ),
        T,
        RL,
        53.0,
    ),
    Shape(
        "hints",
        "hints:gemini-quota",
        "https://github.com/googleapis/python-genai/pull/2114",
        _gemini(
            "You exceeded your current quota, please check your plan and billing details. For more information on "
            "this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. Please retry in 58.934310785s.",
            _retry_info("58s"),
        ),
        T,
        RL,
        58.0,
    ),
    Shape(
        "hints",
        "hints:gemini-quota-per-minute",
        "https://github.com/Aider-AI/aider/issues/3694",
        _gemini(
            "You exceeded your current quota, please check your plan and billing details. For more information on "
            "this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
            _quota(
                "generativelanguage.googleapis.com/generate_requests_per_model",
                "GenerateRequestsPerMinutePerProjectPerModel",
                "gemini-2.0-pro-exp",
            ),
            _retry_info("44s"),
        ),
        T,
        RL,
        44.0,
    ),
    Shape(
        "hints",
        "hints:gemini-model-quota",
        "https://github.com/NikkeTryHard/zerogravity/issues/19",
        _gemini(
            "You have exhausted your gemini-3-pro-high quota. Please try again later.", _retry_info("2.463586755s")
        ),
        T,
        RL,
        2.463586755,
    ),
    Shape(
        "hints",
        "hints:gemini-exhausted",
        "https://github.com/google-gemini/gemini-cli/issues/2020",
        _gemini("Resource has been exhausted (e.g. check quota)."),
        T,
        RL,
        None,
    ),
    # Hugging Face Inference API: a model loading states its estimated_time (seconds, float).
    Shape(
        "hints",
        "hints:hf-loading-roberta-squad2",
        "https://github.com/huggingface/transformers/issues/23793",
        _hf_loading("deepset/roberta-base-squad2", 20.0),
        T,
        SU,
        20.0,
    ),
    Shape(
        "hints",
        "hints:hf-loading-mistral-7b-int8",
        "https://github.com/huggingface/transformers/issues/23793",
        _hf_loading("ZeroWw/Mistral-7B-Instruct-v0.3.int8", 300.8891906738281),
        T,
        SU,
        300.8891906738281,
    ),
    Shape(
        "hints",
        "hints:hf-loading-t5-emotion",
        "https://github.com/ela-codes/vibin/issues/2",
        _hf_loading("mrm8488/t5-base-finetuned-emotion", 35.6677131652832),
        T,
        SU,
        35.6677131652832,
    ),
    Shape(
        "hints",
        "hints:hf-loading-stsb-xlm-r",
        "https://github.com/huggingface/transformers/issues/11904",
        _hf_loading("Matthieu/stsb-xlm-r-multilingual", 44.49033436),
        T,
        SU,
        44.49033436,
    ),
    # Telegram Bot API: parameters.retry_after, or only the description's "retry after N".
    Shape(
        "hints",
        "hints:telegram-flood",
        "https://github.com/tdlib/telegram-bot-api/issues/184",
        _telegram(2282),
        T,
        RL,
        2282.0,
    ),
    Shape(
        "hints",
        "hints:telegram-flood",
        "https://github.com/MarSeventh/CloudFlare-ImgBed/issues/562",
        _telegram(41),
        T,
        RL,
        41.0,
    ),
    Shape(
        "hints",
        "hints:telegram-flood",
        "https://github.com/hdghg/cjbot/issues/13",
        _telegram(3, parameters=False),
        T,
        RL,
        3.0,
    ),
    Shape(
        "hints",
        "hints:ptb-retry-after",
        "https://github.com/python-telegram-bot/python-telegram-bot/blob/master/telegram/error.py",
        _ptb_retry_after(30),
        T,
        RL,
        30.0,
    ),
    Shape(
        "hints",
        "hints:ptb-retry-after",
        "https://github.com/python-telegram-bot/python-telegram-bot/blob/master/telegram/error.py",
        _ptb_retry_after(27),
        T,
        RL,
        27.0,
    ),
    # Discord: the body's retry_after (seconds, float).
    Shape(
        "hints",
        "hints:discord-rate-limited",
        "https://github.com/Dracovian/Discord-Scraper/pull/69",
        _discord({"global": False, "message": "You are being rate limited.", "retry_after": 226.591}),
        T,
        RL,
        226.591,
    ),
    Shape(
        "hints",
        "hints:discord-resource-limited",
        "https://github.com/discord/discord-api-docs/pull/5574",
        _discord(
            {"code": 40062, "global": False, "message": "Service resource is being rate limited.", "retry_after": 3}
        ),
        T,
        RL,
        3.0,
    ),
    # Anthropic: the wait only in the retry-after header; "try again later" states none.
    Shape(
        "hints",
        "hints:anthropic-itpm",
        "https://docs.anthropic.com/en/api/rate-limits",
        _anthropic(
            ANTHROPIC_ORG.format(org="0dccdde6-f924-4f1b-bb3b-92ef846e0a5b", limit="20,000"), {"retry-after": "17"}
        ),
        T,
        RL,
        17.0,
    ),
    Shape(
        "hints",
        "hints:anthropic-itpm",
        "https://github.com/OpenHands/OpenHands/issues/9259",
        _anthropic(ANTHROPIC_ORG.format(org="0dccdde6-f924-4f1b-bb3b-92ef846e0a5b", limit="20,000")),
        T,
        RL,
        None,
    ),
    Shape(
        "hints",
        "hints:anthropic-itpm",
        "https://github.com/stackblitz/bolt.new/issues/8578",
        _anthropic(ANTHROPIC_ORG.format(org="a22cf6e6-a940-4fff-8c4c-1580816ac7be", limit="1,000,000")),
        T,
        RL,
        None,
    ),
]

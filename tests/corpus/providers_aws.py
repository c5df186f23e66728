"""AWS error shapes: Bedrock's errors as botocore raises them. ``ClientError`` with its parsed response (the
shapes migrated from the former ``tests/unit/test_provider_shapes.py``), the generated classes
``botocore.errorfactory.<Code>`` (with the response and its metadata as the client raises them, and built
from the error dict alone, without metadata), and ``EventStreamError`` (a streaming call's error event:
the code, no status). Bedrock's ``ValidationException`` variants: input too long, malformed input, a model
that cannot be invoked on demand."""

from __future__ import annotations

from typing import Any

from error_handling.categories import Reason
from tests.corpus.shape import P, R, Shape, T, V, botocore_client_error, foreign, shapes_of, with_attrs

BEDROCK = "https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html"
BEDROCK_COMMON = "https://docs.aws.amazon.com/bedrock/latest/APIReference/CommonErrors.html"
ERRORFACTORY = "https://github.com/boto/botocore/blob/develop/botocore/errorfactory.py"

CLIENT_ERROR = foreign("botocore.exceptions.ClientError")


def _client(code: str, message: str, status: int, operation: str = "InvokeModel") -> Any:
    return lambda: botocore_client_error(code, message, status, operation)


def modeled_error(
    code: str, message: str, status: int | None, *, operation: str = "InvokeModel", retries: int | None = None
) -> BaseException:
    """The class botocore generates for ``code`` (``botocore.errorfactory.<code>``, a ClientError) with
    ClientError's message; with the response metadata the client parses when ``status`` is given
    (``retries``: the attempts when the retry budget ran out), else built from the error dict alone."""
    cls = foreign(f"botocore.errorfactory.{code}", CLIENT_ERROR)
    retry = f" (reached max retries: {retries})" if retries is not None else ""
    exc = cls(f"An error occurred ({code}) when calling the {operation} operation{retry}: {message}")
    error_response: dict[str, Any] = {"Error": {"Code": code, "Message": message}}
    if status is not None:
        metadata: dict[str, Any] = {
            "RequestId": "5f0c6d39-8a8e-4b8f-9a43-0d1c5b3a9e21",
            "HTTPStatusCode": status,
            "HTTPHeaders": {
                "content-type": "application/json",
                "x-amzn-errortype": f"{code}:http://internal.amazon.com/coral/com.amazon.bedrock/",
            },
            "RetryAttempts": retries or 0,
        }
        if retries is not None:
            metadata["MaxAttemptsReached"] = True
        error_response["ResponseMetadata"] = metadata
    return with_attrs(exc, response=error_response, operation_name=operation)


def _modeled(code: str, message: str, status: int | None, **kw: Any) -> Any:
    return lambda: modeled_error(code, message, status, **kw)


def event_stream_error(code: str, message: str, operation: str = "InvokeModelWithResponseStream") -> BaseException:
    """botocore's ``EventStreamError``: an error event of a stream, parsed without response metadata."""
    cls = foreign("botocore.exceptions.EventStreamError", CLIENT_ERROR)
    exc = cls(f"An error occurred ({code}) when calling the {operation} operation: {message}")
    return with_attrs(exc, response={"Error": {"Code": code, "Message": message}}, operation_name=operation)


def _stream(code: str, message: str, operation: str = "InvokeModelWithResponseStream") -> Any:
    return lambda: event_stream_error(code, message, operation)


_TOO_MANY = (
    "Too many requests, please wait before trying again. You have sent too many requests.  Wait before trying again."
)
_ON_DEMAND = "Invocation of model ID {} with on-demand throughput isn\u2019t supported. Retry your request with the ID or ARN of an inference profile that contains this model."

SHAPES: list[Shape] = [
    *shapes_of(
        "aws",
        BEDROCK,
        [
            (
                "aws:client_throttling",
                _client("ThrottlingException", "Too many requests, please wait before trying again.", 429),
                T,
                Reason.RATE_LIMITED,
            ),
            (
                "aws:client_service_quota",
                _client(
                    "ServiceQuotaExceededException", "Your request exceeds the service quota for your account.", 400
                ),
                R,
                Reason.QUOTA_EXCEEDED,
            ),
            (
                "aws:client_malformed_input",
                _client("ValidationException", "Malformed input request: #: required key [messages] not found", 400),
                V,
                Reason.INVALID_INPUT,
            ),
            (
                "aws:client_input_too_long",
                _client("ValidationException", "Input is too long for requested model.", 400),
                V,
                Reason.PAYLOAD_TOO_LARGE,
            ),
            (
                "aws:client_access_denied",
                _client(
                    "AccessDeniedException", "You don't have access to the model with the specified model ID.", 403
                ),
                P,
                Reason.AUTH_FAILED,
            ),
            (
                "aws:client_not_found",
                _client(
                    "ResourceNotFoundException",
                    "Could not resolve the foundation model from the provided model identifier.",
                    404,
                ),
                P,
                Reason.NOT_FOUND,
            ),
            (
                "aws:client_model_not_ready",
                _client("ModelNotReadyException", "Model is not ready to serve inference requests.", 429),
                T,
                Reason.SERVICE_UNAVAILABLE,
            ),
            (
                "aws:client_model_timeout",
                _client("ModelTimeoutException", "Model has timed out in processing the request.", 408),
                T,
                Reason.TIMEOUT,
            ),
            (
                "aws:client_model_error",
                _client("ModelErrorException", "The model returned an error while processing the request.", 424),
                T,
                Reason.SERVICE_UNAVAILABLE,
            ),
            (
                "aws:client_unavailable",
                _client("ServiceUnavailableException", "The service isn't currently available.", 503),
                T,
                Reason.SERVICE_UNAVAILABLE,
            ),
            (
                "aws:client_internal",
                _client("InternalServerException", "An internal server error occurred.", 500),
                T,
                Reason.SERVICE_UNAVAILABLE,
            ),
        ],
    ),
    *shapes_of(
        "aws",
        BEDROCK_COMMON,
        [
            (
                "aws:client_unrecognized_client",
                _client("UnrecognizedClientException", "The security token included in the request is invalid.", 403),
                P,
                Reason.AUTH_FAILED,
            ),
            (
                "aws:client_expired_token",
                _client("ExpiredTokenException", "The security token included in the request is expired", 400),
                P,
                Reason.AUTH_FAILED,
            ),
        ],
    ),
    # --- botocore.errorfactory.<Code>, as the client raises them (response with metadata) ---------------------
    *shapes_of(
        "aws",
        "https://github.com/i-dot-ai/caddy-chatbot/issues/97",
        [
            ("aws:throttling", _modeled("ThrottlingException", _TOO_MANY, 429, retries=retries), T, Reason.RATE_LIMITED)
            for retries in (4, 10)
        ],
    ),
    *shapes_of(
        "aws",
        "https://github.com/terricain/aioboto3/issues/352",
        [
            (
                f"aws:on_demand_unsupported:{model}",
                _modeled(
                    "ValidationException", _ON_DEMAND.format(model), 400, operation="InvokeModelWithResponseStream"
                ),
                P,
                Reason.INVALID_CONFIGURATION,
            )
            for model in ("anthropic.claude-3-5-sonnet-20241022-v2:0", "amazon.nova-pro-v1:0")
        ],
    ),
    *shapes_of(
        "aws",
        "https://github.com/konveyor/kai/issues/411",
        [
            (
                "aws:on_demand_not_supported_by_model",
                _modeled("ValidationException", "The provided model doesn't support on-demand throughput.", 400),
                P,
                Reason.INVALID_CONFIGURATION,
            ),
        ],
    ),
    *shapes_of(
        "aws",
        "https://github.com/pingcap/autoflow/pull/574",
        [
            (
                "aws:malformed_input",
                _modeled(
                    "ValidationException",
                    'Malformed input request: #: subject must not be valid against schema {"required":["messages"]}#: extraneous key [response_mime_type] is not permitted, please reformat your input and try again.',
                    400,
                ),
                V,
                Reason.INVALID_INPUT,
            ),
        ],
    ),
    *shapes_of(
        "aws",
        "https://github.com/ryanadoty/Amazon-Bedrock-Amazon-RDS-POC/issues/9",
        [
            (
                "aws:max_length_exceeded",
                _modeled(
                    "ValidationException",
                    f"Malformed input request: expected maxLength: {limit}, actual: {got}, please reformat your input and try again.",
                    400,
                ),
                V,
                Reason.PAYLOAD_TOO_LARGE,
            )
            for limit, got in ((42000, 46735), (50000, 61877))
        ],
    ),
    *shapes_of(
        "aws",
        "https://github.com/aws-samples/assessment-generator/issues/2",
        [
            (
                "aws:input_too_long",
                _modeled("ValidationException", "Input is too long for requested model.", 400),
                V,
                Reason.PAYLOAD_TOO_LARGE,
            )
        ],
    ),
    # --- the same classes built from the error dict alone: no metadata, no status: the class is the code ------
    *shapes_of(
        "aws",
        ERRORFACTORY,
        [
            ("aws:bare_throttling", _modeled("ThrottlingException", _TOO_MANY, None), T, Reason.RATE_LIMITED),
            (
                "aws:bare_service_quota",
                _modeled(
                    "ServiceQuotaExceededException", "Your request exceeds the service quota for your account.", None
                ),
                R,
                Reason.QUOTA_EXCEEDED,
            ),
            (
                "aws:bare_on_demand_unsupported",
                _modeled("ValidationException", _ON_DEMAND.format("meta.llama3-2-90b-instruct-v1:0"), None),
                P,
                Reason.INVALID_CONFIGURATION,
            ),
            (
                "aws:bare_input_too_long",
                _modeled("ValidationException", "Input is too long for requested model.", None),
                V,
                Reason.PAYLOAD_TOO_LARGE,
            ),
            (
                "aws:bare_malformed_input",
                _modeled(
                    "ValidationException",
                    "Malformed input request: #: required key [max_tokens] not found, please reformat your input and try again.",
                    None,
                ),
                V,
                Reason.INVALID_INPUT,
            ),
            (
                "aws:bare_model_not_ready",
                _modeled("ModelNotReadyException", "Model is not ready to serve inference requests.", None),
                T,
                Reason.SERVICE_UNAVAILABLE,
            ),
            (
                "aws:bare_access_denied",
                _modeled(
                    "AccessDeniedException", "You don't have access to the model with the specified model ID.", None
                ),
                P,
                Reason.AUTH_FAILED,
            ),
        ],
    ),
    *shapes_of(
        "aws",
        "https://github.com/mlcommons/modelbench/issues/1654",
        [
            (
                "aws:bare_not_found",
                _modeled("ResourceNotFoundException", "Model not found.", None, operation="Converse"),
                P,
                Reason.NOT_FOUND,
            )
        ],
    ),
    *shapes_of(
        "aws",
        "https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html",
        [
            (
                "aws:bare_s3_no_such_key",
                _modeled("NoSuchKey", "The specified key does not exist.", None, operation="GetObject"),
                P,
                Reason.NOT_FOUND,
            )
        ],
    ),
    *shapes_of(
        "aws",
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html",
        [
            (
                "aws:bare_dynamodb_conditional_check",
                _modeled(
                    "ConditionalCheckFailedException", "The conditional request failed", None, operation="PutItem"
                ),
                T,
                Reason.CONFLICT,
            )
        ],
    ),
    # --- EventStreamError: a streaming call's error event (code, message, no status) -------------------------
    *shapes_of(
        "aws",
        "https://github.com/aws-samples/aws-genai-llm-chatbot/issues/220",
        [("aws:stream_throttling", _stream("throttlingException", _TOO_MANY), T, Reason.RATE_LIMITED)],
    ),
    *shapes_of(
        "aws",
        "https://github.com/aws-samples/bedrock-chat/issues/95",
        [
            (
                "aws:stream_input_too_long",
                _stream("validationException", "Input is too long for requested model."),
                V,
                Reason.PAYLOAD_TOO_LARGE,
            )
        ],
    ),
    *shapes_of(
        "aws",
        "https://github.com/awslabs/agent-evaluation/issues/64",
        [
            (
                "aws:stream_agent_throttling",
                _stream(
                    "throttlingException",
                    "Your request rate is too high. Reduce the frequency of requests.",
                    "InvokeAgent",
                ),
                T,
                Reason.RATE_LIMITED,
            )
        ],
    ),
    *shapes_of(
        "aws",
        "https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html",
        [
            (
                "aws:stream_model_error",
                _stream(
                    "modelStreamErrorException",
                    "An error occurred while streaming the response. Retry your request.",
                    "ConverseStream",
                ),
                T,
                Reason.SERVICE_UNAVAILABLE,
            )
        ],
    ),
]

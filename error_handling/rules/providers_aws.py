"""Rules on the AWS SDK's errors by their error code, where no HTTP response says it.

botocore raises a modeled error as a class it generates per client, named after the code, in module
``botocore.errorfactory`` (``botocore.errorfactory.ThrottlingException``, a ``ClientError``). While its
``response`` dict is attached the classifier reads the status and body like any ClientError's; once it
is gone (the error rebuilt from its name and message, as Celery's result backend does) the class name is
the code: :data:`AWS_EXCEPTION_RULES`. An event-stream error (``EventStreamError``: Bedrock's
``InvokeModelWithResponseStream``, ``ConverseStream``), or a ClientError built from an error dict alone,
carries the code but no status; its message names it: :data:`AWS_MESSAGE_RULES`.

Bedrock answers several different problems with ``ValidationException``: an input too long (payload too
large), a malformed request (invalid input), a model that cannot be invoked on demand (the
configuration). Those are told apart by the message, before the code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from error_handling.rules.outcome import MessageRule, Outcome, Outcomes
from error_handling.rules.providers import CONTEXT_TOO_LONG, ON_DEMAND_UNSUPPORTED

#: The module botocore's generated exception classes live in.
ERRORFACTORY_MODULE = "botocore.errorfactory"

#: AWS error codes (as the services spell them, and so the generated classes) and their outcome.
AWS_ERROR_CODES: Mapping[str, Outcome] = MappingProxyType(
    {
        # Bedrock runtime (https://docs.aws.amazon.com/bedrock/latest/APIReference/CommonErrors.html)
        "ThrottlingException": Outcomes.RATE_LIMITED,
        "ServiceQuotaExceededException": Outcomes.QUOTA,
        "ModelNotReadyException": Outcomes.UNAVAILABLE,
        "ModelTimeoutException": Outcomes.TIMEOUT,
        "ModelErrorException": Outcomes.UNAVAILABLE,
        "ModelStreamErrorException": Outcomes.UNAVAILABLE,
        "ServiceUnavailableException": Outcomes.UNAVAILABLE,
        "InternalServerException": Outcomes.UNAVAILABLE,
        "ValidationException": Outcomes.INVALID_INPUT,
        "AccessDeniedException": Outcomes.AUTH_FAILED,
        "ResourceNotFoundException": Outcomes.NOT_FOUND,
        "ConflictException": Outcomes.CONFLICT,
        # common to the JSON services (STS credentials, throttling)
        "ExpiredTokenException": Outcomes.AUTH_FAILED,
        "UnrecognizedClientException": Outcomes.AUTH_FAILED,
        "TooManyRequestsException": Outcomes.RATE_LIMITED,
        "LimitExceededException": Outcomes.RATE_LIMITED,
        # DynamoDB
        "ProvisionedThroughputExceededException": Outcomes.RATE_LIMITED,
        "RequestLimitExceeded": Outcomes.RATE_LIMITED,
        "ConditionalCheckFailedException": Outcomes.CONFLICT,
        "TransactionConflictException": Outcomes.CONFLICT,
        # S3
        "NoSuchKey": Outcomes.NOT_FOUND,
        "NoSuchBucket": Outcomes.NOT_FOUND,
        # SQS
        "QueueDoesNotExist": Outcomes.NOT_FOUND,
    }
)

#: botocore's generated classes by qualified name (``botocore.errorfactory.<Code>``), merged into the
#: exception table.
AWS_EXCEPTION_RULES: Mapping[str, Outcome] = MappingProxyType(
    {f"{ERRORFACTORY_MODULE}.{code}": outcome for code, outcome in AWS_ERROR_CODES.items()}
)

#: botocore's ClientError: every AWS error the SDK raises for a service's answer is one.
CLIENT_ERROR = "botocore.exceptions.ClientError"

_VALIDATION_CARRIERS = frozenset({f"{ERRORFACTORY_MODULE}.ValidationException", CLIENT_ERROR})


def _validation(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """``pattern`` in the message of a ValidationException (``An error occurred (ValidationException) ...``):
    the same words under another code (``Too many tokens`` of a throttle) mean something else."""
    return re.compile(rf"^An error occurred \(ValidationException\).*?(?:{pattern.pattern})", re.I | re.S)


def _codes_by_outcome() -> tuple[MessageRule, ...]:
    """One rule per outcome on the code a ClientError's message names (``An error occurred (<Code>) when
    calling ...``), case-insensitively: event streams spell the codes ``throttlingException``."""
    codes: dict[Outcome, list[str]] = {}
    for code, outcome in AWS_ERROR_CODES.items():
        codes.setdefault(outcome, []).append(code)
    return tuple(
        MessageRule(
            f"aws_code_{outcome.reason.value}",
            re.compile(rf"^An error occurred \((?:{'|'.join(names)})\)", re.I),
            outcome,
            frozenset({CLIENT_ERROR}),
        )
        for outcome, names in codes.items()
    )


#: Message rules on AWS errors that carry no HTTP status (an event-stream error, a ClientError built from
#: an error dict without its metadata), scoped: Bedrock's validation variants first (on a
#: ValidationException or any ClientError), then the code the message names.
AWS_MESSAGE_RULES: tuple[MessageRule, ...] = (
    MessageRule("bedrock_input_too_long", _validation(CONTEXT_TOO_LONG), Outcomes.TOO_LARGE, _VALIDATION_CARRIERS),
    MessageRule(
        "bedrock_on_demand_unsupported",
        _validation(ON_DEMAND_UNSUPPORTED),
        Outcomes.CONFIGURATION,
        _VALIDATION_CARRIERS,
    ),
    *_codes_by_outcome(),
)

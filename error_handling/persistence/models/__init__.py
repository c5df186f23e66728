"""SQLAlchemy 2 models: the system of record, one module per aggregate (this package exports them all).

base          Base, UTCDateTime, Json, BigId, naming convention
tasks         fr_tasks, fr_failed_attempts, fr_error_counts, fr_scheduled_runs, fr_lost_deliveries
dead_letters  fr_dead_letters, fr_replay_requests, fr_replay_jobs
resilience    fr_resource_gates, fr_resource_leases, circuit_breaker_events, ai_service_health,
              ai_service_errors, ai_fallback_events
groups        fr_error_groups
operations    fr_heartbeats, fr_compensation_steps, fr_audit_events, fr_retention_runs
task_counts   fr_task_counts
"""

from __future__ import annotations

from error_handling.analytics.inputs import GroupState
from error_handling.persistence.models.base import (
    NAMING_CONVENTION,
    Base,
    BigId,
    Json,
    UTCDateTime,
    aware_utc,
    utcnow,
)
from error_handling.persistence.models.dead_letters import (
    DeadLetterRecord,
    DeadLetterStatus,
    JobAction,
    ReplayJobRecord,
    ReplayJobStatus,
    ReplayRequestRecord,
)
from error_handling.persistence.models.groups import ErrorGroup
from error_handling.persistence.models.operations import (
    AuditEvent,
    CompensationStep,
    Heartbeat,
    RetentionRun,
    StepStatus,
)
from error_handling.persistence.models.resilience import (
    CircuitBreakerEvent,
    FallbackEvent,
    ResourceGate,
    ResourceLease,
    ServiceError,
    ServiceHealth,
)
from error_handling.persistence.models.task_counts import TaskCount
from error_handling.persistence.models.tasks import (
    TERMINAL_STATES,
    DecisionKind,
    ErrorCount,
    FailedAttempt,
    LostDelivery,
    RunKind,
    RunStatus,
    ScheduledRun,
    TaskRecord,
    TaskState,
)

__all__ = [
    "NAMING_CONVENTION",
    "TERMINAL_STATES",
    "AuditEvent",
    "Base",
    "BigId",
    "CircuitBreakerEvent",
    "CompensationStep",
    "DeadLetterRecord",
    "DeadLetterStatus",
    "DecisionKind",
    "ErrorCount",
    "ErrorGroup",
    "FailedAttempt",
    "FallbackEvent",
    "GroupState",
    "Heartbeat",
    "JobAction",
    "Json",
    "LostDelivery",
    "ReplayJobRecord",
    "ReplayJobStatus",
    "ReplayRequestRecord",
    "ResourceGate",
    "ResourceLease",
    "RetentionRun",
    "RunKind",
    "RunStatus",
    "ScheduledRun",
    "ServiceError",
    "ServiceHealth",
    "StepStatus",
    "TaskCount",
    "TaskRecord",
    "TaskState",
    "UTCDateTime",
    "aware_utc",
    "utcnow",
]

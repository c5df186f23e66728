"""The task wrapper: ``RecoverableTask`` (:mod:`.task`) and its steps, one module each: claim, poison,
leases, guards, classify, payload, record (failures, group_commit, unrecorded), refusals, outcome;
plus what Celery's tools see of a task (celery_view, redacted_errors, logs) and lost deliveries
(deliveries, start_marks)."""

"""The dispatcher and its periodic roles.

::

    dispatcher.py           the loop over the roles, and where they are built from a Runtime
    role.py                 Role (name, interval, run_once) and run_role, the one failure handler
    due_runs.py             publish due retries and released waits; dead-letter expired waits
    gate_monitor.py         probe resource gates and release their waits
    compensations.py        republish the compensation of forgotten sagas
    unrecorded.py           republish the messages of failures kept in Redis
    broker_dead_letters.py  collect what RabbitMQ dead-lettered itself
    retention.py            trim old rows, purge settled secrets
    lapsed.py               give back what lapsed worker consumers held (Redis)
    replay_jobs.py          bulk replay jobs, a batch at a time
    heartbeat.py            the dispatcher's row in fr_heartbeats
    queue_check.py          RabbitMQ task queues used as found
    stored.py               publishing a run from its stored form
"""

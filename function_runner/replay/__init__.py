"""Replay: publish a dead letter again as a new Celery task, linked to the dead letter it came from.

::

    single.py   replay one dead letter on request (record, audit, publish in one transaction), dry run
    message.py  the message a replay publishes (secrets unsealed, fr_replay_of), the queues allowed
    edits.py    the operator's edits: limits, secrets kept at their own paths
    errors.py   the ReplayError tree

Bulk replay jobs are a role of the dispatcher (:mod:`function_runner.dispatch.replay_jobs`).
"""

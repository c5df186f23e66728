"""The ground truth of the tasks that tests run in real workers: a Redis the test names in
``FR_TEST_STATE_URL`` (never the broker, which some tests stop), where each task body writes what it
really did, for the test to compare with what function-runner recorded."""

from __future__ import annotations

import os

import redis

_state: redis.Redis | None = None


def state() -> redis.Redis:
    """This process's connection to the ground-truth Redis (made on first use)."""
    global _state
    if _state is None:
        _state = redis.Redis.from_url(os.environ["FR_TEST_STATE_URL"], decode_responses=True)
    return _state

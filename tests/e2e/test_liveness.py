"""A dead worker's tasks come back in seconds on the default Redis setup: a user's own Celery app that only
adds ``install(app)``, Celery's defaults (visibility timeout 1 h, prefetch multiplier 4) and
function-runner's liveness defaults, real workers, a real dispatcher."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest
import redis as redis_lib
from celery import Celery

from function_runner.settings import Settings
from tests.support.processes import Process, celery_worker_args, cli_args
from tests.support.waiting import wait_until

USER_APP = "tests.e2e.user_app"
#: The bound the docs give: a dead worker's messages are back in their queue within liveness_timeout + 5 s
#: of its death; these tasks take milliseconds once released, so each must have finished by then too.
RECOVERY_BOUND = Settings.model_fields["liveness_timeout"].default + 5.0
#: The liveness timeout users get: the slow task of a live worker runs longer than this.
LIVENESS_TIMEOUT = Settings.model_fields["liveness_timeout"].default


@pytest.fixture
def user_env(service_env: dict[str, str]) -> dict[str, str]:
    """The processes' environment for the user's app: its broker is the test's Redis, and nothing tunes
    the visibility timeout or liveness (defaults are what users get)."""
    env = {k: v for k, v in service_env.items() if k != "FUNCTION_RUNNER_VISIBILITY_TIMEOUT"}
    env["FR_TEST_USER_BROKER_URL"] = service_env["FUNCTION_RUNNER_BROKER_URL"]
    return env


def start(spawn: Callable[..., Process], env: dict[str, str], name: str, **options: object) -> Process:
    process = spawn(celery_worker_args(USER_APP, name=name, **options), env=env, name=f"worker-{name}")
    process.wait_for_log(" ready.", timeout=60)
    return process


@pytest.mark.parametrize("dispatcher_app", [["--app", USER_APP], []], ids=["with_app", "without_app"])
def test_a_killed_workers_running_and_prefetched_tasks_finish_once_within_the_bound_and_a_slow_worker_keeps_its_own(
    spawn: Callable[..., Process],
    user_env: dict[str, str],
    state: redis_lib.Redis,
    redis_url: str,
    dispatcher_app: list[str],
) -> None:
    """The dispatcher runs with the user's app, or without it (then FUNCTION_RUNNER_BROKER_URL names the
    same Redis)."""
    dispatcher = spawn(cli_args("dispatcher", *dispatcher_app), env=user_env, name="dispatcher")
    dispatcher.wait_for_log("dispatcher.started", timeout=60)
    start(spawn, user_env, "slow", concurrency=1, queues="slow")
    victim = start(spawn, user_env, "victim", concurrency=2)
    broker = redis_lib.Redis.from_url(redis_url)
    publisher = Celery("user_publisher", broker=redis_url)
    try:
        slow_ids = [publisher.send_task("user.hold", args=[600, "slow-released"], queue="slow").id for _ in range(2)]
        ids = [publisher.send_task("user.hold", args=[600, "released"]).id for _ in range(8)]
    finally:
        publisher.close()

    def victim_holds_everything() -> bool:
        running = [i for i in ids if state.get(f"running:{i}")]
        return len(running) == 2 and broker.llen("celery") == 0 and broker.hlen("unacked") == 10

    # two running in the pool, six prefetched by the main process (prefetch multiplier 4 x 2)
    wait_until(victim_holds_everything, timeout=60, what="the victim to hold all eight tasks")
    running = {i for i in ids if state.get(f"running:{i}")}
    victim.kill()  # SIGKILL, main process and pool at once: nothing acks, nothing is given back
    killed_at = time.time()
    state.set("released", 1)  # from now on the tasks return as soon as they start
    start(spawn, user_env, "spare", concurrency=2)

    def all_finished() -> bool:
        return all(state.get(f"finished:{i}") for i in ids)

    wait_until(all_finished, timeout=RECOVERY_BOUND + 60, what="every task of the dead worker to finish")
    for task_id in ids:
        assert state.get(f"finished:{task_id}") == "1", task_id  # exactly once
        assert state.get(f"started:{task_id}") == ("2" if task_id in running else "1"), task_id
    back_within = max(float(state.get(f"started_at:{i}") or 0) for i in ids) - killed_at
    done_within = max(float(state.get(f"finished_at:{i}") or 0) for i in ids) - killed_at
    print(
        f"the dead worker's tasks all started again {back_within:.1f}s and finished {done_within:.1f}s after the kill"
    )
    assert done_within <= RECOVERY_BOUND, f"the last task of the dead worker finished {done_within:.1f}s after the kill"
    # the slow worker was alive all along: its first task has been running for longer than the liveness
    # timeout, through the restore of the dead worker's messages, and is still running; released now, it and
    # the one prefetched behind it run once
    first_slow = next(i for i in slow_ids if state.get(f"running:{i}"))
    assert not state.get(f"finished:{first_slow}")
    assert time.time() - float(state.get(f"started_at:{first_slow}") or time.time()) > LIVENESS_TIMEOUT
    state.set("slow-released", 1)
    wait_until(
        lambda: all(state.get(f"finished:{i}") for i in slow_ids), timeout=60, what="the slow worker's tasks to finish"
    )
    for task_id in slow_ids:
        assert state.get(f"started:{task_id}") == "1" and state.get(f"finished:{task_id}") == "1", task_id
    assert dispatcher.log().count("liveness.restored") == 1  # the victim's consumer, nobody else
    assert broker.hlen("unacked") == 0 and broker.llen("celery") == 0


def test_a_warm_shutdown_gives_back_its_prefetched_tasks_once_and_leaves_nothing_to_restore(
    spawn: Callable[..., Process], user_env: dict[str, str], state: redis_lib.Redis, redis_url: str
) -> None:
    dispatcher = spawn(cli_args("dispatcher", "--app", USER_APP), env=user_env, name="dispatcher")
    dispatcher.wait_for_log("dispatcher.started", timeout=60)
    stopping = start(spawn, user_env, "stopping", concurrency=1)
    broker = redis_lib.Redis.from_url(redis_url)
    publisher = Celery("user_publisher", broker=redis_url)
    try:
        ids = [publisher.send_task("user.hold", args=[600, "released"]).id for _ in range(4)]
    finally:
        publisher.close()
    wait_until(
        lambda: sum(1 for i in ids if state.get(f"running:{i}")) == 1 and broker.hlen("unacked") == 4,
        timeout=60,
        what="one task running and three prefetched",
    )
    stopping.popen.send_signal(signal.SIGTERM)  # warm shutdown: the running task finishes first
    stopping.wait_for_log("Warm shutdown", timeout=30)
    state.set("released", 1)
    assert stopping.popen.wait(timeout=60) == 0
    assert broker.hlen("unacked") == 0 and broker.llen("celery") == 3  # given back by kombu, once
    assert broker.scard("unacked:consumers") == 0  # its heartbeat deleted, nothing left to restore
    start(spawn, user_env, "next", concurrency=2)
    wait_until(lambda: all(state.get(f"finished:{i}") for i in ids), timeout=60, what="every task to finish")
    assert all(state.get(f"started:{i}") == "1" and state.get(f"finished:{i}") == "1" for i in ids)
    assert "liveness.restored" not in dispatcher.log()

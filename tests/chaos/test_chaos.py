"""The chaos suite: thousands of tasks through real workers while the world breaks, then a check of
what function-runner recorded against the tasks' own ground truth.

The fleet: a prefork worker (two processes) and a threads worker (eight threads in one process, whose
concurrent failures share transactions), two dispatchers, an API. During the run: pool processes and
whole workers are SIGKILLed at random every few seconds, Redis (a
server of the run's own, keeping an append-only file as a production broker does) is restarted once,
Postgres (a server of the run's own) is stopped for 10 s, two dispatchers race, the API is queried all
along and a bulk replay of fixed dead letters runs in the middle and at the end. The run is made twice:
with that Redis as the broker, and with RabbitMQ as the broker (a vhost of the run's own; the Redis is
then the one the workers share, ``redis_url``).

At the end, against the ground truth: no task lost, none with two terminal states, every failed attempt
recorded once, no side effect applied twice where an idempotency key was given, no dead letter without
its payload. The figures are printed as the last lines.

The broker's own loss is checked by proof too. kombu's Redis transport takes a message with ``BRPOP``
and stores it as unacked with a second command, so a message popped when Redis stops (or when the
worker's main process is killed) between the two is gone before any function-runner code sees it;
function-runner's reliable transport (``function_runner.broker.redis_transport``, the default) takes and holds
in one step. The run reads the broker's append-only file (``broker_log.py``): with the reliable
transport, no message may be popped and never held. With ``FR_CHAOS_RELIABLE_FETCH=0`` (kombu's
transport, to see the window) a task counts as dropped by the transport, not lost, only if that file
shows its last message (a first delivery, or one the wrapper gave back while Postgres was down) popped
and never stored, and it has no terminal outcome; their number must stay within the transport's windows
(one per live worker at the Redis restart, one per whole-worker kill). RabbitMQ has no such window.

CI runs 1,000 tasks. The full run: ``FR_CHAOS_TASKS=10000 .venv/bin/pytest tests/chaos -s``
(``FR_CHAOS_RATE`` sets the publishing rate per second, ``FR_CHAOS_SEED`` the random seed).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis as redis_lib
import sqlalchemy as sa

from error_handling.persistence.db import make_engine
from function_runner.app import create_app
from function_runner.migrate import upgrade
from function_runner.runtime import runtime_for
from tests.chaos import broker_log, checks
from tests.chaos.checks import Planned
from tests.chaos.harness import ChaosRun, plan
from tests.conftest import process_env
from tests.e2e.conftest import settings_of
from tests.support import services
from tests.support.processes import Process
from tests.support.waiting import TimedOut, wait_until

TASKS = int(os.environ.get("FR_CHAOS_TASKS", "1000"))
RATE = float(os.environ.get("FR_CHAOS_RATE", "40"))
SEED = int(os.environ.get("FR_CHAOS_SEED", str(random.randrange(1_000_000))))
#: The workers' Redis transport: function-runner's reliable fetch (default), or kombu's with "0".
RELIABLE_FETCH = os.environ.get("FR_CHAOS_RELIABLE_FETCH", "1") != "0"
#: Time for the fleet to finish the work once everything is published and the chaos has stopped.
SETTLE_TIMEOUT = 240 + TASKS / 20


@pytest.fixture
def shared_redis(tmp_path: Path) -> Iterator[services.PrivateRedis]:
    """The run's own Redis, with an append-only file (it is restarted during the run): the broker on
    Redis, the Redis the workers share (``redis_url``) on RabbitMQ."""
    directory = tmp_path / "redis"
    directory.mkdir()
    server = services.PrivateRedis(str(directory), persistent=True)
    yield server
    server.close()


@pytest.fixture(params=["redis", "rabbitmq"])
def broker_url(request: pytest.FixtureRequest, shared_redis: services.PrivateRedis) -> Iterator[str]:
    """The broker of the run: its own Redis, or a vhost of its own on the machine's RabbitMQ."""
    if request.param == "redis":
        yield shared_redis.url
        return
    with services.rabbitmq_vhost() as vhost:
        yield f"amqp://guest:guest@{services.RABBIT_HOST}:{services.RABBIT_PORT}/{vhost}"


@pytest.fixture
def postgres() -> Iterator[services.PrivatePostgres]:
    """The run's own Postgres server, migrated: it is stopped for 10 s during the run."""
    server = services.PrivatePostgres()
    try:
        engine = sa.create_engine(server.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql("CREATE DATABASE chaos")
        engine.dispose()
        upgrade(server.url("chaos"))
        yield server
    finally:
        server.close()


@pytest.fixture
def chaos_env(
    broker_url: str,
    shared_redis: services.PrivateRedis,
    postgres: services.PrivatePostgres,
    redis_url: str,
    tmp_path: Path,
) -> dict[str, str]:
    """The environment of every process of the run."""
    return process_env(
        database_url=postgres.url("chaos"),
        broker_url=broker_url,
        redis_url=shared_redis.url,
        state_url=redis_url,
        data_dir=tmp_path / "data",
        resource_check_interval="1",
        gate_check_interval="1",
        compensation_sweep_after="5",
        redispatch_after="30",
        unrecorded_redeliver_after="15",
        reliable_fetch="true" if RELIABLE_FETCH else "false",
    )


@pytest.fixture
def run(
    spawn: Callable[..., Process], chaos_env: dict[str, str], redis_url: str, postgres: services.PrivatePostgres
) -> Iterator[ChaosRun]:
    publisher = create_app(settings_of(chaos_env), main="fr_chaos_publisher")
    state = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    engine = make_engine(postgres.url("chaos"))
    chaos = ChaosRun(
        spawn=spawn,
        env=chaos_env,
        publisher=publisher,
        state=state,
        engine=engine,
        api_port=services.free_port(),
        seed=SEED,
    )
    try:
        yield chaos
    finally:
        chaos.stop()
        runtime_for(publisher).close()
        publisher.close()
        engine.dispose()
        state.close()


@pytest.mark.timeout(int(120 + 3 * TASKS / RATE + 2 * SETTLE_TIMEOUT))
def test_chaos(run: ChaosRun, shared_redis: services.PrivateRedis, postgres: services.PrivatePostgres) -> None:
    began = time.monotonic()
    tasks = plan(TASKS, SEED)
    publish_time = TASKS / RATE
    run.start_worker("prefork")
    run.start_worker("threads")  # eight tasks at a time in one process: failures recorded together
    for _ in range(2):  # two dispatchers race for the same rows
        run.start_dispatcher()
    run.start_api()
    run.publish(tasks, RATE)
    run.kill_at_random(every=(1.5, 3.5))
    run.probe_api([t.task_id for t in tasks])

    run.wait_published(0.3, TASKS, timeout=publish_time * 3 + 60)
    run.event("Redis stopping")
    shared_redis.stop()  # Redis restarts (a clean restart: its append-only file keeps every message)
    shared_redis.start()
    run.event("Redis started")
    run.figures.redis_restarts += 1

    run.wait_published(0.55, TASKS, timeout=publish_time * 3 + 60)
    stopped = time.monotonic()
    run.event("Postgres stopping")
    postgres.stop()
    time.sleep(10)  # the outage itself: Postgres is down for 10 s, whatever the fleet does meanwhile
    postgres.start()
    run.event("Postgres started")
    run.figures.database_stops += 1
    run.figures.database_down_seconds = time.monotonic() - stopped

    run.wait_published(0.7, TASKS, timeout=publish_time * 3 + 60)
    run.state.set("disk-free", 1)  # the resource the waiting tasks need is back

    run.wait_published(0.8, TASKS, timeout=publish_time * 3 + 60)
    run.bulk_replay("A")  # batch A's cause is fixed: replay its dead letters while the chaos goes on

    run.wait_published(1.0, TASKS, timeout=publish_time * 3 + 60)
    time.sleep(5)  # a few more seconds of kills on a fleet with no new work coming in
    run.stop_killing()

    _settle(run, shared_redis, lambda: tasks, what="every task to reach a terminal state")
    job = run.bulk_replay("A")  # the rest of batch A, now that every original task has ended
    run.wait_replay_job(job["id"], timeout=SETTLE_TIMEOUT)
    _settle(run, shared_redis, lambda: _planned_replays(run, tasks), what="every replay to reach a terminal state")
    run.stop()
    replays = _planned_replays(run, tasks)
    everything = tasks + replays
    truth, record = run.truth(_ids(everything)), run.record()
    dropped = _dropped_by_broker(run, shared_redis, everything, truth, record)
    found = checks.violations([p for p in everything if p.task_id not in dropped], truth, record)
    bound = _transport_loss_bound(run)
    found["drops by the Redis transport within its bound"] = (
        [f"{len(dropped)} messages dropped by the broker's transport, more than its {bound} windows"]
        if len(dropped) > bound
        else []
    )
    unheld = _taken_never_held(run, shared_redis)
    found["every message taken off a queue held as unacked (reliable fetch)"] = (
        [f"{tag} taken and never held" for tag in sorted(unheld)] if RELIABLE_FETCH else []
    )
    found["replays of fixed batch A succeeded"] = [
        f"replay {p.task_id} ended {checks.outcome(p.task_id, truth, record)}"
        for p in replays
        if checks.outcome(p.task_id, truth, record) != "succeeded"
    ]
    found["API answers (2xx, 404, or 503 in the envelope)"] = run.figures.api_errors
    found["threads"] = [repr(e) for e in run.failures]

    figures = run.figures
    counts = run.counts()
    ends = {end: sum(1 for p in tasks if checks.outcome(p.task_id, truth, record) == end) for end in checks.TERMINAL}
    print()
    print(
        f"chaos seed {SEED}: {len(tasks)} tasks ({', '.join(f'{k} {sum(p.kind == k for p in tasks)}' for k in checks.EXPECTED)})"
    )
    print(f"ends: {', '.join(f'{k} {v}' for k, v in sorted(ends.items()))}; replays {len(replays)}")
    print(
        f"kills: {figures.pool_kills} pool processes, {figures.worker_kills} whole workers; restarts: Redis "
        f"{figures.redis_restarts}, Postgres {figures.database_stops} (down {figures.database_down_seconds:.1f} s)"
    )
    print(
        f"recorded: {counts['failed attempts']} failed attempts, {counts['retries']} retries, {counts['waits']} waits, "
        f"{counts['dead letters']} dead letters, {counts['lost deliveries']} lost deliveries, "
        f"{counts['compensated steps']} steps compensated; {figures.bulk_replays} bulk replays, {counts['replays']} replayed"
    )
    print(
        f"API: {sum(figures.api_statuses.values())} requests {dict(sorted(figures.api_statuses.items()))}; publish retries {figures.publish_retries}"
    )
    print(
        f"broker transport: {'reliable fetch' if RELIABLE_FETCH else 'kombu'}; messages popped and never held as "
        f"unacked (the broker's append-only file): {len(unheld)}; tasks dropped with them: {len(dropped)} "
        f"{sorted(dropped)}"
    )
    print(f"violations: {sum(len(v) for v in found.values())}; duration {time.monotonic() - began:.0f} s")
    explained = [item.split()[0] for items in found.values() for item in items[:6] if len(item.split()[0]) == 32]
    assert not any(found.values()), checks.summary(found) + "\n" + "\n".join(run.describe(t) for t in explained)


def _replays_of(run: ChaosRun) -> list[tuple[str, str]]:
    with run.engine.connect() as conn:
        query = (
            "SELECT d.task_id, r.task_id FROM fr_replay_requests r JOIN fr_dead_letters d ON d.id = r.dead_letter_id"
        )
        return [(str(a), str(b)) for a, b in conn.execute(sa.text(query))]


def _planned_replays(run: ChaosRun, tasks: list[Planned]) -> list[Planned]:
    """The replays, as tasks of the same kind and charge as the tasks they replay."""
    originals = {p.task_id: p for p in tasks}
    replays = []
    for original, replay in _replays_of(run):
        source = originals.get(original)
        if source is not None:
            replays.append(Planned(replay, source.kind, pays=source.pays, batch=source.batch))
    return replays


def _transport_loss_bound(run: ChaosRun) -> int:
    """The most messages the Redis transport can drop in this run: none with the reliable fetch; with
    kombu's, one per live worker at each Redis restart (each worker pops one message at a time), one per
    whole-worker kill."""
    if RELIABLE_FETCH:
        return 0
    return run.figures.redis_restarts * len(run.workers) + run.figures.worker_kills


def _taken_never_held(run: ChaosRun, shared_redis: services.PrivateRedis) -> set[str]:
    """The messages a worker popped off a queue and never stored as unacked, per the broker's
    append-only file (none on RabbitMQ: the Redis restarted there is not the broker)."""
    if not run.env["FUNCTION_RUNNER_BROKER_URL"].startswith("redis"):
        return set()
    return broker_log.taken_never_held(broker_log.log_of(Path(shared_redis.directory) / "appendonlydir"))


def _dropped_by_broker(
    run: ChaosRun,
    shared_redis: services.PrivateRedis,
    planned: list[Planned],
    truth: checks.Truth,
    record: checks.Record,
) -> set[str]:
    """The tasks lost inside kombu's Redis transport, not by function-runner: the broker's append-only
    file shows a worker popped the task's last message and never stored it as unacked (Redis stopped, or
    the worker was killed, between the two commands), and the task has no terminal outcome. The last
    message may be a redelivery: one the wrapper gave back to the broker while Postgres was down. Always
    empty on RabbitMQ (the Redis restarted there is not the broker)."""
    taken = _taken_never_held(run, shared_redis)
    return {p.task_id for p in planned if p.task_id in taken and checks.outcome(p.task_id, truth, record) is None}


def _settle(
    run: ChaosRun, shared_redis: services.PrivateRedis, planned: Callable[[], list[Planned]], *, what: str
) -> None:
    """Wait until every planned task has a terminal outcome (or was dropped by the broker's transport,
    see :func:`_dropped_by_broker`) and no compensation step is left; else fail naming the seed and
    describing the tasks still open (their rows, ground truth, the chaos around them, log lines)."""
    open_tasks: list[str] = []

    def settled() -> bool:
        nonlocal open_tasks
        if run.failures:
            raise run.failures[0]
        tasks = planned()
        truth, record = run.truth(_ids(tasks)), run.record()
        open_tasks = checks.lost(tasks, truth, record)
        if open_tasks:
            still = {line.split()[0] for line in open_tasks}
            dropped = _dropped_by_broker(run, shared_redis, [p for p in tasks if p.task_id in still], truth, record)
            open_tasks = [line for line in open_tasks if line.split()[0] not in dropped]
        return not open_tasks and run.unsettled_steps() == 0

    try:
        wait_until(settled, timeout=SETTLE_TIMEOUT, interval=2, what=what)
    except TimedOut:
        details = "\n".join(f"{line}\n{run.describe(line.split()[0])}" for line in open_tasks[:5])
        raise TimedOut(
            f"seed {SEED}: timed out after {SETTLE_TIMEOUT:.0f} s waiting for {what}: {len(open_tasks)} task(s) "
            f"without a terminal outcome, {run.unsettled_steps()} compensation step(s) open\n{details}"
        ) from None


def _ids(tasks: list[Planned]) -> list[str]:
    return [t.task_id for t in tasks]

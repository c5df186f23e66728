"""The chaos run: real workers, dispatchers and an API process on a broker and a Postgres server of the
run's own, while a publisher, a killer and an API prober run in threads and the run restarts the
broker, stops Postgres for a while, frees a resource and replays dead letters in bulk.

:class:`ChaosRun` does the moves; the test decides the plan and checks the result
(:mod:`tests.chaos.checks`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import redis as redis_lib
import sqlalchemy as sa
from celery import Celery

from tests.chaos.checks import Planned, Record, Truth
from tests.support.processes import Process, celery_worker_args, cli_args
from tests.support.waiting import wait_until

APP = "tests.chaos.tasks_app"
API = "/api/v1/errors"
#: How the published tasks are mixed (kind: weight).
MIX = {"success": 50, "transient": 20, "resource": 10, "validation": 10, "permanent": 10}


@dataclasses.dataclass
class Figures:
    """What happened during the run (printed at its end)."""

    published: int = 0
    publish_retries: int = 0
    pool_kills: int = 0
    worker_kills: int = 0
    redis_restarts: int = 0
    database_stops: int = 0
    database_down_seconds: float = 0.0
    bulk_replays: int = 0
    api_statuses: Counter[int] = dataclasses.field(default_factory=Counter)
    api_errors: list[str] = dataclasses.field(default_factory=list)


def plan(count: int, seed: int) -> list[Planned]:
    """``count`` tasks of the mix, a third of them charging a payment; permanent ones in batch A
    (fixed and replayed during the run) or B (left in the dead-letter queue)."""
    rng = random.Random(seed)
    kinds, weights = zip(*MIX.items(), strict=True)
    tasks = []
    for _ in range(count):
        kind = rng.choices(kinds, weights)[0]
        batch = rng.choice("AB") if kind == "permanent" else ""
        tasks.append(Planned(uuid.uuid4().hex, kind, pays=rng.random() < 0.33, batch=batch))
    return tasks


def kwargs_of(task: Planned, rng: random.Random) -> dict[str, Any]:
    """The task's keyword arguments: its kind, how often it fails, a little work to be killed in."""
    return {
        "kind": task.kind,
        "fails": rng.choice([1, 2]) if task.kind == "transient" else 0,
        "batch": task.batch,
        "pays": task.pays,
        "work": rng.choice([0.0, 0.0, 0.01, 0.05]),
    }


class ChaosRun:
    """The processes of one run and the threads that make trouble."""

    def __init__(
        self,
        *,
        spawn: Callable[..., Process],
        env: dict[str, str],
        publisher: Celery,
        state: redis_lib.Redis,
        engine: sa.Engine,
        api_port: int,
        seed: int,
    ) -> None:
        self.spawn, self.env, self.publisher, self.state, self.engine = spawn, env, publisher, state, engine
        self.api_url = f"http://127.0.0.1:{api_port}{API}"
        self.api_port = api_port
        self.rng = random.Random(seed)
        self.figures = Figures()
        self.workers: list[Process] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.killing = threading.Event()
        self.threads: list[threading.Thread] = []
        self.failures: list[BaseException] = []
        self._names = iter(range(10_000))
        self.spawned: list[tuple[str, Process]] = []
        #: The pool of each live worker, by pid (a killed worker is replaced by one of the same pool).
        self.pools: dict[int, str] = {}
        #: What the run did to the fleet and when (wall clock): kills, restarts, outages.
        self.events: list[tuple[float, str]] = []
        #: When each task's message was accepted by the broker (wall clock).
        self.published_at: dict[str, float] = {}

    def event(self, what: str) -> None:
        """Note something the run did to the fleet (shown by :meth:`describe`)."""
        self.events.append((time.time(), what))

    # processes -----------------------------------------------------------------------------------
    def start_worker(self, pool: str = "prefork") -> Process:
        """A real worker, ready: prefork with 2 processes, or threads with 8 threads (their failures
        recorded together, see ``function_runner.wrapper.group_commit``)."""
        name = f"chaos{next(self._names)}"
        concurrency = 2 if pool == "prefork" else 8
        worker = self.spawn(
            celery_worker_args(APP, name=name, pool=pool, concurrency=concurrency),
            env=self.env,
            name=f"worker-{name}",
        )
        self.spawned.append((f"worker-{name}", worker))
        worker.wait_for_log(" ready.", timeout=90)
        with self.lock:
            self.workers.append(worker)
            self.pools[worker.pid] = pool
        return worker

    def start_dispatcher(self) -> Process:
        dispatcher = self.spawn(cli_args("dispatcher", "--app", APP), env=self.env, name="dispatcher")
        self.spawned.append((f"dispatcher-{len(self.spawned)}", dispatcher))
        dispatcher.wait_for_log("dispatcher.started", timeout=90)
        return dispatcher

    def start_api(self) -> Process:
        api = self.spawn(cli_args("api", "--port", str(self.api_port)), env=self.env, name="api")
        api.wait_for_log("Uvicorn running", timeout=90)
        return api

    # threads -------------------------------------------------------------------------------------
    def _thread(self, target: Callable[[], None], name: str) -> None:
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # reported by the test, never swallowed
                self.failures.append(exc)
                self.stopping.set()

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def publish(self, tasks: list[Planned], rate: float) -> None:
        """Publish ``tasks`` at ``rate`` per second in a thread; a publish the broker refused (it is
        being restarted) is tried again with the same task id until it is accepted."""

        def run() -> None:
            began = time.monotonic()
            with self.publisher.producer_or_acquire() as producer:
                for i, task in enumerate(tasks):
                    pause = began + i / rate - time.monotonic()
                    if pause > 0 and self.stopping.wait(pause):
                        return
                    kwargs = kwargs_of(task, self.rng)
                    while True:
                        try:
                            self.publisher.send_task(
                                "chaos.job", kwargs=kwargs, task_id=task.task_id, producer=producer
                            )
                            self.published_at[task.task_id] = time.time()
                            break
                        except Exception:  # the broker is down: the producer tries again
                            self.figures.publish_retries += 1
                            if self.stopping.wait(0.5):
                                return
                    self.figures.published += 1

        self._thread(run, "publisher")

    def kill_at_random(self, every: tuple[float, float]) -> None:
        """Until :meth:`stop_killing`: every few seconds SIGKILL a random pool process (four times in
        five, of a prefork worker) or a whole worker with its pool (then start another like it)."""
        self.killing.set()

        def run() -> None:
            while self.killing.is_set() and not self.stopping.wait(self.rng.uniform(*every)):
                if not self.killing.is_set():
                    return
                with self.lock:
                    worker = self.rng.choice(self.workers)
                children = worker.children()
                if children and self.rng.random() < 0.8:
                    with contextlib.suppress(ProcessLookupError):
                        import os
                        import signal

                        child = self.rng.choice(children)
                        os.kill(child, signal.SIGKILL)
                        self.figures.pool_kills += 1
                        self.event(f"SIGKILL pool process {child} of worker {worker.pid}")
                    continue
                with self.lock:
                    self.workers.remove(worker)
                    pool = self.pools.pop(worker.pid)
                worker.kill()
                self.figures.worker_kills += 1
                self.event(f"SIGKILL {pool} worker {worker.pid} and its pool")
                self.start_worker(pool)

        self._thread(run, "killer")

    def stop_killing(self) -> None:
        self.killing.clear()

    def probe_api(self, task_ids: list[str]) -> None:
        """Query the API in a thread until the run stops: each answer is 2xx, a 404 for a task with
        no history yet, or a 503 in the error envelope while Postgres is down; never another 5xx."""
        paths = [
            "?limit=20",
            "/stats",
            "/analysis?window_minutes=60",
            "/dead-letters?limit=20",
            "/health",
            "/recovery/stats",
        ]

        def run() -> None:
            with httpx.Client(timeout=30) as client:
                while not self.stopping.wait(0.25):
                    path = self.rng.choice([*paths, f"/task/{self.rng.choice(task_ids)}/history"])
                    try:
                        response = client.get(self.api_url + path)
                    except httpx.HTTPError as exc:
                        self.figures.api_errors.append(f"GET {path}: {exc!r}")
                        continue
                    self.figures.api_statuses[response.status_code] += 1
                    if response.status_code >= 500:
                        body = response.json() if "json" in response.headers.get("content-type", "") else {}
                        if response.status_code != 503 or "error" not in body:
                            self.figures.api_errors.append(f"GET {path}: {response.status_code} {response.text[:300]}")

        self._thread(run, "api-prober")

    # moves ---------------------------------------------------------------------------------------
    def bulk_replay(self, batch: str) -> dict[str, Any]:
        """Fix batch ``batch`` and replay its dead letters through the API, at a safe rate."""
        self.state.set(f"fixed:{batch}", 1)
        body = {"task_name": "chaos.job", "search": f"[{batch}]", "rate_per_second": 200.0}
        response = httpx.post(f"{self.api_url}/dead-letters/replay", json=body, timeout=30)
        assert response.status_code == 202, response.text
        self.figures.bulk_replays += 1
        return dict(response.json())

    def wait_replay_job(self, job_id: int, *, timeout: float) -> None:
        """Wait until the bulk replay job has published everything it matched."""

        def finished() -> bool:
            response = httpx.get(f"{self.api_url}/dead-letters/replays/{job_id}", timeout=30)
            return response.status_code == 200 and response.json()["finished_at"] is not None

        wait_until(finished, timeout=timeout, interval=0.5, what=f"bulk replay job {job_id} to finish")

    def wait_published(self, fraction: float, total: int, *, timeout: float) -> None:
        def published() -> bool:
            if self.failures:
                raise self.failures[0]
            return self.figures.published >= fraction * total

        wait_until(published, timeout=timeout, what=f"{fraction:.0%} of {total} tasks published")

    def stop(self) -> None:
        self.stopping.set()
        self.killing.clear()
        for thread in self.threads:
            thread.join(timeout=120)

    # snapshots -----------------------------------------------------------------------------------
    def truth(self, task_ids: list[str]) -> Truth:
        """The ground truth of ``task_ids``."""
        s = self.state
        ok = set(s.smembers("ok"))
        with s.pipeline() as pipe:
            for task_id in task_ids:
                pipe.smembers(f"raised:{task_id}")
                pipe.get(f"starts:{task_id}")
                pipe.get(f"refunds:{task_id}")
            values = pipe.execute()
        truth = Truth(ok=ok)
        for i, task_id in enumerate(task_ids):
            raised, starts, refunds = values[3 * i : 3 * i + 3]
            if raised:
                truth.raised[task_id] = {int(a) for a in raised}
            truth.starts[task_id] = int(starts or 0)
            if refunds:
                truth.refunds[task_id] = int(refunds)
        return truth

    def record(self) -> Record:
        """What function-runner recorded, from Postgres."""
        record = Record()
        with self.engine.connect() as conn:
            record.states = {str(t): str(s) for t, s in conn.execute(sa.text("SELECT task_id, state FROM fr_tasks"))}
            attempts = conn.execute(sa.text("SELECT task_id, attempt, reason FROM fr_failed_attempts"))
            record.attempts = [(str(t), int(a), str(r)) for t, a, r in attempts]
            for task_id, reason, has_payload in conn.execute(
                sa.text(
                    "SELECT task_id, reason, args IS NOT NULL AND kwargs IS NOT NULL AND replayable "
                    "FROM fr_dead_letters"
                )
            ):
                record.letters[task_id] = (reason, bool(has_payload))
                record.letter_rows.append(task_id)
            lost = conn.execute(sa.text("SELECT task_id, attempt FROM fr_lost_deliveries"))
            record.lost_deliveries = {(str(t), int(a)) for t, a in lost}
            for task_id, status in conn.execute(sa.text("SELECT task_id, status FROM fr_compensation_steps")):
                record.steps.setdefault(task_id, []).append(status)
        return record

    def describe(self, task_id: str) -> str:
        """Everything recorded about one task, its ground truth, what the run did to the fleet around
        its publication, and the log lines that name it (to explain a violation)."""
        lines = [f"--- {task_id}"]
        truth = self.truth([task_id])
        lines.append(
            f"truth: body started {truth.starts.get(task_id, 0)} time(s), raised at attempts "
            f"{sorted(truth.raised.get(task_id, ()))}, succeeded {task_id in truth.ok}"
        )
        published = self.published_at.get(task_id)
        if published is not None:
            lines.append(f"published at {published:.3f}")
            lines += [f"  {at - published:+.3f} s: {what}" for at, what in self.events if abs(at - published) <= 10]
        with self.engine.connect() as conn:
            for table in (
                "fr_tasks",
                "fr_failed_attempts",
                "fr_scheduled_runs",
                "fr_lost_deliveries",
                "fr_dead_letters",
            ):
                for row in conn.execute(sa.text(f"SELECT * FROM {table} WHERE task_id = :t"), {"t": task_id}):
                    fields = {
                        k: v for k, v in row._mapping.items() if k not in {"traceback", "args", "kwargs", "headers"}
                    }
                    lines.append(f"{table}: {fields}")
        for name, process in self.processes():
            lines += [f"{name}: {line}" for line in process.log().splitlines() if task_id in line][:20]
        return "\n".join(lines)

    def processes(self) -> list[tuple[str, Process]]:
        """Every process of the run, by name."""
        return list(self.spawned)

    def counts(self) -> dict[str, int]:
        """Row counts for the figures."""
        queries = {
            "failed attempts": "SELECT count(*) FROM fr_failed_attempts",
            "retries": "SELECT count(*) FROM fr_scheduled_runs WHERE kind = 'retry'",
            "waits": "SELECT count(*) FROM fr_scheduled_runs WHERE kind = 'resource_wait'",
            "dead letters": "SELECT count(*) FROM fr_dead_letters",
            "replays": "SELECT count(*) FROM fr_replay_requests",
            "lost deliveries": "SELECT count(*) FROM fr_lost_deliveries",
            "compensated steps": "SELECT count(*) FROM fr_compensation_steps WHERE status = 'compensated'",
        }
        with self.engine.connect() as conn:
            return {name: int(conn.execute(sa.text(q)).scalar_one()) for name, q in queries.items()}

    def unsettled_steps(self) -> int:
        """Compensation steps still to be undone or being undone."""
        with self.engine.connect() as conn:
            query = "SELECT count(*) FROM fr_compensation_steps WHERE status IN ('pending', 'running')"
            return int(conn.execute(sa.text(query)).scalar_one())

    def replayed_task_ids(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT task_id FROM fr_replay_requests")).scalars())

"""``function-runner demo``: every route end to end on the embedded default, in under a minute.

It creates a fresh data directory (SQLite + kombu's filesystem transport: no servers), migrates the
database, starts a real ``celery worker`` process and a dispatcher, enqueues one task per route, frees
the "GPU" a few seconds later, waits until every task has reached its terminal state, and prints what
the database recorded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from error_handling.persistence.models import TERMINAL_STATES
from error_handling.persistence.reads.attempts import get_task
from error_handling.persistence.reads.histories import task_history

#: How long the demo waits for every task to finish before it gives up, in seconds.
DEMO_DEADLINE = 90.0
#: When the demo frees the GPU, in seconds after enqueueing (and not before the GPU task found it busy).
GPU_FREED_AFTER = 4.0


def _demo_environment(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNCTION_RUNNER_")}
    env.update(
        FUNCTION_RUNNER_DATA_DIR=str(data_dir),
        FUNCTION_RUNNER_RETRY_BASE_DELAY="0.5",
        FUNCTION_RUNNER_RETRY_MAX_DELAY="2",
        FUNCTION_RUNNER_RESOURCE_CHECK_INTERVAL="1",
        FUNCTION_RUNNER_DISPATCHER_INTERVAL="0.2",
        FUNCTION_RUNNER_DEMO_GPU_MARKER=str(data_dir / "gpu-free"),
    )
    return env


def run_demo(console: Console | None = None, *, keep: bool = False) -> int:
    """Run the demo; return 0 when every task reached the expected terminal state."""
    console = console or Console(width=None if sys.stdout.isatty() else 132)
    data_dir = Path(tempfile.mkdtemp(prefix="function-runner-demo-"))
    env = _demo_environment(data_dir)
    os.environ.update({k: v for k, v in env.items() if k.startswith("FUNCTION_RUNNER_")})
    for key in [k for k in os.environ if k.startswith("FUNCTION_RUNNER_") and k not in env]:
        del os.environ[key]

    from function_runner.demo import tasks as demo_tasks
    from function_runner.dispatch.dispatcher import Dispatcher
    from function_runner.migrate import upgrade
    from function_runner.runtime import runtime_for

    runtime = runtime_for(demo_tasks.app)
    console.print(f"[bold]function-runner demo[/] in {data_dir} (SQLite + filesystem broker, no servers)")
    upgrade(runtime.settings.effective_database_url)

    worker = _start_worker(env, keep=keep)
    dispatcher = Dispatcher(demo_tasks.app, runtime)
    thread = threading.Thread(target=dispatcher.run_forever, name="dispatcher", daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        expected = {
            demo_tasks.flaky_llm_call.delay(
                "summarise the report", api_key="sk-demo-0123456789abcdef0123"
            ).id: "succeeded",
            demo_tasks.render_on_gpu.delay("scene-42").id: "succeeded",
            demo_tasks.create_invoice.delay(-5).id: "failed_fast",
            demo_tasks.sync_crm.delay("acme", password="hunter2").id: "dead_lettered",
        }
        console.print(f"enqueued {len(expected)} tasks; a worker (pid {worker.pid}) and a dispatcher are running")
        gpu_freed = False
        gpu_wanted = data_dir / demo_tasks.GPU_WANTED  # freed once the task has found it busy: it must wait
        deadline = started + DEMO_DEADLINE
        while time.monotonic() < deadline:
            if not gpu_freed and time.monotonic() - started > GPU_FREED_AFTER and gpu_wanted.exists():
                (data_dir / "gpu-free").touch()
                gpu_freed = True
                console.print("the GPU is free again: waiting tasks will be released")
            if _all_terminal(runtime.sessions, list(expected)):
                break
            if worker.poll() is not None:
                console.print(f"[red]the worker exited with {worker.returncode}[/]")
                return 1
            time.sleep(0.25)
        else:
            console.print("[red]timed out waiting for the demo tasks[/]")
        ok = _report(console, runtime.sessions, expected)
        console.print(f"done in {time.monotonic() - started:.1f}s")
        return 0 if ok else 1
    finally:
        dispatcher.stop()
        thread.join(timeout=5)
        _stop_worker(worker)
        runtime.close()


def _start_worker(env: dict[str, str], *, keep: bool) -> subprocess.Popen[bytes]:
    """A real ``celery worker`` process for the demo's app (its output shown only with ``keep``)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "function_runner.demo.tasks",
            "worker",
            "--pool",
            "threads",
            "--concurrency",
            "4",
            "--loglevel",
            "WARNING",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            "-n",
            "demo@%h",
        ],
        env=env,
        stdout=subprocess.DEVNULL if not keep else None,
        stderr=subprocess.STDOUT if not keep else None,
    )


def _stop_worker(worker: subprocess.Popen[bytes]) -> None:
    """Stop the worker warmly (SIGTERM), then for good if it takes longer than 15 s."""
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=15)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def _all_terminal(sessions: sessionmaker[Session], task_ids: Sequence[str]) -> bool:
    with sessions() as session:
        tasks = [get_task(session, task_id=task_id) for task_id in task_ids]
    return all(task is not None and task.state in TERMINAL_STATES for task in tasks)


def _report(console: Console, sessions: sessionmaker[Session], expected: dict[str, str]) -> bool:
    ok = True
    outcomes = Table(title="Task outcomes (read back from the database)")
    for column in ("task", "state", "expected", "runs"):
        outcomes.add_column(column, no_wrap=True)
    outcomes.add_column("failed attempts: category/reason -> decision")
    with sessions() as session:
        histories = {task_id: task_history(session, task_id=task_id) for task_id in expected}
        for task_id, want in expected.items():
            history = histories[task_id]
            task = history.task if history else None
            attempts = history.attempts if history else []
            state = task.state.value if task else "missing"
            ok &= state == want
            failures = "\n".join(f"#{a.attempt} {a.category}/{a.reason} -> {a.decision.value}" for a in attempts)
            total = (task.attempts + (1 if state == "succeeded" else 0)) if task else 0
            style = "green" if state == want else "red"
            outcomes.add_row(task.task_name if task else task_id, f"[{style}]{state}[/]", want, str(total), failures)
        found = [history for history in histories.values() if history is not None]
        letters = sorted((h.dead_letter for h in found if h.dead_letter is not None), key=lambda letter: letter.id)
        user_messages = {h.task.task_name: h.task.user_message for h in found if h.task and h.task.user_message}
    console.print(outcomes)
    dlq = Table(title="Dead-letter queue")
    for column in ("id", "task", "reason", "message", "kwargs (as stored: secrets sealed, shown redacted)"):
        dlq.add_column(column)
    from error_handling.sealing import redacted_view

    for letter in letters:
        dlq.add_row(
            str(letter.id), letter.task_name, letter.reason, letter.message or "", str(redacted_view(letter.kwargs))
        )
    console.print(dlq)
    for name, message in user_messages.items():
        console.print(f"message for the user of {name}: [italic]{message}[/]")
    console.print("[green]every route ended as expected[/]" if ok else "[red]some tasks did not end as expected[/]")
    return ok

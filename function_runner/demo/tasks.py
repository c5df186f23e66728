"""The demo's Celery app and tasks: one task per route, on the embedded default (no servers).

Used by ``function-runner demo``; also a compact example of ``RecoverableTask`` in use.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from error_handling.exceptions import PermanentError, ResourceError, TransientError, ValidationError
from function_runner.app import create_app
from function_runner.settings import Settings
from function_runner.wrapper.task import RecoverableTask

#: The file render_on_gpu leaves next to the GPU marker when it found no GPU.
GPU_WANTED = "gpu-wanted"

app = create_app(Settings(), main="function_runner_demo")
app.conf.update(worker_enable_remote_control=False, worker_send_task_events=False)


@app.task(base=RecoverableTask, bind=True, name="demo.flaky_llm_call")
def flaky_llm_call(self: RecoverableTask, prompt: str, api_key: str) -> str:
    """Fails like an overloaded provider (503) on its first two attempts, then answers."""
    if self.attempt < 3:
        raise TransientError(f"provider overloaded (attempt {self.attempt})", reason="service_unavailable")
    return f"answer to {prompt!r}"


@app.task(base=RecoverableTask, bind=True, name="demo.render_on_gpu")
def render_on_gpu(self: RecoverableTask, scene: str) -> str:
    """Needs a GPU; parks in the wait queue until the demo 'frees' one (a marker file appears)."""
    marker = Path(os.environ.get("FUNCTION_RUNNER_DEMO_GPU_MARKER", "gpu-free"))
    if not marker.exists():
        marker.with_name(GPU_WANTED).touch()  # tells the demo it may free the GPU now
        raise ResourceError("no GPU with enough free memory", resource="gpu", reason="gpu_unavailable")
    return f"rendered {scene}"


@app.task(base=RecoverableTask, name="demo.create_invoice")
def create_invoice(amount: Any) -> str:
    """Rejects bad input: fails fast with a message for the user, never retried."""
    if not isinstance(amount, int | float) or amount <= 0:
        raise ValidationError(
            f"amount must be a positive number, got {amount!r}",
            user_message="The invoice amount must be a positive number.",
        )
    return f"invoice for {amount}"


@app.task(base=RecoverableTask, name="demo.sync_crm")
def sync_crm(account: str, password: str) -> str:
    """Fails permanently (the credentials were revoked): straight to the dead-letter queue."""
    raise PermanentError(f"CRM rejected credentials for {account}", reason="auth_failed")

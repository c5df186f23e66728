"""function-runner: the Celery side.

Use ``RecoverableTask`` as the base of your tasks (or the :func:`task` decorator), attach the runtime
with :func:`install` (or build an app with :func:`create_app`), and run ``function-runner dispatcher``
next to your workers.
"""

from __future__ import annotations

from function_runner.app import create_app, install
from function_runner.runtime import Runtime, runtime_for
from function_runner.settings import Settings
from function_runner.wrapper.task import RecoverableTask, task

__all__ = ["RecoverableTask", "Runtime", "Settings", "create_app", "install", "runtime_for", "task"]

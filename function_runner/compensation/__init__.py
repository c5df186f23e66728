"""Compensation (sagas): a task records the side effects it made and how to undo them; when it (or a
later task of its Celery chain) fails for good, the undos run newest first, each once, and every
outcome is recorded.

- :mod:`~function_runner.compensation.recorder`: recording steps (``self.compensation``,
  ``record_operation``), ``CompensateOn``, ``UndoKind``;
- :mod:`~function_runner.compensation.publish`: starting a saga's compensation;
- the compensate task that runs the undos is a :class:`~function_runner.wrapper.task.RecoverableTask`
  subclass, :mod:`~function_runner.wrapper.compensator` (the wrapper uses this package, not the reverse).

The steps are rows of ``fr_compensation_steps`` (:mod:`error_handling.persistence.compensation`).
"""

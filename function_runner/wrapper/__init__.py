"""The task wrapper: the task, what is recorded of a failure, and how Celery sees it."""

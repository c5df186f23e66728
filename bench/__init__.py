"""Benchmarks against bare Celery and of the API; see bench/README.md."""

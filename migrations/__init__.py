"""Alembic migrations of function-runner's tables."""

"""The ``function-runner`` command line (typer): one module per command group."""

from function_runner.cli.main import app, main

__all__ = ["app", "main"]

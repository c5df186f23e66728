"""``python -m function_runner.cli``: the same as the ``function-runner`` command."""

from function_runner.cli.main import main

main()

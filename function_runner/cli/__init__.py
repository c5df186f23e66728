"""The ``function-runner`` command line (typer): one module per command group.

Modules:

    main.py          the root: demo, worker, dispatcher, api; adds the groups below
    db.py            db upgrade | downgrade
    errors.py        errors list | show | history
    dlq.py           dlq list | show | discard (and registers the replays, in help order)
    dlq_replay.py    dlq replay | replay-all | replay-status | replay-cancel
    dlq_options.py   the options the dlq commands share
    audit.py         audit list
    keys.py          keys generate | rotate
    common.py        one-line errors and exit codes, settings, --app, a database session, the actor
    output.py        what goes to stdout: JSON documents, next-page hints, times
"""

from function_runner.cli.main import app, main

__all__ = ["app", "main"]

"""The options the ``dlq`` commands share (used as ``opt.DeadLetterId``): the id of one dead letter, and the
dead-letter filter of ``dlq list`` and ``dlq replay-all`` (:func:`takes_filter`)."""

from __future__ import annotations

import datetime as dt
import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any

import typer

from error_handling.persistence.reads.dlq import DeadLetterFilter
from function_runner.cli.common import utc

#: The id argument of the commands on one dead letter.
DeadLetterId = Annotated[int, typer.Argument(metavar="ID", help="The dead letter's id.")]

#: The default of a command's ``flt`` parameter (Typer never sees it: see :func:`takes_filter`).
NO_FILTER = DeadLetterFilter()

#: The options of the dead-letter filter, in the order ``--help`` shows them: one per field.
FILTER_OPTIONS: dict[str, Any] = {
    "task_name": Annotated[str | None, typer.Option("--task", help="Only this task name.")],
    "category": Annotated[str | None, typer.Option(help="Only this error category.")],
    "reason": Annotated[str | None, typer.Option(help="Only this dead-letter reason.")],
    "fingerprint": Annotated[str | None, typer.Option(help="Only this error fingerprint.")],
    "queue": Annotated[str | None, typer.Option(help="Only this queue.")],
    "search": Annotated[str | None, typer.Option("--search", "-q", help="Text in the error message.")],
    "since": Annotated[dt.datetime | None, typer.Option(help="Created at or after (UTC).")],
    "until": Annotated[dt.datetime | None, typer.Option(help="Created before (UTC).")],
}


def takes_filter(command: Callable[..., None]) -> Callable[..., None]:
    """A command with a ``flt: DeadLetterFilter`` parameter, as Typer sees it: the filter's options stand
    in ``flt``'s place, and the command is called with the filter they make (times without a timezone
    are UTC). Typer has no option groups; this declares the filter's options once for every command."""
    signature = inspect.signature(command, eval_str=True)
    parameters: list[inspect.Parameter] = []
    for parameter in signature.parameters.values():
        if parameter.name != "flt":
            parameters.append(parameter)
            continue
        parameters.extend(
            inspect.Parameter(name, parameter.kind, default=None, annotation=option)
            for name, option in FILTER_OPTIONS.items()
        )

    @functools.wraps(command)
    def with_filter(**options: Any) -> None:
        values = {name: options.pop(name) for name in FILTER_OPTIONS}
        flt = DeadLetterFilter(**values | {"since": utc(values["since"]), "until": utc(values["until"])})
        command(flt=flt, **options)

    with_filter.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    with_filter.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": None}
    return with_filter

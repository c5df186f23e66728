"""What a Redis broker did with each message, read back from its append-only file.

kombu's Redis transport takes a message with ``BRPOP`` and only then, in a second command, stores it in
its ``unacked`` hash (where it is restored from if the worker dies). A message popped when Redis stops,
or when the worker's main process is killed, between those two commands is gone: no worker has it, no
function-runner code has seen it. The chaos run restarts Redis and kills workers, so it can hit that
window; this module proves from the broker's own log which messages were lost there, so the run can
tell them apart from a loss of function-runner's. function-runner's reliable transport pops and holds
in one script, which Redis logs as its effects (``RPOP``, ``ZADD``, ``HSET``) inside ``MULTI``/``EXEC``:
with it, this set must be empty.

The append-only file must be whole: the server runs with rewrites off (``auto-aof-rewrite-percentage
0``) and started empty. Redis logs a served ``BRPOP`` as ``RPOP`` and keeps ``MULTI``/``EXEC`` around
transactions; commands of a transaction that was not committed are not in the file.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from pathlib import Path

#: The hash kombu's Redis transport keeps each taken, not yet acknowledged message in, by delivery tag.
UNACKED = b"unacked"


def commands(data: bytes) -> Iterator[list[bytes]]:
    """The commands of an append-only file's text (RESP arrays of bulk strings)."""
    i = 0
    while i < len(data):
        if data[i : i + 1] != b"*":
            raise ValueError(f"not a command at byte {i}: {data[i : i + 20]!r}")
        end = data.index(b"\r\n", i)
        count, i = int(data[i + 1 : end]), end + 2
        args = []
        for _ in range(count):
            end = data.index(b"\r\n", i)
            size, i = int(data[i + 1 : end]), end + 2
            args.append(data[i : i + size])
            i += size + 2
        yield args


def log_of(directory: Path) -> bytes:
    """The commands of a Redis 7 append-only directory, in order (from its manifest)."""
    manifest = (directory / "appendonly.aof.manifest").read_text().split("\n")
    files = [dict(zip(line.split()[::2], line.split()[1::2], strict=True)) for line in manifest if line.strip()]
    base = [f for f in files if f.get("type") == "b"]
    for f in base:
        content = (directory / f["file"]).read_bytes()
        if f["file"].endswith(".rdb") and len(content) > 200:
            raise ValueError("the append-only file was rewritten: its history is gone (turn rewrites off)")
    incremental = sorted((f for f in files if f.get("type") == "i"), key=lambda f: int(f["seq"]))
    return b"".join((directory / f["file"]).read_bytes() for f in incremental)


def _message(value: bytes) -> tuple[str, str] | None:
    """(task id, delivery tag) of a kombu message, or None for any other value."""
    try:
        message = json.loads(value)
        return str(message["headers"]["id"]), str(message["properties"]["delivery_tag"])
    except (ValueError, KeyError, TypeError):
        return None


def taken_never_held(log: bytes) -> set[str]:
    """Task ids of messages a consumer popped from a queue that were never stored in ``unacked``
    afterwards (and never pushed back): lost in the transport's window between the two commands."""
    queues: dict[tuple[bytes, bytes], deque[bytes]] = {}  # (db, key) -> the list
    taken: dict[str, str] = {}  # delivery tag -> task id, popped and not (yet) held
    db = b"0"
    for args in commands(log):
        name = args[0].upper()
        if name == b"SELECT":
            db = args[1]
        elif name in (b"LPUSH", b"RPUSH"):
            queue = queues.setdefault((db, args[1]), deque())
            for value in args[2:]:
                if name == b"LPUSH":
                    queue.appendleft(value)
                else:
                    queue.append(value)
                found = _message(value)
                if found is not None:
                    taken.pop(found[1], None)  # given back to a queue: no longer lost
        elif name in (b"RPOP", b"LPOP") and (db, args[1]) in queues:
            queue = queues[db, args[1]]
            count = int(args[2]) if len(args) > 2 else 1
            for _ in range(min(count, len(queue))):
                value = queue.pop() if name == b"RPOP" else queue.popleft()
                found = _message(value)
                if found is not None:
                    taken[found[1]] = found[0]
        elif name == b"HSET" and args[1] == UNACKED:
            for tag in args[2::2]:
                taken.pop(tag.decode(), None)
        elif name == b"DEL":
            for key in args[1:]:
                queues.pop((db, key), None)
    return set(taken.values())

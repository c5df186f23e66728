"""The encryption key: checked when a process starts, never made up per process outside the embedded default.

Every secret kept for replay is sealed with ``encryption_key`` (see :mod:`error_handling.sealing`).
A worker that sealed with a key of its own would write dead letters nobody else can replay, so:

- a malformed key is a configuration error (:meth:`~function_runner.settings.Settings.sealer` raises
  :class:`~error_handling.exceptions.ConfigurationError`, naming the key by position, never its text);
- so is a missing key as soon as the database or the broker is a server; only the embedded default
  (SQLite and a broker with no server, one machine) keeps its key file in ``data_dir``;
- each process checks at start, so the error comes once, on one line, before any work: a worker at
  ``worker_init`` (:func:`function_runner.app.check_worker_key`), a dispatcher and the API when created, and
  the commands that seal or unseal before they do.

Rotation (:func:`rotate_keys`, ``function-runner keys rotate``): with the new key first and the old
one after it in ``encryption_key`` on every process, every stored secret is re-sealed under the new
key: the database's sealed columns (:mod:`error_handling.persistence.rekey`, a short transaction per
batch) and the failures kept in the shared Redis (:mod:`function_runner.wrapper.unrecorded`, each replaced only
if nobody changed it meanwhile). Resumable: a value already sealed with the first key is skipped. Then
the old key can be removed.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable
from typing import Any, Protocol

from error_handling.persistence import rekey
from error_handling.sealing import reseal_secrets
from function_runner.services import HasSettings, Sealing, SharedState, Transactional

__all__ = ["UNRECORDED_TABLE", "KeyServices", "Rotation", "TableRotation", "check_key", "rotate_keys"]

#: The name :class:`Rotation` gives the failures kept in the shared Redis.
UNRECORDED_TABLE = "redis:fr:unrecorded"
#: Redis keys scanned per round trip.
_SCAN_COUNT = 500
#: The Redis keys of the failures kept while the database is down (see :mod:`function_runner.wrapper.unrecorded`).
_UNRECORDED_PREFIX = "fr:unrecorded:"
# Replace a kept failure only if it is still the text that was read (KEEPTTL: it expires as before).
_COMPARE_AND_SET = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
    return 1
end
return 0
"""


class KeyServices(HasSettings, Sealing, Transactional, SharedState, Protocol):
    """What :func:`rotate_keys` uses of the app's services (the runtime has them)."""


def check_key(services: HasSettings) -> None:
    """Check the configured key now, so a missing or malformed key fails here, not at the first failure
    (the embedded default's key file is still made when first needed).

    Raises:
        ConfigurationError: no key while the database or the broker is a server, or a key that is not a
            Fernet key.
    """
    services.settings.check_encryption_key()


@dataclasses.dataclass
class TableRotation(rekey.ResealCounts):
    """The rotation of one table (or of the failures kept in Redis): its counts (with ``dry_run``: what
    would be re-sealed and re-written); ``unopened_ids`` in Redis are ``task_id:attempt``.

    Attributes:
        table: the table's name (:data:`UNRECORDED_TABLE` for Redis).
    """

    table: str = dataclasses.field(kw_only=True)


@dataclasses.dataclass
class Rotation:
    """What :func:`rotate_keys` did, table by table."""

    dry_run: bool
    tables: list[TableRotation] = dataclasses.field(default_factory=list)

    @property
    def rotated(self) -> int:
        """Values re-sealed (or that would be, in a dry run)."""
        return sum(t.rotated for t in self.tables)

    @property
    def unopened(self) -> int:
        """Values no configured key opens."""
        return sum(t.unopened for t in self.tables)


def rotate_keys(
    services: KeyServices,
    *,
    batch_size: int = 500,
    dry_run: bool = False,
    progress: Callable[[TableRotation], None] | None = None,
) -> Rotation:
    """Re-seal every stored secret with the first configured key (see the module docstring).

    Args:
        services: whose database, shared Redis and keys to use.
        batch_size: rows per transaction.
        dry_run: count what would be re-sealed; change nothing.
        progress: called with a table's running totals after each batch.

    Raises:
        ConfigurationError: the key is missing or malformed.
        StorageUnavailable: the database cannot be reached (run it again: it resumes).
        redis.RedisError: the shared Redis failed (run it again).
    """
    sealer = services.sealer
    rotation = Rotation(dry_run=dry_run)
    for target in rekey.SEALED_COLUMNS:
        totals = TableRotation(table=target.name)
        rotation.tables.append(totals)
        after: Any = None
        while True:
            batch = services.in_transaction(
                functools.partial(
                    rekey.reseal_batch, target=target, sealer=sealer, after=after, limit=batch_size, dry_run=dry_run
                ),
                patience=0,
            )
            totals.add(batch)
            if progress is not None and batch.rows:
                progress(totals)
            if batch.rows < batch_size:
                break
            after = batch.last_key
    kept = _rotate_unrecorded(services, dry_run=dry_run)
    if kept is not None:
        rotation.tables.append(kept)
        if progress is not None and kept.rows:
            progress(kept)
    return rotation


def _rotate_unrecorded(services: KeyServices, *, dry_run: bool) -> TableRotation | None:
    """Re-seal the payloads of the failures kept in the shared Redis; None without one."""
    try:
        client = services.shared_redis.require()
    except RuntimeError:  # no shared Redis: nothing is kept there
        return None
    from function_runner.wrapper import unrecorded

    totals = TableRotation(table=UNRECORDED_TABLE)
    replace = client.register_script(_COMPARE_AND_SET)
    for name in client.scan_iter(match=f"{_UNRECORDED_PREFIX}*", count=_SCAN_COUNT):
        key = name.decode() if isinstance(name, bytes) else str(name)
        if key == unrecorded.SEEN:
            continue
        text = client.get(key)
        if text is None:  # recorded and forgotten meanwhile
            continue
        _rotate_kept(services, totals, key, text, replace=replace, dry_run=dry_run)
    return totals


def _rotate_kept(
    services: KeyServices, totals: TableRotation, key: str, text: Any, *, replace: Any, dry_run: bool
) -> None:
    """Re-seal one kept failure (its text as read) and count it in ``totals``."""
    try:
        fields = json.loads(text)
        payload = fields["payload"]
    except (ValueError, TypeError, KeyError):
        return  # not a kept failure
    totals.rows += 1
    rotated = unopened = 0
    for part in ("args", "kwargs", "headers"):
        resealed = reseal_secrets(payload.get(part), sealer=services.sealer)
        rotated += resealed.rotated
        totals.current += resealed.current
        unopened += resealed.unopened
        if resealed.rotated:
            payload[part] = resealed.value
    if unopened:
        totals.unopened += unopened
        totals.unopened_ids.append(key[len(_UNRECORDED_PREFIX) :])
    if not rotated:
        return
    # changed meanwhile (recorded, or kept again): left for the next run
    if dry_run or replace(keys=[key], args=[text, json.dumps(fields, separators=(",", ":"))]):
        totals.rows_changed += 1
        totals.rotated += rotated

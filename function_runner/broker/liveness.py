"""Worker liveness on Redis: a dead worker's messages come back in seconds, not after the visibility timeout.

::

    worker take (Lua)  ──►  {unacked}:held:{consumer}  +  {unacked}:consumers  +  {unacked}:alive:{consumer}
    Heartbeat thread   ──►  renews {unacked}:alive:{consumer} (TTL liveness_timeout)
    dispatcher role    ──►  restore_lapsed: a consumer without its alive key gets what it held put back

Every move is one atomic script, so any number of dispatchers may restore at once and a live consumer is
never robbed. Right after Redis restarts (uptime below ``liveness_timeout``) the restore waits.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from typing import TYPE_CHECKING, Any

import redis
from kombu.utils.json import dumps, loads

from function_runner.events import log_event

if TYPE_CHECKING:
    from kombu.transport.redis import Channel as RedisChannel

__all__ = [
    "LIVENESS_INTERVAL",
    "LIVENESS_TIMEOUT",
    "RESTORE_BATCH",
    "Census",
    "Keys",
    "RestoreResult",
    "census",
    "restore_lapsed",
]

logger = logging.getLogger(__name__)

#: Default seconds between two heartbeats of a consumer (transport option ``liveness_interval``).
LIVENESS_INTERVAL = 5.0
#: Default seconds a heartbeat lives: a consumer silent for this long has lapsed (``liveness_timeout``;
#: 0 turns liveness off and leaves only the visibility timeout).
LIVENESS_TIMEOUT = 15.0
#: Held messages given back by one restore script at most.
RESTORE_BATCH = 200

# KEYS: 1 alive key, 2 held set, 3 unacked hash, 4 unacked index, 5 consumers set, 6 restored counter.
# ARGV: 1 consumer id, 2 number of entries, then per entry: tag, sha1 of the unacked entry seen (or
# empty), payload to push, number of lists, the lists.
# Returns -1 when the consumer is alive, else the number of messages restored.
_RESTORE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
    return -1
end
local restored = 0
local i = 3
for n = 1, tonumber(ARGV[2]) do
    local tag, seen, payload, count = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
    local held = redis.call('ZSCORE', KEYS[2], tag)
    local indexed = redis.call('ZSCORE', KEYS[4], tag)
    local current = redis.call('HGET', KEYS[3], tag)
    if held and indexed and current and held == indexed and seen ~= '' and redis.sha1hex(current) == seen then
        redis.call('HDEL', KEYS[3], tag)
        redis.call('ZREM', KEYS[4], tag)
        for j = 1, count do
            redis.call('RPUSH', ARGV[i + 3 + j], payload)
        end
        restored = restored + 1
    end
    redis.call('ZREM', KEYS[2], tag)
    i = i + 4 + count
end
if redis.call('ZCARD', KEYS[2]) == 0 then
    redis.call('DEL', KEYS[2])
    redis.call('SREM', KEYS[5], ARGV[1])
end
if restored > 0 then
    redis.call('INCRBY', KEYS[6], restored)
end
return restored
"""


@dataclasses.dataclass(frozen=True)
class Keys:
    """The liveness keys next to a channel's ``unacked`` hash (names without the global key prefix).

    Args:
        unacked_key: the channel's ``unacked_key`` transport option (kombu's default ``unacked``).
    """

    unacked_key: str

    @property
    def consumers(self) -> str:
        """The set of consumers that may hold messages."""
        return f"{self.unacked_key}:consumers"

    def held(self, consumer: str) -> str:
        """The sorted set of the delivery tags ``consumer`` holds, scored as in the unacked index."""
        return f"{self.unacked_key}:held:{consumer}"

    def alive(self, consumer: str) -> str:
        """The heartbeat key of ``consumer`` (exists while it is alive)."""
        return f"{self.unacked_key}:alive:{consumer}"

    @property
    def restored(self) -> str:
        """The count of messages the dispatchers restored from lapsed consumers, ever."""
        return f"{self.unacked_key}:restored"


def _plain_client(channel: RedisChannel) -> redis.Redis:
    """A client on the channel's pool that does not prefix keys (the callers prefix them)."""
    return redis.Redis(connection_pool=channel.pool)


@dataclasses.dataclass
class RestoreResult:
    """What one restore pass did."""

    #: Consumers found lapsed and forgotten (or partly restored, the rest next pass).
    lapsed: list[str] = dataclasses.field(default_factory=list)
    #: Messages put back in their queues.
    restored: int = 0
    #: Whether the pass waited because Redis restarted less than ``liveness_timeout`` ago.
    waited: bool = False


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _digest(value: bytes) -> str:
    return hashlib.sha1(value).hexdigest()  # compared with Lua's redis.sha1hex


def _entry(channel: Any, tag: str, raw: bytes | str | None, prefix: str) -> list[Any]:
    """The script arguments of one held tag: its digest, the payload to push back and its lists."""
    if raw is None:
        return [tag, "", "", 0]
    try:
        payload, exchange, routing_key = loads(_text(raw))  # type: ignore[no-untyped-call]
        for part in (payload.get("headers"), payload.get("properties", {}).get("delivery_info")):
            if isinstance(part, dict):
                part["redelivered"] = True
        priority = channel._get_message_priority(payload, reverse=False)
        lists = [prefix + channel._q_for_pri(queue, priority) for queue in channel._lookup(exchange, routing_key)]
    except (ValueError, TypeError, AttributeError, KeyError) as exc:  # not kombu's entry: leave it to kombu
        logger.error("liveness: cannot restore held message %s: %s", tag, exc)
        return [tag, "", "", 0]
    encoded = raw.encode() if isinstance(raw, str) else raw
    return [tag, _digest(encoded), dumps(payload), len(lists), *lists]  # type: ignore[no-untyped-call]


@dataclasses.dataclass(frozen=True)
class Census:
    """The worker consumers a broker knows, as the health endpoint reports them."""

    #: Consumers whose heartbeat is alive.
    alive: int
    #: Consumers whose heartbeat lapsed and whose messages no dispatcher has restored yet.
    lapsed: int
    #: Messages restored from lapsed consumers since the counter began (Redis keeps it).
    restored: int


def census(channel: RedisChannel) -> Census:
    """Count the live and lapsed consumers of the broker behind ``channel`` (two round trips).

    Raises:
        redis.RedisError: Redis failed.
    """
    prefix = channel.global_keyprefix or ""
    keys = Keys(channel.unacked_key)
    client = _plain_client(channel)
    try:
        consumers = [_text(c) for c in client.smembers(prefix + keys.consumers)]
        with client.pipeline(transaction=False) as pipe:
            for consumer in consumers:
                pipe.exists(prefix + keys.alive(consumer))
            pipe.get(prefix + keys.restored)
            *beating, restored = pipe.execute()
    finally:
        client.close()
    alive = sum(1 for b in beating if b)
    return Census(alive=alive, lapsed=len(consumers) - alive, restored=int(restored or 0))


def restore_lapsed(channel: RedisChannel, *, timeout: float = LIVENESS_TIMEOUT) -> RestoreResult:
    """Give back to their queues the messages held by every consumer whose heartbeat has lapsed.

    Safe to run from any number of processes at once (each message is moved by one atomic script).

    Args:
        channel: a kombu Redis channel of the broker (its key prefix, ``unacked_key`` and bindings).
        timeout: the workers' ``liveness_timeout``: no restore while Redis has been up for less.

    Raises:
        redis.RedisError: Redis failed (nothing half done: the next pass goes on).
    """
    result = RestoreResult()
    prefix = channel.global_keyprefix or ""
    keys = Keys(channel.unacked_key)
    client = _plain_client(channel)
    try:
        consumers = sorted(_text(c) for c in client.smembers(prefix + keys.consumers))
        if not consumers:
            return result
        with client.pipeline(transaction=False) as pipe:
            for consumer in consumers:
                pipe.exists(prefix + keys.alive(consumer))
            alive = pipe.execute()
        lapsed = [c for c, beating in zip(consumers, alive, strict=True) if not beating]
        if not lapsed:
            return result
        if _recently_started(client, timeout):
            result.waited = True
            return result
        restore = client.register_script(_RESTORE)
        for consumer in lapsed:
            restored = _restore_consumer(channel, client, restore, consumer, keys=keys, prefix=prefix)
            if restored is None:  # it beat meanwhile
                continue
            result.lapsed.append(consumer)
            result.restored += restored
            log_event("liveness.restored", level=logging.WARNING, consumer=consumer, restored=restored)
    finally:
        client.close()
    return result


def _restore_consumer(
    channel: RedisChannel, client: redis.Redis, restore: Any, consumer: str, *, keys: Keys, prefix: str
) -> int | None:
    """Restore one lapsed consumer's messages, a batch per script; None if it turned out alive."""
    script_keys = [
        prefix + keys.alive(consumer),
        prefix + keys.held(consumer),
        prefix + channel.unacked_key,
        prefix + channel.unacked_index_key,
        prefix + keys.consumers,
        prefix + keys.restored,
    ]
    total = 0
    while True:
        # newest first: each is pushed to the head of its queue, so the oldest ends up taken first
        held = client.zrange(script_keys[1], 0, RESTORE_BATCH - 1, desc=True)
        tags = [_text(t) for t in held if isinstance(t, bytes | str)]
        raws = client.hmget(script_keys[2], tags) if tags else []
        args: list[Any] = [consumer, len(tags)]
        for tag, raw in zip(tags, raws, strict=True):
            args += _entry(channel, tag, raw, prefix)
        restored = int(restore(keys=script_keys, args=args))
        if restored < 0:
            return None if total == 0 else total
        total += restored
        if len(tags) < RESTORE_BATCH:
            return total


def _recently_started(client: redis.Redis, timeout: float) -> bool:
    """Whether Redis has been up for less than ``timeout`` (heartbeats may have expired while it was down)."""
    try:
        uptime = client.info("server").get("uptime_in_seconds")
    except redis.ResponseError:  # INFO refused (some managed servers): no way to tell
        return False
    return uptime is not None and float(uptime) < timeout

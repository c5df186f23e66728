"""A Redis broker transport that never loses a message it takes off a queue: kombu's, with a reliable fetch.

kombu's Redis transport takes a message with ``BRPOP`` and only then, in a second command, stores it
as unacked (the ``unacked`` hash that the visibility timeout restores from). A worker killed between
the two, or a reply lost when Redis restarts after popping, loses the message: it is in no queue and
in no hash, and nothing ever sees it again. The chaos suite measured it (one to a few messages per
whole-worker kill or Redis restart under load, proved from the broker's append-only file).

Here the take and the store are one step: a Lua script pops the first message of the channel's queues
(in kombu's order: priority steps, then queues in its fair cycle) and writes it to the unacked hash and
index in the same atomic call, so the message is always in a queue or held as unacked; a worker that
dies at any point leaves it to the visibility timeout, as kombu does for a message held longer.

The same script records which consumer holds the message and renews that consumer's heartbeat, so
the dispatchers give a dead worker's messages back within seconds instead of after the visibility
timeout (see :mod:`function_runner.broker.liveness`; transport options ``liveness_interval``, default 5 s,
and ``liveness_timeout``, default 15 s, 0 to turn it off).

A script cannot block. When the queues are empty the channel waits with ``BLMOVE q q RIGHT RIGHT``
on the first queue's main list: that command moves a list's last element to where it already is, so it
changes nothing and returns as soon as the list has a message (a blocking peek). Messages of the
other lists (priorities, further queues) are picked up by the next poll, at most ``idle_poll`` seconds
later (transport option, default 0.1 s). A busy worker never waits: it polls again at once.

Everything else is kombu's: publishing (producers may use kombu's own transport), acks, rejects,
restoring unacked messages, fanout, priorities, key prefixes. A server that refuses ``BLMOVE`` (Redis
before 6.2) gets a plain timed wait instead; one that refuses scripts gets kombu's ``BRPOP`` (with a
warning in the log: the window is back). ``create_app`` uses it for ``redis://``
brokers (setting ``reliable_fetch``); the message format is unchanged, so workers on either transport
can share a broker.
"""

from __future__ import annotations

import hashlib
import logging
import os
from time import monotonic, time
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads
from redis.exceptions import NoScriptError, ResponseError

from function_runner.broker.heartbeat import Heartbeat, consumer_id
from function_runner.broker.liveness import LIVENESS_INTERVAL, LIVENESS_TIMEOUT, Keys

__all__ = ["Channel", "QoS", "Transport"]

logger = logging.getLogger(__name__)

# KEYS[1] the unacked hash, KEYS[2] its index, KEYS[3] the consumer's held set, KEYS[4] its heartbeat,
# KEYS[5] the set of consumers, KEYS[6..] the lists to take from, in order.
# ARGV[1] the time the message is held from (the visibility timeout counts from it), ARGV[2] the
# consumer's name (empty: liveness off), ARGV[3] its heartbeat's time to live in milliseconds.
# Returns nothing, or {list number (1-based), message, 1 if held as unacked else 0}.
_TAKE = """
for i = 6, #KEYS do
    local item = redis.call('RPOP', KEYS[i])
    if item then
        local ok, message = pcall(cjson.decode, item)
        local tag, exchange, routing_key
        if ok and type(message) == 'table' and type(message['properties']) == 'table' then
            local properties = message['properties']
            tag = properties['delivery_tag']
            local info = properties['delivery_info']
            if type(info) == 'table' then
                exchange = info['exchange']
                routing_key = info['routing_key']
            end
        end
        if type(tag) == 'string' and type(exchange) == 'string' and type(routing_key) == 'string' then
            redis.call('ZADD', KEYS[2], ARGV[1], tag)
            redis.call('HSET', KEYS[1], tag,
                '[' .. item .. ',' .. cjson.encode(exchange) .. ',' .. cjson.encode(routing_key) .. ']')
            if ARGV[2] ~= '' then
                redis.call('ZADD', KEYS[3], ARGV[1], tag)
                redis.call('SET', KEYS[4], 1, 'PX', ARGV[3])
                redis.call('SADD', KEYS[5], ARGV[2])
            end
            return {i - 5, item, 1}
        end
        return {i - 5, item, 0}
    end
end
return false
"""
_TAKE_SHA = hashlib.sha1(_TAKE.encode()).hexdigest()  # Redis names scripts by SHA-1

#: Default for the ``idle_poll`` transport option (seconds).
IDLE_POLL = 0.1


class QoS(kombu_redis.QoS):
    """kombu's ack emulation, without writing again what the take already stored as unacked, and
    releasing the consumer's ownership of a message wherever kombu releases the message itself."""

    def append(self, message: Any, delivery_tag: Any) -> None:
        held = self.channel._held
        if delivery_tag in held:
            held.discard(delivery_tag)
            virtual.QoS.append(self, message, delivery_tag)  # remember it for ack, reject and shutdown
        else:
            super().append(message, delivery_tag)

    def _remove_from_indices(self, delivery_tag: Any, pipe: Any = None) -> Any:
        # kombu's ack, reject and restore all go through here, in their own pipeline or transaction
        pipe = super()._remove_from_indices(delivery_tag, pipe)
        consumer = self.channel._consumer
        if consumer:
            pipe.zrem(Keys(self.channel.unacked_key).held(consumer), delivery_tag)
        return pipe


class Channel(kombu_redis.Channel):
    """kombu's Redis channel whose consumer takes and holds a message in one atomic step."""

    QoS = QoS
    #: Seconds an idle channel waits before it looks at lists other than its first queue's main list.
    idle_poll = IDLE_POLL
    #: Seconds between two heartbeats of the channel's consumer (see :mod:`function_runner.broker.liveness`).
    liveness_interval = LIVENESS_INTERVAL
    #: Seconds a heartbeat lives; 0 turns liveness off (only the visibility timeout restores then).
    liveness_timeout = LIVENESS_TIMEOUT
    from_transport_options = (  # type: ignore[assignment]
        *kombu_redis.Channel.from_transport_options,
        "idle_poll",
        "liveness_interval",
        "liveness_timeout",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        #: Delivery tags the take stored as unacked, not yet passed to the QoS.
        self._held: set[str] = set()
        #: Queues consumed without acks: taken with kombu's own BRPOP, never held.
        self._no_ack_queues: set[str] = set()
        #: The command whose reply the connection awaits ("take" or "wait"), and the lists it covers.
        self._pending: str | None = None
        self._lists: list[str] = []
        self._idle = False
        self._script_loaded = False
        self._peek = True  # BLMOVE is there (Redis 6.2+); else the wait is a plain sleep
        self._scripting = True  # EVAL is there; else kombu's BRPOP, with its window
        #: The name this channel's consumer holds messages under (set at its first take), its heartbeat.
        self._consumer: str | None = None
        self._consumer_pid = 0
        self._heartbeat: Heartbeat | None = None
        super().__init__(*args, **kwargs)

    def _liveness(self) -> str:
        """The consumer's name for the take script, starting its heartbeat (empty: liveness off)."""
        if not self.liveness_timeout or self.liveness_timeout <= 0:
            return ""
        if self._consumer is None or self._consumer_pid != os.getpid():
            self._consumer, self._consumer_pid = consumer_id(), os.getpid()
            self._heartbeat = Heartbeat(
                self, self._consumer, interval=self.liveness_interval, timeout=self.liveness_timeout
            )
            self._heartbeat.start()
        return self._consumer

    def close(self) -> None:
        """Close as kombu does (its unacked messages go back to their queues), then stop the heartbeat."""
        try:
            super().close()
        finally:
            heartbeat, self._heartbeat = self._heartbeat, None
            if heartbeat is not None and self._consumer_pid == os.getpid():
                heartbeat.stop()

    def basic_consume(self, queue: str, no_ack: bool, *args: Any, **kwargs: Any) -> Any:
        if no_ack:
            self._no_ack_queues.add(queue)
        else:
            self._no_ack_queues.discard(queue)
        return super().basic_consume(queue, no_ack, *args, **kwargs)

    def _reliable(self) -> bool:
        # without ack emulation nothing is held; a no-ack consumer would never release what is held;
        # a server without scripting cannot take atomically
        return bool(self.ack_emulation) and self._scripting and not self._no_ack_queues.intersection(self.active_queues)

    def _brpop_start(self, timeout: float | None = None) -> None:
        if not self._reliable():
            self._pending = None
            super()._brpop_start(timeout)
            return
        queues = self._queue_cycle.consume(len(self.active_queues))
        if not queues:
            return
        lists = [self._q_for_pri(queue, pri) for pri in self.priority_steps for queue in queues]
        prefix = self.global_keyprefix or ""
        if self._idle:
            wait = min(self.idle_poll, timeout or self.brpop_timeout or self.idle_poll)
            if self._peek:
                first = prefix + lists[0]
                command: list[Any] = ["BLMOVE", first, first, "RIGHT", "RIGHT", wait]
            else:  # a key nobody writes: a sleep the server ends
                command = ["BLPOP", f"{prefix}{self.unacked_key}:idle", wait]
            self._pending = "wait"
        else:
            consumer = self._liveness()
            liveness = Keys(self.unacked_key)
            keys = [
                prefix + self.unacked_key,
                prefix + self.unacked_index_key,
                prefix + liveness.held(consumer),
                prefix + liveness.alive(consumer),
                prefix + liveness.consumers,
                *(prefix + k for k in lists),
            ]
            script = ["EVALSHA", _TAKE_SHA] if self._script_loaded else ["EVAL", _TAKE]
            command = [*script, len(keys), *keys, time(), consumer, int(self.liveness_timeout * 1000)]
            self._pending = "take"
        self._lists = lists
        self._in_poll = self.client.connection
        self._brpop_sent_at = monotonic()  # type: ignore[assignment]  # kombu's health check reads it
        self.client.connection.send_command(*command)

    def _brpop_read(self, **options: Any) -> bool:
        if self._pending is None:
            return bool(super()._brpop_read(**options))
        pending, self._pending = self._pending, None
        try:
            try:
                reply = self.client.parse_response(self.client.connection, "EVALSHA", **options)
            except self.connection_errors:
                self.client.connection.disconnect()
                raise
            except ResponseError as exc:
                self._on_error(pending, exc)
                raise virtual.Empty() from None
            if pending == "wait":  # something came, or the wait is over: look at every list
                self._idle = False
                raise virtual.Empty()
            self._script_loaded = True
            if not reply:
                self._idle = True
                raise virtual.Empty()
            number, item, held = reply
            dest = self._lists[int(number) - 1].rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(dest)
            message = loads(bytes_to_str(item))
            if held:
                self._held.add(message["properties"]["delivery_tag"])
                if self._heartbeat is not None:
                    self._heartbeat.expected = True  # the take set the heartbeat
            self.connection._deliver(message, dest)
            return True
        finally:
            self._in_poll = None  # type: ignore[assignment]
            flush = getattr(self, "_flush_brpop_reauth", None)  # kombu 5.6+: a re-auth waits for an idle link
            if flush is not None:
                flush()

    def _on_error(self, pending: str, exc: Exception) -> None:
        text = str(exc)
        unknown = "unknown command" in text.lower()
        if pending == "take" and isinstance(exc, NoScriptError):  # Redis restarted: send the script again
            self._script_loaded = False
        elif pending == "take" and unknown:  # a server without Lua (some managed or compatible servers)
            logger.warning("Redis refused the take script (%s): kombu's BRPOP takes messages instead", text)
            self._scripting = False
        elif pending == "wait" and self._peek and unknown:
            logger.warning("Redis refused BLMOVE (%s): idle channels poll every %ss instead", text, self.idle_poll)
            self._peek = False
            self._idle = False
        else:
            raise exc

    def _poll_error(self, type: str, **options: Any) -> None:
        if type == "BRPOP" and self._pending is not None:
            self._pending = None
            self.client.parse_response(self.client.connection, "EVALSHA")
            return
        super()._poll_error(type, **options)


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with the reliable take of :class:`Channel`."""

    Channel = Channel

"""A worker consumer's heartbeat on Redis: a daemon thread of the worker's main process renews
``{unacked}:alive:{consumer}`` every ``liveness_interval`` seconds, so a dispatcher can tell a live
consumer from a lapsed one (see :mod:`function_runner.broker.liveness`)."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import weakref
from typing import TYPE_CHECKING

import redis

from function_runner.broker.liveness import Keys
from function_runner.events import log_event

if TYPE_CHECKING:
    from kombu.transport.redis import Channel as RedisChannel

__all__ = ["Heartbeat", "consumer_id"]

logger = logging.getLogger(__name__)

# KEYS: 1 alive key, 2 held set, 3 consumers set. ARGV: 1 consumer id.
# A consumer that stops cleanly: no heartbeat; forgotten at once when it holds nothing.
_LEAVE = """
redis.call('DEL', KEYS[1])
if redis.call('ZCARD', KEYS[2]) == 0 then
    redis.call('SREM', KEYS[3], ARGV[1])
end
return 0
"""


def consumer_id() -> str:
    """A consumer name unique to this process and channel: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Heartbeat:
    """Renews one consumer's heartbeat from a daemon thread of the worker's main process.

    Args:
        channel: the consumer's channel (held weakly: the thread ends when it is collected or closed).
        consumer: the consumer's name.
        interval: seconds between two beats.
        timeout: the heartbeat's time to live, in seconds.
    """

    def __init__(self, channel: RedisChannel, consumer: str, *, interval: float, timeout: float) -> None:
        prefix = channel.global_keyprefix or ""
        keys = Keys(channel.unacked_key)
        self.consumer = consumer
        self.interval = interval
        self.timeout = timeout
        self._alive = prefix + keys.alive(consumer)
        self._held = prefix + keys.held(consumer)
        self._consumers = prefix + keys.consumers
        self._channel = weakref.ref(channel)
        # a pool of its own: the channel's is disconnected when it closes, before the last beat is deleted
        self._client = redis.Redis(connection_pool=redis.ConnectionPool(**channel._connparams()))  # type: ignore[no-untyped-call]
        self._stop = threading.Event()
        self._lock = threading.Lock()  # a beat and the stop never interleave
        self._failing = False
        #: Whether the heartbeat was set (by a beat or a take): until then, finding none is no lapse.
        self.expected = False
        self._thread = threading.Thread(target=self._run, name=f"liveness-{consumer}", daemon=True)

    def start(self) -> None:
        """Start beating."""
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            channel = self._channel()
            if channel is None or channel.closed:
                break
            del channel
            self.beat()
        if not self._stop.is_set():  # the channel went away without a clean stop
            self._leave()

    def beat(self) -> None:
        """Renew the heartbeat once (logs ``liveness.lapsed`` if it had expired meanwhile)."""
        with self._lock:
            if not self._stop.is_set():
                self._beat()

    def _beat(self) -> None:
        try:
            with self._client.pipeline() as pipe:
                pipe.exists(self._alive)
                pipe.set(self._alive, 1, px=int(self.timeout * 1000))
                pipe.sadd(self._consumers, self.consumer)
                existed, _, _ = pipe.execute()
        except redis.RedisError as exc:
            if not self._failing:
                log_event("liveness.beat_failed", level=logging.WARNING, consumer=self.consumer, error=str(exc))
            self._failing = True
            return
        self._failing = False
        expected, self.expected = self.expected, True
        if expected and not existed:
            log_event(
                "liveness.lapsed",
                level=logging.WARNING,
                consumer=self.consumer,
                detail="the heartbeat had expired: messages this worker held may have been given to others",
            )

    def stop(self) -> None:
        """Stop beating and delete the heartbeat (what the consumer still holds is then restored at once)."""
        with self._lock:
            if self._stop.is_set():
                return
            self._stop.set()
            self._leave()
        self._client.connection_pool.disconnect()

    def _leave(self) -> None:
        try:
            self._client.eval(_LEAVE, 3, self._alive, self._held, self._consumers, self.consumer)
        except redis.RedisError as exc:  # it lapses by itself
            logger.debug("liveness: could not delete the heartbeat of %s: %s", self.consumer, exc)

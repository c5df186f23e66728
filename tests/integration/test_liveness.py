"""Worker liveness on a real Redis (``function_runner.broker.liveness``): the take records who holds what, a
consumer whose heartbeat lapsed gets its messages put back once, a live one keeps them, and kombu's own
visibility-timeout restore never turns into a second copy."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from kombu import Connection, Consumer

from function_runner.broker.liveness import Census, Keys, census, restore_lapsed
from tests.integration.test_redis_transport import connect, publish, queue
from tests.support import services
from tests.support.waiting import wait_until

KEYS = Keys("unacked")


@pytest.fixture
def client(redis_url: str) -> Iterator[redis_lib.Redis]:
    client = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


def take(connection: Connection, name: str, count: int) -> list[Any]:
    """Take ``count`` messages of queue ``name`` and hold them (no ack), as a worker's prefetch does."""
    got: list[Any] = []
    consumer = Consumer(
        connection.default_channel, [queue(name)], callbacks=[lambda b, m: got.append((b, m))], prefetch_count=count
    )
    consumer.consume()
    while len(got) < count:
        connection.drain_events(timeout=10)
    consumer.cancel()
    return got


def die(connection: Connection) -> str:
    """Make the connection's consumer stop beating as a killed worker would: nothing acked, nothing
    restored, the heartbeat left to expire. Returns the consumer's name."""
    channel = connection.default_channel
    heartbeat = channel._heartbeat
    heartbeat._stop.set()  # the thread ends without deleting anything
    channel.do_restore = False  # closing it later gives nothing back, as a SIGKILL would not
    return str(channel._consumer)


def restorer(redis_url: str) -> Connection:
    """A dispatcher's connection (the channel the liveness role works through)."""
    return connect(redis_url)


def test_the_take_records_the_holder_and_its_heartbeat_and_the_ack_releases_it(
    redis_url: str, client: redis_lib.Redis
) -> None:
    publish(redis_url, "fr-l1", ["one", "two"])
    with connect(redis_url) as connection:
        (_, first), (_, second) = take(connection, "fr-l1", 2)
        consumer = connection.default_channel._consumer
        assert client.smembers(KEYS.consumers) == {consumer}
        assert client.pttl(KEYS.alive(consumer)) > 0
        held = dict(client.zrange(KEYS.held(consumer), 0, -1, withscores=True))
        assert set(held) == {first.delivery_tag, second.delivery_tag}
        assert held[first.delivery_tag] == client.zscore("unacked_index", first.delivery_tag)  # same take time
        first.ack()
        second.reject(requeue=True)  # kombu's restore path
        assert client.zcard(KEYS.held(consumer)) == 0
    # a clean stop deletes the heartbeat and forgets a consumer that holds nothing
    assert not client.exists(KEYS.alive(consumer)) and client.smembers(KEYS.consumers) == set()


def test_a_lapsed_consumers_messages_go_back_to_their_queue_once_with_the_redelivered_flag(
    redis_url: str, client: redis_lib.Redis
) -> None:
    publish(redis_url, "fr-l2", [f"m{i}" for i in range(5)])
    dying = connect(redis_url, liveness_timeout=1, liveness_interval=60)
    try:
        taken = take(dying, "fr-l2", 3)
        consumer = die(dying)
        assert client.hlen("unacked") == 3 and client.llen("fr-l2") == 2
        with restorer(redis_url) as connection:
            channel = connection.default_channel
            assert restore_lapsed(channel, timeout=1).restored == 0  # still alive: nothing moves
            wait_until(lambda: not client.exists(KEYS.alive(consumer)), what="the heartbeat to expire")
            result = restore_lapsed(channel, timeout=1)
            assert result.lapsed == [consumer] and result.restored == 3
            assert restore_lapsed(channel, timeout=1).restored == 0  # nothing twice
            assert census(channel) == Census(alive=0, lapsed=0, restored=3)
        assert client.hlen("unacked") == 0 and client.zcard("unacked_index") == 0
        assert client.llen("fr-l2") == 5
        assert not client.exists(KEYS.held(consumer)) and client.smembers(KEYS.consumers) == set()
        with connect(redis_url) as worker:
            again = take(worker, "fr-l2", 5)
            for _, message in again:
                message.ack()
        bodies = [body for body, _ in again]
        assert bodies[:3] == [body for body, _ in taken]  # back at the head, oldest first
        assert sorted(bodies) == [f"m{i}" for i in range(5)]
        assert [m.delivery_info["redelivered"] for _, m in again[:3]] == [True, True, True]
        assert [m.headers.get("redelivered") for _, m in again[:3]] == [True, True, True]
    finally:
        dying.close()


def test_a_consumer_that_beats_keeps_what_it_holds(redis_url: str, client: redis_lib.Redis) -> None:
    publish(redis_url, "fr-l3", ["slow"])
    with connect(redis_url, liveness_timeout=1, liveness_interval=0.2) as live:
        ((_, message),) = take(live, "fr-l3", 1)
        consumer = live.default_channel._consumer
        key = KEYS.alive(consumer)
        with restorer(redis_url) as connection:
            # through five renewals, i.e. well past the heartbeat's first time to live, every look finds it alive
            for _ in range(5):
                seen = [client.pttl(key)]

                def renewed(seen: list[int] = seen) -> bool:
                    assert restore_lapsed(connection.default_channel, timeout=1).lapsed == []
                    ttl = client.pttl(key)
                    assert ttl > 0, "the heartbeat of a live consumer expired"
                    seen.append(ttl)
                    return seen[-1] > seen[-2]  # its time to live went up again

                wait_until(renewed, timeout=5, interval=0.05, what="the heartbeat to be renewed")
        assert client.hexists("unacked", message.delivery_tag) and client.llen("fr-l3") == 0
        message.ack()


def test_two_restorers_at_once_restore_each_message_once(redis_url: str, client: redis_lib.Redis) -> None:
    publish(redis_url, "fr-l4", [f"m{i}" for i in range(300)])
    dying = connect(redis_url, liveness_timeout=1, liveness_interval=60)
    try:
        take(dying, "fr-l4", 300)
        consumer = die(dying)
        wait_until(lambda: not client.exists(KEYS.alive(consumer)), what="the heartbeat to expire")
        counts: list[int] = []
        start = threading.Barrier(2)

        def run() -> None:
            with restorer(redis_url) as connection:
                start.wait()
                counts.append(restore_lapsed(connection.default_channel, timeout=1).restored)

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(counts) == 300
        assert client.llen("fr-l4") == 300 and client.hlen("unacked") == 0
        assert len(set(client.lrange("fr-l4", 0, -1))) == 300
    finally:
        dying.close()


def test_a_message_the_visibility_timeout_restored_and_another_consumer_took_is_left_to_it(
    redis_url: str, client: redis_lib.Redis
) -> None:
    publish(redis_url, "fr-l5", ["contested"])
    dying = connect(redis_url, liveness_timeout=1, liveness_interval=60)
    try:
        ((_, first),) = take(dying, "fr-l5", 1)
        consumer = die(dying)
        with connect(redis_url, visibility_timeout=0) as sweeper:  # kombu's last resort
            sweeper.default_channel.qos.restore_visible(num=10, interval=1)
        assert client.llen("fr-l5") == 1
        with connect(redis_url) as other:
            ((_, second),) = take(other, "fr-l5", 1)
            assert second.delivery_tag == first.delivery_tag  # the same message, now held by another
            wait_until(lambda: not client.exists(KEYS.alive(consumer)), what="the heartbeat to expire")
            with restorer(redis_url) as connection:
                result = restore_lapsed(connection.default_channel, timeout=1)
            assert result.lapsed == [consumer] and result.restored == 0
            assert client.llen("fr-l5") == 0 and client.hexists("unacked", second.delivery_tag)
            second.ack()
    finally:
        dying.close()


def test_liveness_works_under_a_global_key_prefix(redis_url: str, client: redis_lib.Redis) -> None:
    with Connection(redis_url, transport_options={"global_keyprefix": "fr-p:"}) as plain:
        from kombu import Producer

        from tests.integration.test_redis_transport import EXCHANGE

        Producer(plain.default_channel, exchange=EXCHANGE).publish("p", routing_key="fr-l6", declare=[queue("fr-l6")])
    options = {"global_keyprefix": "fr-p:", "liveness_timeout": 1, "liveness_interval": 60}
    dying = connect(redis_url, **options)
    try:
        take(dying, "fr-l6", 1)
        consumer = die(dying)
        assert client.zcard("fr-p:" + KEYS.held(consumer)) == 1
        wait_until(lambda: not client.exists("fr-p:" + KEYS.alive(consumer)), what="the heartbeat to expire")
        with connect(redis_url, global_keyprefix="fr-p:") as connection:
            assert restore_lapsed(connection.default_channel, timeout=1).restored == 1
        assert client.llen("fr-p:fr-l6") == 1 and client.hlen("fr-p:unacked") == 0
    finally:
        dying.close()


def test_liveness_off_records_no_holder(redis_url: str, client: redis_lib.Redis) -> None:
    publish(redis_url, "fr-l7", ["plain"])
    with connect(redis_url, liveness_timeout=0) as connection:
        ((_, message),) = take(connection, "fr-l7", 1)
        assert client.hexists("unacked", message.delivery_tag)
        assert client.smembers(KEYS.consumers) == set() and connection.default_channel._heartbeat is None
        message.ack()


def test_right_after_redis_restarts_the_restore_waits_for_live_workers_to_beat_again(tmp_path: Path) -> None:
    """Heartbeats expire while Redis is down (their expiry is a point in time); live workers renew them
    within an interval of its return. Until Redis has been up for liveness_timeout nothing is restored."""
    server = services.PrivateRedis(str(tmp_path), persistent=True)
    try:
        publish(server.url, "fr-l8", ["a", "b"])
        dying = connect(server.url, liveness_timeout=1, liveness_interval=60)
        take(dying, "fr-l8", 2)
        consumer = die(dying)
        dying.close()
        server.stop()
        server.start()
        client = redis_lib.Redis.from_url(server.url, decode_responses=True)
        try:
            wait_until(lambda: not client.exists(KEYS.alive(consumer)), what="the heartbeat to expire")
            with connect(server.url) as connection:
                channel = connection.default_channel
                waited = restore_lapsed(channel, timeout=3)
                assert (waited.waited, waited.restored) == (True, 0)
                assert client.hlen("unacked") == 2
                wait_until(lambda: int(client.info("server")["uptime_in_seconds"]) >= 3, what="three seconds of uptime")
                assert restore_lapsed(channel, timeout=3).restored == 2
            assert client.llen("fr-l8") == 2 and client.hlen("unacked") == 0
        finally:
            client.close()
    finally:
        server.close()


def test_a_frozen_worker_that_resumes_after_its_restore_changes_nothing_and_says_it_lapsed(
    redis_url: str, client: redis_lib.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGSTOP for longer than liveness_timeout: the worker counts as dead and its messages go to others.
    When it resumes, its acks of those messages are no-ops and its next beat logs ``liveness.lapsed``."""
    caplog.set_level(logging.WARNING, logger="function_runner")
    publish(redis_url, "fr-l9", ["x", "y"])
    # an interval far beyond the timeout: the thread sleeps through it, as a stopped process would
    frozen = connect(redis_url, liveness_timeout=1, liveness_interval=3600)
    try:
        taken = take(frozen, "fr-l9", 2)
        channel = frozen.default_channel
        consumer = channel._consumer
        wait_until(lambda: not client.exists(KEYS.alive(consumer)), what="the heartbeat to expire")
        with restorer(redis_url) as connection:
            assert restore_lapsed(connection.default_channel, timeout=1).restored == 2
        for _, message in taken:  # it resumes and finishes its tasks
            message.ack()
        assert client.llen("fr-l9") == 2 and client.hlen("unacked") == 0  # the copies others will run stay
        channel._heartbeat.beat()
        assert [r for r in caplog.records if getattr(r, "fr_event", None) == "liveness.lapsed"]
        assert client.exists(KEYS.alive(consumer)) and consumer in client.smembers(KEYS.consumers)
    finally:
        frozen.close()


def test_an_idle_consumers_first_beat_is_no_lapse(redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="function_runner")
    with connect(redis_url, liveness_timeout=1, liveness_interval=3600) as idle:
        consumer = Consumer(idle.default_channel, [queue("fr-l10")], callbacks=[lambda *_: None])
        consumer.consume()
        with pytest.raises(TimeoutError):  # it polls an empty queue: its take script ran, it holds nothing
            idle.drain_events(timeout=0.3)
        idle.default_channel._heartbeat.beat()
        consumer.cancel()
    assert not [r for r in caplog.records if getattr(r, "fr_event", None) == "liveness.lapsed"]

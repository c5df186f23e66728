"""The reliable Redis transport (``function_runner.broker.redis_transport``) against a real Redis: a message is
in a queue or held as unacked at every moment, what kombu's own transport delivers it delivers (order,
priorities, several queues, requeue, ack), and producers on kombu's transport interoperate with it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from kombu import Connection, Consumer, Exchange, Producer, Queue
from redis.exceptions import ResponseError

from function_runner.app import broker_options, create_app
from function_runner.broker.redis_transport import Transport
from function_runner.settings import Settings
from tests.support.waiting import wait_until

EXCHANGE = Exchange("fr-test", type="direct")


def queue(name: str) -> Queue:
    return Queue(name, EXCHANGE, routing_key=name)


@pytest.fixture
def client(redis_url: str) -> Iterator[redis_lib.Redis]:
    client = redis_lib.Redis.from_url(redis_url)
    yield client
    client.close()


def connect(redis_url: str, *, reliable: bool = True, **options: Any) -> Connection:
    """A kombu connection to the tests' Redis, on the reliable transport or on kombu's own."""
    return Connection(redis_url, transport=Transport if reliable else None, transport_options=options)


def publish(redis_url: str, name: str, bodies: list[Any], **kwargs: Any) -> None:
    """Publish with kombu's own transport (what a plain Celery producer does)."""
    with connect(redis_url, reliable=False) as connection:
        producer = Producer(connection.default_channel, exchange=EXCHANGE)
        for body in bodies:
            producer.publish(body, routing_key=name, declare=[queue(name)], **kwargs)


def consume(connection: Connection, names: list[str], count: int, *, ack: bool = True) -> list[Any]:
    """Take ``count`` messages from these queues through the connection's transport."""
    got: list[Any] = []

    def on_message(body: Any, message: Any) -> None:
        got.append((body, message))
        if ack:
            message.ack()

    with Consumer(connection.default_channel, [queue(n) for n in names], callbacks=[on_message], prefetch_count=1):
        while len(got) < count:
            connection.drain_events(timeout=10)
    return got


def test_a_message_is_held_as_unacked_when_it_is_handed_over_and_released_by_its_ack(
    redis_url: str, client: redis_lib.Redis
) -> None:
    publish(redis_url, "fr-t1", [{"n": 1}])
    with connect(redis_url) as connection:
        ((body, message),) = consume(connection, ["fr-t1"], 1, ack=False)
        assert body == {"n": 1}
        tag = message.delivery_tag
        assert client.hexists("unacked", tag) and client.zscore("unacked_index", tag) is not None
        message.ack()
        assert not client.hexists("unacked", tag) and client.zscore("unacked_index", tag) is None
    assert client.llen("fr-t1") == 0


def test_a_worker_dying_right_after_the_take_loses_nothing(redis_url: str, client: redis_lib.Redis) -> None:
    """kombu's own transport pops with BRPOP and stores the message as unacked in a second command; a
    worker killed between the two lost the message. Here the take holds it in the same step: the
    reply never read, the message still comes back once its visibility timeout passes."""
    publish(redis_url, "fr-t2", [{"n": 2}])
    with connect(redis_url) as dying:
        channel = dying.default_channel
        Consumer(channel, [queue("fr-t2")], callbacks=[lambda *_: None]).consume()
        dying.transport.cycle._register_BRPOP(channel)  # sends the take, as the event loop does
        channel.client.connection.disconnect()  # killed: the reply is never read
    wait_until(lambda: client.hlen("unacked") == 1, what="the taken message held as unacked")
    assert client.llen("fr-t2") == 0

    with connect(redis_url, visibility_timeout=0.5) as next_worker:
        wait_until(
            lambda: next_worker.default_channel.qos.restore_visible(num=10) or client.llen("fr-t2") == 1,
            what="the visibility timeout to put it back",
        )
        ((body, message),) = consume(next_worker, ["fr-t2"], 1)
    assert body == {"n": 2}
    assert message.delivery_info["redelivered"] is True
    assert client.hlen("unacked") == 0


def test_order_priorities_and_queues_are_kombus(redis_url: str) -> None:
    publish(redis_url, "fr-a", [f"a{i}" for i in range(5)])
    publish(redis_url, "fr-b", ["b-low"], priority=9)
    publish(redis_url, "fr-b", ["b-high"], priority=0)
    with connect(redis_url) as connection:
        bodies = [body for body, _ in consume(connection, ["fr-a", "fr-b"], 7)]
    assert [b for b in bodies if b.startswith("a")] == [f"a{i}" for i in range(5)]  # FIFO within a queue
    assert bodies.index("b-high") < bodies.index("b-low")  # kombu's priority steps: 0 before 9
    assert sorted(bodies) == sorted([*(f"a{i}" for i in range(5)), "b-low", "b-high"])


def test_an_idle_consumer_wakes_for_a_new_message(redis_url: str) -> None:
    with connect(redis_url) as connection:
        later = threading.Timer(0.5, publish, args=(redis_url, "fr-t3", ["late"]))
        later.start()
        try:
            ((body, _),) = consume(connection, ["fr-t3"], 1)
        finally:
            later.join()
    assert body == "late"


def test_a_rejected_message_is_requeued_and_delivered_again(redis_url: str, client: redis_lib.Redis) -> None:
    publish(redis_url, "fr-t4", ["again"])
    with connect(redis_url) as connection:
        ((_, message),) = consume(connection, ["fr-t4"], 1, ack=False)
        message.reject(requeue=True)
        assert client.hlen("unacked") == 0 and client.llen("fr-t4") == 1
        ((body, second),) = consume(connection, ["fr-t4"], 1)
    assert body == "again" and second.delivery_info["redelivered"] is True


def test_the_script_is_sent_again_after_redis_forgets_it(redis_url: str, client: redis_lib.Redis) -> None:
    publish(redis_url, "fr-t5", ["one", "two"])
    with connect(redis_url) as connection:
        assert [b for b, _ in consume(connection, ["fr-t5"], 1)] == ["one"]
        client.script_flush()  # what a Redis restart does
        assert [b for b, _ in consume(connection, ["fr-t5"], 1)] == ["two"]
    assert client.hlen("unacked") == 0


def test_a_no_ack_consumer_leaves_nothing_held(redis_url: str, client: redis_lib.Redis) -> None:
    publish(redis_url, "fr-t6", ["fire and forget"])
    got: list[Any] = []
    with (
        connect(redis_url) as connection,
        Consumer(connection.default_channel, [queue("fr-t6")], callbacks=[lambda b, m: got.append(b)], no_ack=True),
    ):
        while not got:
            connection.drain_events(timeout=10)
    assert got == ["fire and forget"] and client.hlen("unacked") == 0


def test_a_key_prefix_applies_to_every_list_and_hash(redis_url: str, client: redis_lib.Redis) -> None:
    with Connection(redis_url, transport_options={"global_keyprefix": "fr-p:"}) as plain:
        Producer(plain.default_channel, exchange=EXCHANGE).publish(
            "prefixed", routing_key="fr-t7", declare=[queue("fr-t7")]
        )
    assert client.llen("fr-p:fr-t7") == 1
    with connect(redis_url, global_keyprefix="fr-p:") as connection:
        ((body, message),) = consume(connection, ["fr-t7"], 1, ack=False)
        assert body == "prefixed" and client.hexists("fr-p:unacked", message.delivery_tag)
        message.ack()
    assert client.hlen("fr-p:unacked") == 0 and client.llen("fr-p:fr-t7") == 0


def test_apps_on_a_redis_url_use_it_unless_told_not_to(tmp_path: Path) -> None:
    def options(url: str, **settings: Any) -> dict[str, Any]:
        return broker_options(Settings(data_dir=tmp_path, broker_url=url, **settings))

    assert options("redis://127.0.0.1:6379/0")["broker_transport"] == "function_runner.broker.redis_transport:Transport"
    assert "broker_transport" not in options("redis://127.0.0.1:6379/0", reliable_fetch=False)
    # TLS, sockets and Sentinel keep kombu's own transport (its URL scheme picks the connection class)
    for url in ("rediss://127.0.0.1:6380/0", "redis+socket:///tmp/redis.sock", "sentinel://127.0.0.1:26379"):
        assert "broker_transport" not in options(url)
    app = create_app(Settings(data_dir=tmp_path, broker_url="redis://127.0.0.1:6379/0"), main="fr_transport")
    try:
        with app.connection_for_write() as connection:
            assert connection.transport_cls is not None
            assert isinstance(connection.transport, Transport)
    finally:
        app.close()


def test_a_server_without_blmove_or_scripts_still_delivers(redis_url: str) -> None:
    """Redis before 6.2 has no BLMOVE: the idle wait becomes a timed sleep. A server without Lua cannot
    take atomically: the channel falls back to kombu's BRPOP (and says so in the log)."""
    publish(redis_url, "fr-t8", ["first", "second"])
    with connect(redis_url) as connection:
        channel = connection.default_channel
        channel._on_error("wait", ResponseError("unknown command 'BLMOVE', with args beginning with: "))
        assert [b for b, _ in consume(connection, ["fr-t8"], 1)] == ["first"]
        channel._on_error("take", ResponseError("unknown command 'EVAL', with args beginning with: "))
        assert not channel._reliable()
        assert [b for b, _ in consume(connection, ["fr-t8"], 1)] == ["second"]
        with pytest.raises(ResponseError, match="WRONGTYPE"):  # anything else is the caller's to see
            channel._on_error("take", ResponseError("WRONGTYPE Operation against a key holding the wrong kind"))

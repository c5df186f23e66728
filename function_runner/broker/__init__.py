"""Broker adapters: RabbitMQ queues, the reliable Redis transport, worker liveness.

::

    queues.py           RabbitMQ task queues with a dead-letter exchange; collecting what it drops
    redis_transport.py  kombu's Redis transport with liveness (who holds what) built in
    liveness.py         the liveness keys, the census and the restore of lapsed consumers
    heartbeat.py        a worker consumer's heartbeat thread
    publish.py          send_task from stored delivery options
"""

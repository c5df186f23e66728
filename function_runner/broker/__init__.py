"""Broker adapters: RabbitMQ queues, the reliable Redis transport, worker liveness."""

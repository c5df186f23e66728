"""Celery app factory and :func:`install`, which attaches function-runner to an existing app."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

from celery import Celery, signals

from error_handling.classification import Rule
from error_handling.exceptions import ConfigurationError
from error_handling.policy import RecoveryPolicy
from function_runner import keys
from function_runner.broker import queues
from function_runner.gates import Gate
from function_runner.runtime import APP_ATTRIBUTE, Runtime, runtime_for
from function_runner.settings import Settings
from function_runner.wrapper.celery_view import install_publish_hook
from function_runner.wrapper.compensator import register_compensator
from function_runner.wrapper.task import RecoverableTask

#: The queue create_app declares on RabbitMQ (Celery's default name).
DEFAULT_QUEUE = "celery"
#: The transport of ``redis://`` brokers with ``reliable_fetch`` (see ``function_runner.broker.redis_transport``).
RELIABLE_REDIS_TRANSPORT = "function_runner.broker.redis_transport:Transport"


def liveness_options(settings: Settings) -> dict[str, float]:
    """The reliable Redis transport's options for worker liveness (see ``function_runner.broker.liveness``)."""
    return {"liveness_interval": settings.liveness_interval, "liveness_timeout": settings.liveness_timeout}


def broker_options(settings: Settings) -> dict[str, Any]:
    """Celery configuration for the broker these settings name."""
    url = settings.effective_broker_url
    conf: dict[str, Any] = {"broker_url": url, "broker_connection_retry_on_startup": True}
    if url.startswith("filesystem://"):
        folder = settings.broker_folder
        (folder / "processed").mkdir(parents=True, exist_ok=True)
        conf["broker_transport_options"] = {
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),  # fanout exchanges (kombu's default: ./control)
            "store_processed": False,
        }
    elif url.startswith(("redis://", "rediss://", "redis+socket://", "sentinel://", "sqs://")):
        # Redis keeps unacked messages of a lost worker aside; they are put back once older than the
        # visibility timeout, by a sweep that kombu runs every interval * throttle seconds (100 s by
        # default). Sweep every interval (at most 10 s), so recovery takes about one visibility timeout.
        conf["broker_transport_options"] = {
            "visibility_timeout": settings.visibility_timeout,
            "unacked_restore_interval": max(1, min(10, int(settings.visibility_timeout / 5))),
            "unacked_restore_throttle": 1,
        }
        if url.startswith("redis://") and settings.reliable_fetch:
            conf["broker_transport"] = RELIABLE_REDIS_TRANSPORT
            conf["broker_transport_options"].update(liveness_options(settings))
    elif queues.is_amqp(url):
        # RabbitMQ: the default queue dead-letters to function-runner's exchange (never a silent drop);
        # quorum queues on request (see function_runner.broker.queues)
        conf["task_default_queue"] = DEFAULT_QUEUE
        conf["task_queues"] = [queues.task_queue(DEFAULT_QUEUE, settings)]
        if settings.queue_type == "quorum":
            conf["broker_transport_options"] = {"confirm_publish": True}
    if settings.result_backend:
        conf["result_backend"] = settings.result_backend
    return conf


def _declare_broker_dead_letters(sender: Any = None, **_: Any) -> None:
    """At a worker's start, on RabbitMQ: declare the exchange and queue the broker dead-letters to."""
    app = getattr(sender, "app", None)
    runtime = getattr(app, APP_ATTRIBUTE, None)
    if app is None or runtime is None or not queues.is_amqp(runtime.settings.effective_broker_url):
        return
    with app.connection_for_write() as connection:
        queues.declare_dead_letter_queue(connection)


def check_worker_key(sender: Any = None, **_: Any) -> None:
    """At a worker's start (``worker_init``): stop it with one line on stderr if its key is missing or
    malformed (:mod:`function_runner.keys`). Celery logs and ignores exceptions of signal handlers, so
    the worker exits here. An app with no runtime attached (no :func:`install`) is checked when it has a
    :class:`~function_runner.wrapper.task.RecoverableTask`, with the settings of the environment."""
    app = getattr(sender, "app", None)
    runtime = getattr(app, APP_ATTRIBUTE, None)
    if not isinstance(runtime, Runtime):
        if app is None or not any(isinstance(task, RecoverableTask) for task in app.tasks.values()):
            return  # not a function-runner worker
        runtime = runtime_for(app)  # what its tasks would build from the environment at the first failure
    try:
        keys.check_key(runtime)
    except ConfigurationError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.stderr.flush()
        raise SystemExit(2) from None  # a settings error, as in every command


# A worker refuses to start without its key; connected on import.
signals.worker_init.connect(check_worker_key, weak=False, dispatch_uid="function_runner.check_key")
signals.worker_init.connect(_declare_broker_dead_letters, weak=False, dispatch_uid="function_runner.dead_letters")


def install(
    app: Celery,
    settings: Settings | None = None,
    *,
    rules: Sequence[Rule] = (),
    policy: RecoveryPolicy | None = None,
    configure_broker: bool = False,
    gates: Sequence[Gate] = (),
    user_messages: Mapping[str, str] | None = None,
) -> Runtime:
    """Attach function-runner to ``app`` and return its runtime.

    Args:
        app: any Celery app; its tasks opt in with ``base=RecoverableTask``.
        settings: function-runner settings (default: read from the environment).
        rules: app-wide classifier rules, evaluated before the built-ins.
        policy: the app-wide recovery policy (default: from the settings).
        configure_broker: also set the app's broker from ``settings`` (off for an app you configured:
            then only a ``redis://`` broker changes, to the reliable transport with worker liveness,
            see :func:`use_reliable_transport`).
        gates: the resource gates of the app (see :mod:`function_runner.gates`).
        user_messages: the app's end-user message per reason code, over the built-ins (see
            :mod:`error_handling.messages`).
    """
    settings = settings or Settings()
    runtime = Runtime(settings, rules=rules, policy=policy, gates=gates, user_messages=user_messages)
    setattr(app, APP_ATTRIBUTE, runtime)
    install_publish_hook(app, runtime.redactor)  # redacted argsrepr/kwargsrepr, retries = attempt - 1
    if configure_broker:
        app.conf.update(broker_options(settings))
    elif app.configured:
        use_reliable_transport(app, settings)
    else:  # configured later (config_from_object, ...): decide once the app's settings are read
        app.on_after_configure.connect(
            lambda sender, **_: use_reliable_transport(sender, settings), weak=False, sender=app
        )
    register_compensator(app)
    return runtime


def use_reliable_transport(app: Celery, settings: Settings) -> bool:
    """Put an app configured by its owner on the reliable Redis transport, with worker liveness.

    Only when its broker is ``redis://``, ``reliable_fetch`` is on and it names no ``broker_transport``
    of its own: then ``broker_transport`` becomes :data:`RELIABLE_REDIS_TRANSPORT` and
    ``broker_transport_options`` gains ``liveness_interval`` and ``liveness_timeout`` (values it
    already has are kept). Nothing else of the app changes (its visibility timeout, prefetch, acks).
    Returns whether it changed the app.
    """
    conf = app.conf
    url = conf.broker_url
    if not settings.reliable_fetch or not isinstance(url, str) or not url.startswith("redis://"):
        return False
    if conf.broker_transport:
        return False
    options = dict(conf.broker_transport_options or {})
    for name, value in liveness_options(settings).items():
        options.setdefault(name, value)
    conf.broker_transport = RELIABLE_REDIS_TRANSPORT
    conf.broker_transport_options = options
    return True


def create_app(
    settings: Settings | None = None,
    *,
    main: str = "function_runner",
    include: Sequence[str] = (),
    rules: Sequence[Rule] = (),
    policy: RecoveryPolicy | None = None,
    gates: Sequence[Gate] = (),
    user_messages: Mapping[str, str] | None = None,
) -> Celery:
    """Create a Celery app configured from function-runner's settings, with the runtime installed."""
    settings = settings or Settings()
    app = Celery(main, include=list(include))
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        **broker_options(settings),
    )
    install(app, settings, rules=rules, policy=policy, gates=gates, user_messages=user_messages)
    return app

"""What ``install(app)`` changes on an app its owner configured: on a ``redis://`` broker, the transport
(reliable fetch with worker liveness) and two transport options; nothing else."""

from __future__ import annotations

from pathlib import Path

from celery import Celery

from function_runner.app import RELIABLE_REDIS_TRANSPORT, install
from function_runner.settings import Settings

REDIS = "redis://127.0.0.1:6379/0"


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(data_dir=tmp_path, **values)  # type: ignore[arg-type]


def test_a_redis_app_gets_the_reliable_transport_with_liveness_and_keeps_its_own_options(tmp_path: Path) -> None:
    app = Celery("user", broker=REDIS)
    app.conf.broker_transport_options = {"visibility_timeout": 7200, "liveness_timeout": 30}
    before = {k: app.conf[k] for k in ("task_acks_late", "worker_prefetch_multiplier", "task_reject_on_worker_lost")}
    install(app, settings(tmp_path))
    assert app.conf.broker_transport == RELIABLE_REDIS_TRANSPORT
    assert app.conf.broker_transport_options == {
        "visibility_timeout": 7200,  # the app's own, untouched
        "liveness_timeout": 30,  # the app's own value wins
        "liveness_interval": 5.0,
    }
    assert {k: app.conf[k] for k in before} == before  # acks and prefetch stay the owner's


def test_an_app_configured_after_install_gets_it_when_its_settings_are_read(tmp_path: Path) -> None:
    app = Celery("user")
    install(app, settings(tmp_path))
    app.config_from_object({"broker_url": REDIS})
    assert app.conf.broker_transport == RELIABLE_REDIS_TRANSPORT


def test_other_brokers_a_transport_of_the_apps_own_or_reliable_fetch_off_change_nothing(tmp_path: Path) -> None:
    amqp = Celery("user", broker="amqp://guest@localhost//")
    install(amqp, settings(tmp_path))
    assert amqp.conf.broker_transport is None
    own = Celery("user", broker=REDIS)
    own.conf.broker_transport = "redis"
    install(own, settings(tmp_path))
    assert own.conf.broker_transport == "redis"
    off = Celery("user", broker=REDIS)
    install(off, settings(tmp_path, reliable_fetch=False))
    assert off.conf.broker_transport is None and not off.conf.broker_transport_options

"""Settings: one validated object, read from ``FUNCTION_RUNNER_*`` environment variables.

Every setting has a default that works with no server at all (the *embedded default*: a SQLite file and
kombu's filesystem transport under ``data_dir``). Production sets at least ``database_url``,
``broker_url`` and ``encryption_key``. Each concern is a group of its own (what the groups share, a field
described by its docstring and the constrained types, is in group.py), combined here::

    Settings ─┬─ StorageSettings     where things live, the encryption key   (storage.py)
              ├─ RetentionSettings   how long history is kept                (retention.py)
              ├─ RetrySettings       backoff, attempts, resource waits       (retries.py)
              ├─ DispatcherSettings  the dispatchers' pace                   (dispatcher.py)
              ├─ DeliverySettings    reliable fetch, liveness, redeliveries  (delivery.py)
              ├─ ServiceSettings     circuit breakers, fallbacks             (services.py)
              ├─ ReplaySettings      redaction keys, replay limits           (replay.py)
              ├─ StatisticsSettings  success counts of the workers           (statistics.py)
              ├─ AnalysisSettings    error groups and the analysis' thresholds (analysis.py)
              └─ ApiSettings         the error API                           (api.py)
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from function_runner.settings.analysis import AnalysisSettings
from function_runner.settings.api import ApiSettings
from function_runner.settings.delivery import DeliverySettings
from function_runner.settings.dispatcher import DispatcherSettings
from function_runner.settings.replay import ReplaySettings
from function_runner.settings.retention import RetentionSettings
from function_runner.settings.retries import RetrySettings
from function_runner.settings.services import ServiceSettings
from function_runner.settings.statistics import StatisticsSettings
from function_runner.settings.storage import StorageSettings

__all__ = ["Settings"]


# pydantic orders the fields from the last base to the first: the groups are listed bottom-up, so the
# fields (and the errors of several bad variables) keep the order of the drawing above.
class Settings(
    ApiSettings,
    StatisticsSettings,
    AnalysisSettings,
    ReplaySettings,
    ServiceSettings,
    DeliverySettings,
    DispatcherSettings,
    RetrySettings,
    RetentionSettings,
    StorageSettings,
    BaseSettings,
):
    """function-runner's settings. Each field is read from ``FUNCTION_RUNNER_<FIELD NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="FUNCTION_RUNNER_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

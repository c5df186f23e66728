"""Settings: DESIGN.md's defaults, ``FUNCTION_RUNNER_*`` variables, the embedded default, validation,
the policy they describe, and the key file made when no encryption key is set."""

from __future__ import annotations

import os
import stat
import threading
import warnings
from pathlib import Path

import pytest
from pydantic import ValidationError

from error_handling.exceptions import ConfigurationError
from error_handling.policy import FullJitterBackoff, RecoveryPolicy
from error_handling.sealing import SealedValueError, Sealer, generate_key
from function_runner.settings import Settings
from function_runner.settings.api_keys import parse_api_keys
from function_runner.settings.storage import KEY_FILE_NAME

KEY_WARNING = "FUNCTION_RUNNER_ENCRYPTION_KEY is not set"
#: Threads racing to create the key file (the demo's worker runs 4).
THREADS = 16


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ``FUNCTION_RUNNER_*`` variable of the caller's leaks in; the working directory is a scratch one."""
    for name in [k for k in os.environ if k.startswith("FUNCTION_RUNNER_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_are_the_ones_design_md_anchors() -> None:
    settings = Settings()
    assert settings.retry_base_delay == 1.0
    assert settings.retry_max_delay == 600.0  # cap 10 min
    assert settings.transient_max_attempts == 5
    assert settings.unclassified_max_attempts == 3
    assert settings.resource_wait_timeout == 3600.0  # wait up to 1 h
    assert settings.database_url is None
    assert settings.broker_url is None
    assert settings.encryption_key is None
    assert settings.api_keys is None


def test_the_embedded_default_lives_under_data_dir(tmp_path: Path) -> None:
    settings = Settings()
    data_dir = (tmp_path / ".function-runner").resolve()
    assert settings.effective_database_url == f"sqlite:///{data_dir / 'function-runner.sqlite3'}"
    assert settings.effective_broker_url == "filesystem://"
    assert settings.broker_folder == data_dir / "broker"

    elsewhere = Settings(data_dir=tmp_path / "elsewhere")
    assert elsewhere.effective_database_url == f"sqlite:///{(tmp_path / 'elsewhere').resolve()}/function-runner.sqlite3"
    assert elsewhere.broker_folder == (tmp_path / "elsewhere" / "broker").resolve()


def test_configured_urls_win_over_the_embedded_default_and_blank_means_default() -> None:
    settings = Settings(database_url="postgresql://db.example/fr", broker_url="redis://broker.example:6379/0")
    assert settings.effective_database_url == "postgresql://db.example/fr"
    assert settings.effective_broker_url == "redis://broker.example:6379/0"
    blank = Settings(database_url="", broker_url="")
    assert blank.database_url is None and blank.broker_url is None
    assert blank.effective_database_url.startswith("sqlite:///")
    assert blank.effective_broker_url == "filesystem://"


def test_the_shared_state_redis_is_redis_url_else_a_redis_broker_else_none() -> None:
    assert Settings(broker_url="redis://b:6379/0").shared_state_url == "redis://b:6379/0"
    assert Settings(broker_url="amqp://guest@r//").shared_state_url is None
    assert Settings().shared_state_url is None  # the embedded filesystem broker
    both = Settings(broker_url="amqp://guest@r//", redis_url="redis://state:6379/2")
    assert both.shared_state_url == "redis://state:6379/2"
    assert Settings(broker_url="redis://b:6379/0", redis_url="rediss://s/1").shared_state_url == "rediss://s/1"
    assert Settings(broker_url="amqp://guest@r//", redis_url="").shared_state_url is None


def test_every_setting_is_read_from_a_prefixed_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FUNCTION_RUNNER_DATA_DIR", str(tmp_path / "from-env"))
    monkeypatch.setenv("FUNCTION_RUNNER_DATABASE_URL", "postgresql://db.example/env")
    monkeypatch.setenv("FUNCTION_RUNNER_BROKER_URL", "redis://broker.example/3")
    monkeypatch.setenv("FUNCTION_RUNNER_RETRY_BASE_DELAY", "0.25")
    monkeypatch.setenv("FUNCTION_RUNNER_TRANSIENT_MAX_ATTEMPTS", "9")
    monkeypatch.setenv("FUNCTION_RUNNER_RESOURCE_WAIT_TIMEOUT", "120")
    monkeypatch.setenv("FUNCTION_RUNNER_REDACT_KEYS", '["ssn", "iban"]')
    monkeypatch.setenv("TRANSIENT_MAX_ATTEMPTS", "2")  # unprefixed: ignored
    settings = Settings()
    assert settings.data_dir == tmp_path / "from-env"
    assert settings.effective_database_url == "postgresql://db.example/env"
    assert settings.effective_broker_url == "redis://broker.example/3"
    assert settings.retry_base_delay == 0.25
    assert settings.transient_max_attempts == 9
    assert settings.resource_wait_timeout == 120.0
    assert settings.redact_keys == ["ssn", "iban"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("transient_max_attempts", 0),
        ("transient_max_attempts", "zero"),
        ("unclassified_max_attempts", -1),
        ("retry_base_delay", 0),
        ("retry_max_delay", -5),
        ("resource_wait_timeout", 0),
        ("dispatcher_batch_size", 10_001),
        ("storage_retry_timeout", -0.5),
    ],
)
def test_invalid_values_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(**{field: value})
    assert [error["loc"] for error in caught.value.errors()] == [(field,)]


def test_invalid_values_from_the_environment_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUNCTION_RUNNER_TRANSIENT_MAX_ATTEMPTS", "zero")
    with pytest.raises(ValidationError, match="transient_max_attempts"):
        Settings()


def test_a_malformed_api_key_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(api_keys="admin:sk-canary-not-echoed-0123456789")
    assert "sk-canary" not in str(caught.value)


def test_the_settings_own_checks_raise_configuration_errors_that_pydantic_reports() -> None:
    with pytest.raises(ConfigurationError, match=r"^API key entry #2 must look like"):
        parse_api_keys("read:k1,admin:k2")
    with pytest.raises(ValidationError) as caught:
        Settings(liveness_interval=5, liveness_timeout=5)
    (error,) = caught.value.errors()
    assert error["loc"] == ("liveness_timeout",)
    assert isinstance(error["ctx"]["error"], ConfigurationError)
    assert error["msg"] == "Value error, liveness_timeout must be 0 (off) or longer than liveness_interval (5.0 s)"


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.transient_max_attempts = 10


def test_recovery_policy_carries_the_settings_through() -> None:
    settings = Settings(
        retry_base_delay=0.5,
        retry_max_delay=30,
        transient_max_attempts=7,
        unclassified_max_attempts=2,
        resource_wait_timeout=90,
        resource_check_interval=4,
        max_retry_after=100,
    )
    policy = settings.recovery_policy()
    assert isinstance(policy, RecoveryPolicy)
    assert policy.backoff == FullJitterBackoff(base=0.5, max_delay=30.0)
    assert policy.transient_max_attempts == 7
    assert policy.unclassified_max_attempts == 2
    assert policy.resource_wait_timeout == 90.0
    assert policy.resource_check_interval == 4.0
    assert policy.max_retry_after == 100.0


def test_the_default_policy_is_the_default_recovery_policy() -> None:
    assert Settings().recovery_policy() == RecoveryPolicy()


def test_without_a_key_a_private_key_file_is_created_once_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "data"
    settings = Settings(data_dir=data_dir)
    with pytest.warns(UserWarning, match=KEY_WARNING):
        first = settings.sealer()
    key_file = data_dir / KEY_FILE_NAME
    assert key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    token = first.seal({"api_key": "sk-canary-kept"})

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the file exists now: no second warning
        second = Settings(data_dir=data_dir).sealer()
    assert second.unseal(token) == {"api_key": "sk-canary-kept"}
    assert Sealer(key_file.read_text().strip()).unseal(token) == {"api_key": "sk-canary-kept"}


def test_a_configured_key_is_used_and_no_key_file_is_made(tmp_path: Path) -> None:
    key = generate_key()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sealer = Settings(data_dir=tmp_path / "data", encryption_key=key).sealer()
    assert not (tmp_path / "data" / KEY_FILE_NAME).exists()
    token = sealer.seal("hunter2")
    assert Sealer(key).unseal(token) == "hunter2"


def test_a_configured_key_wins_over_an_existing_key_file(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match=KEY_WARNING):
        from_file = Settings(data_dir=tmp_path).sealer()
    key = generate_key()
    token = Settings(data_dir=tmp_path, encryption_key=key).sealer().seal("hunter2")
    assert Sealer(key).unseal(token) == "hunter2"
    with pytest.raises(SealedValueError):
        from_file.unseal(token)


def test_threads_racing_to_create_the_key_file_all_get_the_one_key(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "race")
    start = threading.Barrier(THREADS)
    sealers: list[Sealer] = []
    errors: list[BaseException] = []

    def make() -> None:
        start.wait(timeout=10)
        try:
            sealers.append(settings.sealer())
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)

    with pytest.warns(UserWarning, match=KEY_WARNING) as caught:
        threads = [threading.Thread(target=make) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    assert errors == []
    assert len([w for w in caught if KEY_WARNING in str(w.message)]) == 1
    token = sealers[0].seal("hunter2")
    assert len(sealers) == THREADS
    assert all(sealer.unseal(token) == "hunter2" for sealer in sealers)
    assert [p.name for p in (tmp_path / "race").iterdir()] == [KEY_FILE_NAME]  # no temporary file left


def test_fallback_chains_come_from_json_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUNCTION_RUNNER_FALLBACKS", '{"chat": ["openai:gpt-4o", "anthropic:claude", "cache"]}')
    assert Settings().fallbacks == {"chat": ["openai:gpt-4o", "anthropic:claude", "cache"]}


def test_the_api_defaults_fail_closed() -> None:
    settings = Settings()
    assert settings.api_keys is None and settings.api_allow_open is False
    assert settings.api_allowed_hosts == [] and settings.api_forwarded_allow_ips is None
    assert settings.api_max_body_bytes == 1024 * 1024


def test_a_liveness_timeout_not_longer_than_the_interval_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="liveness_timeout"):
        Settings(data_dir=tmp_path, liveness_interval=5, liveness_timeout=5)
    assert Settings(data_dir=tmp_path, liveness_timeout=0).liveness_timeout == 0  # off
    defaults = Settings(data_dir=tmp_path)
    assert (defaults.liveness_interval, defaults.liveness_timeout) == (5.0, 15.0)


def test_a_description_is_the_docstring_under_the_field_as_one_paragraph() -> None:
    schema = Settings.model_json_schema()["properties"]
    for name, field in Settings.model_fields.items():
        assert field.description and "\n" not in field.description, name
        assert schema[name]["description"] == field.description, name  # the schema shows the joined lines
    assert Settings.model_fields["visibility_timeout"].description == (
        "Redis/SQS transports: seconds before an unacked message of a lost worker is delivered again. "
        "Keep it longer than your longest task."
    )

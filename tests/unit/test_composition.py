"""The runtime as composition root: one shared Redis client for every resilience feature, narrow
dependencies (only the entry points import the runtime; resilience/ and gates/ hold no SQL), breaker
states and causes as enums whose stored values do not change, and the gate monitor's room."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest
from pydantic import SecretStr

from error_handling.breaker import BreakerCause, BreakerConfig, BreakerState
from error_handling.exceptions import ConfigurationError
from error_handling.sealing import generate_key
from function_runner.gates import Gate, ProbeResult
from function_runner.gates.leases import RedisLeaseStore, SqlLeaseStore
from function_runner.gates.monitor import GateMonitor
from function_runner.resilience.shared_redis import SharedRedis
from function_runner.runtime import Runtime
from function_runner.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def runtime(tmp_path: Path, **options: str) -> Runtime:
    return Runtime(Settings(encryption_key=SecretStr(generate_key()), data_dir=tmp_path, **options))


def test_every_resilience_feature_shares_the_runtimes_one_redis_client(tmp_path: Path) -> None:
    made = runtime(tmp_path, broker_url="redis://127.0.0.1:1/0")  # never contacted
    client = made.shared_redis.client()
    assert client is not None and made.shared_redis.require() is client
    assert made.breakers.shared_redis is made.shared_redis
    assert made.budgets.shared_redis is made.shared_redis
    assert made.fallbacks.shared_redis is made.shared_redis
    assert made.fallbacks.breakers is made.breakers and made.breakers.health is made.health
    store = made.lease_store
    assert isinstance(store, RedisLeaseStore) and store.client is client


def test_without_a_shared_redis_there_is_no_client_and_leases_live_in_the_database(tmp_path: Path) -> None:
    made = runtime(tmp_path, broker_url="amqp://guest@127.0.0.1:1//")
    assert made.shared_redis.client() is None
    with pytest.raises(RuntimeError, match="no Redis"):
        made.shared_redis.require()
    assert isinstance(made.lease_store, SqlLeaseStore)
    made.close()
    assert SharedRedis(None).client() is None


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("package", ["resilience", "gates"])
def test_resilience_and_gates_take_narrow_dependencies_and_hold_no_sql(package: str) -> None:
    modules = sorted((ROOT / "function_runner" / package).glob("*.py"))
    assert modules
    for module in modules:
        imports = _imports(module)
        assert "function_runner.runtime" not in imports, module.name
        # only the types of sessions and errors: statements live in error_handling.persistence
        assert {name for name in imports if name.startswith("sqlalchemy")} <= {"sqlalchemy.orm", "sqlalchemy.exc"}


def test_breaker_states_and_causes_keep_their_stored_values() -> None:
    assert [s.value for s in BreakerState] == ["closed", "open", "half_open"]
    assert [c.value for c in BreakerCause] == ["failure_ratio", "timeout", "probe", "local", "reset", "forced_open"]
    assert BreakerState.HALF_OPEN == "half_open" and f"{BreakerCause.FORCED_OPEN}" == "forced_open"


@pytest.mark.parametrize("options", [{"failure_ratio": 0.0}, {"window": 0.0}, {"min_calls": 0}, {"open_seconds": -1.0}])
def test_a_breaker_configuration_mistake_is_a_configuration_error(options: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        BreakerConfig(**options)  # type: ignore[arg-type]


def test_a_gate_declaration_mistake_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="name"):
        Gate("")
    with pytest.raises(ConfigurationError, match="release_batch"):
        Gate("gpu", release_batch=0)
    with pytest.raises(ConfigurationError, match="two gates"):
        Runtime(Settings(data_dir=tmp_path), gates=[Gate("gpu"), Gate("gpu")])


class CountingStore:
    def __init__(self, used: int) -> None:
        self._used = used

    def acquire(self, gate: str, holder: str, *, units: int, capacity: int, ttl: float) -> bool:
        raise AssertionError("not called by room()")

    def renew(self, gate: str, holder: str, *, ttl: float) -> bool:
        raise AssertionError("not called by room()")

    def release(self, gate: str, holder: str) -> None:
        raise AssertionError("not called by room()")

    def used(self, gate: str) -> int:
        return self._used


def monitor(used: int) -> GateMonitor:
    return GateMonitor(
        name="m", store=CountingStore(used), in_transaction=lambda work: 0, resources_of=lambda _: {}, reservation=30
    )


def test_the_monitor_releases_no_more_than_the_free_capacity_and_the_probes_free_units() -> None:
    assert monitor(0).room(Gate("disk", release_batch=7), None) == 7  # no capacity, no probe: the batch
    assert monitor(0).room(Gate("disk"), ProbeResult(True, free=3)) == 3  # the probe's count of free units
    assert monitor(0).room(Gate("disk"), ProbeResult(False, free=3)) == 0  # unavailable: nothing
    assert monitor(1).room(Gate("gpu", capacity=4), None) == 3  # capacity minus what is held
    assert monitor(1).room(Gate("gpu", capacity=4), ProbeResult(True, free=2)) == 2  # and the probe's, if fewer


def test_the_monitor_checks_a_gate_in_one_transaction() -> None:
    seen: list[object] = []

    def in_transaction(work: object) -> int:
        seen.append(work)
        return 2

    checked = GateMonitor(
        name="m", store=CountingStore(0), in_transaction=in_transaction, resources_of=lambda _: {}, reservation=30
    )
    assert checked.check(Gate("disk"), dt.datetime.now(dt.UTC)) == 2 and len(seen) == 1


#: The entry points: the only modules of function_runner/ that may import the runtime (the composition
#: root). Every other module takes what it uses (a protocol, a callable, a value). api/ is an entry point too.
ENTRY_POINTS = (
    "__init__.py",
    "app.py",
    "runtime.py",
    "wrapper/task.py",
    "dispatch/dispatcher.py",
    "cli/*",
    "demo/*",
)
RUNTIME = "function_runner.runtime"


def _runtime_imports(source: str, *, package: str) -> list[int]:
    """The lines of ``source`` (a module of ``package``) that import the runtime, however written:
    absolute or relative, at the top, under TYPE_CHECKING or inside a function."""
    found: list[int] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against the module's package
                parts = package.split(".")
                parent = parts[: len(parts) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        if any(name == RUNTIME or name.startswith(RUNTIME + ".") for name in names):
            found.append(node.lineno)
    return found


def _is_entry_point(relative: str) -> bool:
    return any(
        relative.startswith(pattern[:-1]) if pattern.endswith("*") else relative == pattern for pattern in ENTRY_POINTS
    )


def test_only_the_entry_points_import_the_runtime() -> None:
    root = ROOT / "function_runner"
    offenders = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if _is_entry_point(relative):
            continue
        package = ".".join(path.relative_to(ROOT).parts[:-1])
        lines = _runtime_imports(path.read_text(), package=package)
        offenders += [f"function_runner/{relative}:{line}" for line in lines]
    assert not offenders, f"only the entry points {ENTRY_POINTS} may import {RUNTIME}: {offenders}"


@pytest.mark.parametrize(
    "source",
    [
        "from function_runner.runtime import Runtime",
        "import function_runner.runtime",
        "from function_runner import runtime",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from function_runner.runtime import Runtime",
        "def f():\n    from ..runtime import runtime_for",
        "def f():\n    from .. import runtime",
    ],
)
def test_the_check_sees_every_form_of_importing_the_runtime(source: str) -> None:
    assert _runtime_imports(source, package="function_runner.wrapper")
    assert not _runtime_imports(
        "from function_runner.wrapper.services import Services", package="function_runner.wrapper"
    )
    assert not _is_entry_point("wrapper/deliveries.py") and _is_entry_point("cli/keys.py")

"""Sealing: the only copy of a secret that is kept is encrypted, and replay gets it back (invariant 6)."""

from __future__ import annotations

import copy
import datetime
import enum
import json
import uuid
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any

import pytest
from cryptography.fernet import Fernet

from error_handling.exceptions import ConfigurationError, FunctionRunnerError
from error_handling.redaction import CIRCULAR, DEFAULT_REDACTOR, REDACTED, Redactor
from error_handling.sealing import (
    LITERAL_KEY,
    SEALED_KEY,
    SealedValueError,
    Sealer,
    UnknownPlaceholderError,
    generate_key,
    is_sealed,
    redacted_view,
    reseal_secrets,
    restore_redacted,
    seal_secrets,
    unseal_secrets,
)
from tests.support.public_names import assert_all_lists_the_public_names

# The secrets hold the word "canary"; the names of these constants do not.
PLANTED_KEY = "sk-canary-3f9a1c0e5b7d4a2e9c81"
PLANTED_PW = "hunter2-canary-pw"


@pytest.fixture
def sealer() -> Sealer:
    """A sealer with a fresh key."""
    return Sealer(generate_key())


def seal(value: Any, sealer: Sealer, redactor: Redactor = DEFAULT_REDACTOR) -> Any:
    return seal_secrets(value, redactor=redactor, sealer=sealer)


def assert_stored_clean(stored: Any) -> None:
    text = json.dumps(stored, allow_nan=False)  # the stored form is plain JSON
    assert "canary" not in text.lower(), text


def task_kwargs() -> dict[str, Any]:
    return {
        "prompt": "summarise this",
        "max_tokens": 256,
        "api_key": PLANTED_KEY,
        "headers": {"Authorization": f"Bearer {PLANTED_PW}", "X-Request-Id": "r1"},
        "db": {"DATABASE_URL": f"postgres://app:{PLANTED_PW}@db/app", "pool": 5},
        "attempts": [{"password": PLANTED_PW}, f"note: password={PLANTED_PW}", [f"deep {PLANTED_KEY}"]],
        "credentials": {"user": "bob", "pin": 9999},
        "callback_url": f"https://hooks.example.com/cb?token={PLANTED_PW}",
        "flags": {"password": None, "token": "", "has_password": True},
    }


# --- round trip ------------------------------------------------------------------------------------------


def test_secrets_are_stored_sealed_and_come_back(sealer: Sealer) -> None:
    kwargs = task_kwargs()
    stored = seal(kwargs, sealer)
    assert_stored_clean(stored)
    assert unseal_secrets(stored, sealer=sealer) == kwargs


def test_what_is_sealed_and_what_is_kept_in_clear(sealer: Sealer) -> None:
    stored = seal(task_kwargs(), sealer)
    assert stored["prompt"] == "summarise this"
    assert stored["max_tokens"] == 256
    assert is_sealed(stored["api_key"])
    assert is_sealed(stored["headers"]["Authorization"])
    assert stored["headers"]["X-Request-Id"] == "r1"
    assert is_sealed(stored["db"]["DATABASE_URL"])
    assert stored["db"]["pool"] == 5
    assert is_sealed(stored["attempts"][0]["password"])
    assert is_sealed(stored["attempts"][1])  # a string holding a secret pattern is sealed whole
    assert is_sealed(stored["attempts"][2][0])
    assert is_sealed(stored["credentials"])  # the whole value under a secret key
    assert is_sealed(stored["callback_url"])
    assert stored["flags"] == {"password": None, "token": "", "has_password": True}  # nothing to hide
    assert list(stored["api_key"]) == [SEALED_KEY]


def test_the_view_shows_placeholders_without_a_key(sealer: Sealer) -> None:
    view = redacted_view(seal(task_kwargs(), sealer))
    assert view == DEFAULT_REDACTOR.redact(task_kwargs()) | {
        "attempts": [{"password": REDACTED}, REDACTED, [REDACTED]],
        "db": {"DATABASE_URL": REDACTED, "pool": 5},
        "callback_url": REDACTED,
    }
    assert view["max_tokens"] == 256
    assert "canary" not in repr(view)


def test_sealing_never_mutates_its_input(sealer: Sealer) -> None:
    kwargs = task_kwargs()
    before = copy.deepcopy(kwargs)
    stored = seal(kwargs, sealer)
    assert kwargs == before
    before_stored = copy.deepcopy(stored)
    unseal_secrets(stored, sealer=sealer)
    redacted_view(stored)
    restore_redacted(redacted_view(stored), stored, sealer=sealer)
    assert stored == before_stored


def test_each_seal_is_a_fresh_token(sealer: Sealer) -> None:
    first, second = seal({"token": PLANTED_PW}, sealer), seal({"token": PLANTED_PW}, sealer)
    assert first != second  # Fernet tokens carry a random IV: equal secrets are not seen as equal
    assert unseal_secrets(first, sealer=sealer) == unseal_secrets(second, sealer=sealer)


def test_extra_keys_of_the_redactor_are_sealed(sealer: Sealer) -> None:
    stored = seal({"ssn": "123-45-6789"}, sealer, Redactor(extra_keys=["ssn"]))
    assert is_sealed(stored["ssn"])
    assert "123-45-6789" not in json.dumps(stored)


# --- the "$sealed" key in a task's own data --------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        {SEALED_KEY: "not a token"},
        {SEALED_KEY: "gAAAAA-looks-like-one", "other": 1},
        {LITERAL_KEY: {"a": 1}},
        {LITERAL_KEY: {SEALED_KEY: "x"}},
        [{SEALED_KEY: {SEALED_KEY: "nested"}}],
    ],
    ids=repr,
)
def test_a_dict_with_a_marker_key_is_escaped_not_mistaken(sealer: Sealer, value: Any) -> None:
    stored = seal(value, sealer)
    assert unseal_secrets(stored, sealer=sealer) == value
    assert redacted_view(stored) == value
    assert restore_redacted(redacted_view(stored), stored, sealer=sealer) == value


def test_an_escaped_dict_still_seals_its_secrets(sealer: Sealer) -> None:
    value = {SEALED_KEY: "user data", "password": PLANTED_PW}
    stored = seal(value, sealer)
    assert list(stored) == [LITERAL_KEY]
    assert stored[LITERAL_KEY][SEALED_KEY] == "user data"
    assert is_sealed(stored[LITERAL_KEY]["password"])
    assert_stored_clean(stored)
    assert unseal_secrets(stored, sealer=sealer) == value
    assert redacted_view(stored) == {SEALED_KEY: "user data", "password": REDACTED}


# --- JSON-friendly conversion ----------------------------------------------------------------------------


class Plan(enum.Enum):
    PRO = "pro"


class Opaque:
    def __repr__(self) -> str:
        return f"Opaque(token={PLANTED_PW})"


CONVERSIONS = [
    # (value, stored form, unsealed form)
    ((1, "a"), [1, "a"], [1, "a"]),
    ({"b"}, ["b"], ["b"]),
    (frozenset({2}), [2], [2]),
    ({1: "a", None: "b"}, {"1": "a", "None": "b"}, {"1": "a", "None": "b"}),
    (datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.UTC), "2024-05-01T12:30:00+00:00", None),
    (datetime.date(2024, 5, 1), "2024-05-01", None),
    (datetime.time(8, 15), "08:15:00", None),
    (datetime.timedelta(minutes=1, milliseconds=500), 60.5, None),
    (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001", None),
    (Decimal("10.10"), "10.10", None),
    (PurePosixPath("/data/in.csv"), "/data/in.csv", None),
    (Plan.PRO, "pro", None),
    (b"hello", "hello", None),
    (b"\xff\x00\x01", "/wAB", None),
    (float("nan"), "NaN", None),
    (float("-inf"), "-Infinity", None),
    (Opaque(), f"Opaque(token={REDACTED})", None),
]


@pytest.mark.parametrize(("value", "stored_form", "unsealed_form"), CONVERSIONS, ids=lambda v: type(v).__name__)
def test_values_are_made_json_friendly(sealer: Sealer, value: Any, stored_form: Any, unsealed_form: Any) -> None:
    stored = seal(value, sealer)
    assert stored == stored_form
    json.dumps(stored, allow_nan=False)
    assert unseal_secrets(stored, sealer=sealer) == (stored_form if unsealed_form is None else unsealed_form)


def test_a_secret_is_sealed_in_its_json_friendly_form(sealer: Sealer) -> None:
    secret = {"issued": datetime.date(2024, 5, 1), "raw": PLANTED_PW.encode(), "ids": (uuid.UUID(int=2),)}
    stored = seal({"credentials": secret}, sealer)
    assert_stored_clean(stored)
    assert unseal_secrets(stored, sealer=sealer) == {
        "credentials": {"issued": "2024-05-01", "raw": PLANTED_PW, "ids": ["00000000-0000-0000-0000-000000000002"]}
    }


def test_bytes_holding_a_secret_are_sealed(sealer: Sealer) -> None:
    stored = seal([f"password={PLANTED_PW}".encode()], sealer)
    assert is_sealed(stored[0])
    assert unseal_secrets(stored, sealer=sealer) == [f"password={PLANTED_PW}"]


def test_a_dict_key_holding_a_secret_is_redacted(sealer: Sealer) -> None:
    stored = seal({PLANTED_KEY: 1}, sealer)
    assert stored == {REDACTED: 1}


def test_cycles_are_cut(sealer: Sealer) -> None:
    cyclic: dict[str, Any] = {"name": "a"}
    cyclic["self"] = cyclic
    assert seal(cyclic, sealer) == {"name": "a", "self": CIRCULAR}
    secret: list[Any] = [PLANTED_PW]
    secret.append(secret)
    stored = seal({"token": secret}, sealer)
    assert unseal_secrets(stored, sealer=sealer) == {"token": [PLANTED_PW, CIRCULAR]}


# --- keys --------------------------------------------------------------------------------------------------


def test_keys_rotate(sealer: Sealer) -> None:
    old_key, new_key = generate_key(), Sealer.generate_key()
    stored = seal(task_kwargs(), Sealer(old_key))
    for both in (
        Sealer(f"{new_key}, {old_key}"),
        Sealer([new_key, old_key.encode()]),
        Sealer(f"{new_key},{old_key}".encode()),
    ):
        assert unseal_secrets(stored, sealer=both) == task_kwargs()

    rotated = reseal_secrets(stored, sealer=Sealer([new_key, old_key])).value
    assert_stored_clean(rotated)
    assert redacted_view(rotated) == redacted_view(stored)
    assert unseal_secrets(rotated, sealer=Sealer(new_key)) == task_kwargs()
    with pytest.raises(SealedValueError):
        unseal_secrets(rotated, sealer=Sealer(old_key))


def test_rotation_keeps_escapes(sealer: Sealer) -> None:
    value = {SEALED_KEY: "user data", "token": PLANTED_PW}
    rotated = reseal_secrets(seal(value, sealer), sealer=sealer).value
    assert unseal_secrets(rotated, sealer=sealer) == value


def test_a_wrong_key_is_a_clear_error(sealer: Sealer) -> None:
    stored = seal({"password": PLANTED_PW}, sealer)
    other = generate_key()
    with pytest.raises(SealedValueError, match="not among the configured ones") as caught:
        unseal_secrets(stored, sealer=Sealer(other))
    assert isinstance(caught.value, FunctionRunnerError)
    assert other not in str(caught.value)
    assert "canary" not in str(caught.value)


@pytest.mark.parametrize("token", ["gAAAAAdamaged", "", "not base64 at all ✓"])
def test_a_damaged_token_is_a_clear_error(sealer: Sealer, token: str) -> None:
    with pytest.raises(SealedValueError, match="damaged"):
        sealer.unseal(token)
    with pytest.raises(SealedValueError):
        unseal_secrets({"password": {SEALED_KEY: token}}, sealer=sealer)


def test_a_token_must_be_a_string(sealer: Sealer) -> None:
    with pytest.raises(SealedValueError, match="string token"):
        sealer.unseal(b"gAAAA")  # type: ignore[arg-type]


#: A well-formed key, the same in every test process (parallel runs must collect the same test ids).
GOOD_KEY = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

BAD_KEYS = [
    "",
    " , ",
    [],
    "not-a-key",
    "c2hvcnQ=",  # base64, but 5 bytes
    GOOD_KEY[:-2],  # cut short: bad padding
    GOOD_KEY + ",oops-secret-material",
    [GOOD_KEY.encode(), 12345],
]


@pytest.mark.parametrize("keys", BAD_KEYS, ids=repr)
def test_a_bad_key_is_a_configuration_error_that_does_not_echo_it(keys: Any) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Sealer(keys)
    message = str(caught.value)
    assert "key" in message
    assert caught.value.__cause__ is None  # the cryptography error is not chained: it could quote the key
    assert caught.value.__context__ is None or caught.value.__suppress_context__
    for part in str(keys).replace("b'", "").split(","):
        if len(part.strip(" '[]")) >= 5:
            assert part.strip(" '[]") not in message


def test_a_bad_key_names_its_position() -> None:
    with pytest.raises(ConfigurationError, match="#2 of 2"):
        Sealer(f"{generate_key()},bad")


def test_the_sealer_does_not_show_its_keys() -> None:
    key = generate_key()
    sealer = Sealer([key, generate_key()])
    assert key not in repr(sealer)
    assert repr(sealer) == "<Sealer with 2 keys>"


def test_generated_keys_are_fernet_keys() -> None:
    key = generate_key()
    assert isinstance(key, str)
    Fernet(key)
    assert generate_key() != key


def test_seal_and_unseal_any_json_value(sealer: Sealer) -> None:
    for value in (PLANTED_PW, 0, None, [1, {"a": "b"}], {"ünïcode": "✓"}):
        token = sealer.seal(value)
        assert "canary" not in token
        assert sealer.unseal(token) == value


# --- replay with edits -------------------------------------------------------------------------------------


def test_an_unedited_view_restores_the_originals(sealer: Sealer) -> None:
    stored = seal(task_kwargs(), sealer)
    assert restore_redacted(redacted_view(stored), stored, sealer=sealer) == unseal_secrets(stored, sealer=sealer)


def test_edits_are_kept_and_placeholders_restored(sealer: Sealer) -> None:
    stored = seal(task_kwargs(), sealer)
    edited = redacted_view(stored)
    edited["max_tokens"] = 512  # an operator's fix
    edited["headers"]["Authorization"] = "Bearer new-token-typed-by-operator"  # a placeholder replaced
    edited["attempts"][0]["password"] = REDACTED  # left as it was
    edited["new_arg"] = True
    del edited["prompt"]
    restored = restore_redacted(edited, stored, sealer=sealer)
    expected = task_kwargs()
    expected["max_tokens"] = 512
    expected["headers"]["Authorization"] = "Bearer new-token-typed-by-operator"
    expected["new_arg"] = True
    del expected["prompt"]
    assert restored == expected


def test_a_list_that_keeps_its_length_is_matched_by_position(sealer: Sealer) -> None:
    stored = seal([{"password": "first-canary"}, {"password": "second-canary"}, "x"], sealer)
    edited = redacted_view(stored)
    edited[2] = "y"
    assert restore_redacted(edited, stored, sealer=sealer) == [
        {"password": "first-canary"},
        {"password": "second-canary"},
        "y",
    ]


@pytest.mark.parametrize(
    ("edit", "path"),
    [
        (lambda view: view["attempts"].insert(0, "new"), r"\.attempts\[1\]\.password"),
        (lambda view: view.update(extra=REDACTED), r"\.extra"),
        (lambda view: view.update(prompt=REDACTED), r"\.prompt"),
        (lambda view: view.update(credentials={"user": "bob", "pin": REDACTED}), r"\.credentials\.pin"),
    ],
    ids=["list-shifted", "new-key", "was-not-secret", "replaced-by-a-dict"],
)
def test_a_placeholder_with_no_secret_behind_it_is_refused(sealer: Sealer, edit: Any, path: str) -> None:
    stored = seal(task_kwargs(), sealer)
    edited = redacted_view(stored)
    edit(edited)
    with pytest.raises(UnknownPlaceholderError, match=path) as caught:
        restore_redacted(edited, stored, sealer=sealer)
    assert isinstance(caught.value, SealedValueError)
    assert "canary" not in str(caught.value)


def test_a_literal_placeholder_in_the_original_is_kept(sealer: Sealer) -> None:
    value = {"note": REDACTED, "token": PLANTED_PW}  # e.g. a message that was redacted upstream
    stored = seal(value, sealer)
    assert stored["note"] == REDACTED
    assert restore_redacted(redacted_view(stored), stored, sealer=sealer) == value


def test_a_top_level_placeholder(sealer: Sealer) -> None:
    stored = seal(PLANTED_KEY, sealer)
    assert is_sealed(stored)
    assert restore_redacted(REDACTED, stored, sealer=sealer) == PLANTED_KEY
    with pytest.raises(UnknownPlaceholderError, match="the top level"):
        restore_redacted(REDACTED, "plain", sealer=sealer)


def test_all_lists_the_public_names() -> None:
    assert_all_lists_the_public_names("error_handling.sealing")

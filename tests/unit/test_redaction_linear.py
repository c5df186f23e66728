"""Redaction is linear-time and bounded: no input makes it slow, and what it does not scan it drops.

Redaction runs on every failure and every log line, so a crafted text must not stall a worker. The
property: an adversarial input made ten times longer costs about ten times more, not a hundred. Work
is compared as a ratio of two timings taken in the same run (the best of several, interleaved, so a
busy machine slows both alike); no absolute time is asserted.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from error_handling.exceptions import ConfigurationError
from error_handling.redaction import (
    DEFAULT_REDACTOR,
    MAX_SCANNED_CHARS,
    REDACTED,
    UNSCANNED,
    Redactor,
    is_secret_key,
    redact_text,
    unscanned_marker,
)

#: How much more work a tenfold input may cost: a linear scan costs about 10x (some more for memory
#: effects on a busy machine); a quadratic one costs about 100x.
MAX_RATIO = 30.0
#: The input sizes compared (characters): both below the cap, so the whole text is scanned.
SMALL, LARGE = 5_000, 50_000
assert LARGE <= MAX_SCANNED_CHARS

#: Units repeated into adversarial texts: each defeats a naive pattern (an opening with no close, a
#: run read again from each of its positions, a lazy search for an END that never comes).
ADVERSARIAL = {
    "pem_begin_without_end": "-----BEGIN PRIVATE KEY-----\n",
    "pem_header_run": "-----BEGIN AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "key_equals": "key=",
    "json_key_list_opening": '{"key": [',
    "secret_tuple_opening": "token=(",
    "secret_list_opening": "token=[",
    "secret_dict_opening": "token={",
    "secret_quote_opening": 'token="',
    "mixed_quotes": "pw=\"a pw='a ",
    "escaped_quotes": 'a=\\"',
    "backslashes_after_secret": "token=\\\\\\",
    "backslash_run": "\\",
    "xml_secret_opening": "<token>",
    "xml_long_name": "<tokentoken",
    "url_userinfo": "a://b:",
    "scheme_run": "a.",
    "jwt_run": "eyJ-",
    "cookie_header": '"cookie: ',
    "bearer": "bearer ",
    "key_then_spaces": "password    ",
    "sendgrid_half": "SG.aaaaaaaaaaaaaaaaaaaa-",
    "colon_key": "token:",
    "bytes_quote": "pw=b'",
}


def _best_of(redact: Callable[[str], str], text: str, *, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        redact(text)
        best = min(best, time.perf_counter() - started)
    return best


def _work_ratio(redact: Callable[[str], str], small: str, large: str, *, repeats: int = 7) -> float:
    """How much longer ``large`` takes than ``small``: best times, measured interleaved."""
    small_best = large_best = float("inf")
    for _ in range(repeats):
        small_best = min(small_best, _best_of(redact, small, repeats=1))
        large_best = min(large_best, _best_of(redact, large, repeats=1))
    return large_best / max(small_best, 1e-9)


def _grown(unit: str, length: int) -> str:
    return (unit * (length // len(unit) + 1))[:length]


@pytest.mark.parametrize("unit", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
def test_tenfold_adversarial_input_costs_about_tenfold(unit: str) -> None:
    ratio = _work_ratio(redact_text, _grown(unit, SMALL), _grown(unit, LARGE))
    assert ratio < MAX_RATIO, f"10x input cost {ratio:.1f}x (quadratic would be ~100x)"


def test_work_stops_growing_at_the_cap() -> None:
    unit = ADVERSARIAL["json_key_list_opening"] + "\n"
    at_cap = _grown(unit, MAX_SCANNED_CHARS)
    ratio = _work_ratio(redact_text, at_cap, _grown(unit, 10 * MAX_SCANNED_CHARS))
    assert ratio < 3, f"10x past the cap cost {ratio:.1f}x"


# --- the cap never lets unscanned text out ---------------------------------------------------------


def test_text_past_the_cap_is_cut_at_a_line_end_and_marked() -> None:
    redactor = Redactor(max_scanned_chars=100)
    text = "first line\n" + "x" * 80 + "\n" + "y" * 50
    out = redactor.redact_text(text)
    assert out == "first line\n" + "x" * 80 + "\n" + unscanned_marker(50)
    assert out.endswith(f"{UNSCANNED} 50 more characters dropped]")


def test_a_secret_across_the_cut_is_never_emitted_in_part() -> None:
    redactor = Redactor(max_scanned_chars=60)
    # the quoted value straddles the limit: cut at the line before it, nothing of it is kept
    text = "ok line\n" + 'password="correct horse battery staple canary" and more words after it'
    out = redactor.redact_text(text)
    assert out == "ok line\n" + unscanned_marker(len(text) - len("ok line\n"))
    for word in ("correct", "horse", "battery", "staple", "canary"):
        assert word not in out


def test_a_single_line_longer_than_the_cap_is_dropped_whole() -> None:
    redactor = Redactor(max_scanned_chars=40)
    text = "token=(first-canary, second-canary, third-canary, fourth-canary)"
    assert redactor.redact_text(text) == unscanned_marker(len(text))


def test_a_private_key_cut_short_by_the_cap_is_hidden_to_the_end() -> None:
    redactor = Redactor(max_scanned_chars=120)
    body = "\n".join(["MIIEcanaryAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] * 6)
    text = f"key:\n-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----\n"
    out = redactor.redact_text(text)
    assert "canary" not in out.lower()
    assert out.startswith(f"key:\n{REDACTED}")


def test_a_secret_element_cut_short_by_the_cap_is_hidden_to_the_end() -> None:
    redactor = Redactor(max_scanned_chars=60)
    text = "<config>\n<password>\nline-one-canary\nline-two-canary\nline-three-canary\n</password>\n</config>"
    out = redactor.redact_text(text)
    assert "canary" not in out.lower()
    assert out.startswith(f"<config>\n<password>{REDACTED}")


def test_a_text_within_the_cap_is_not_marked() -> None:
    text = "x" * (MAX_SCANNED_CHARS - 1) + "\n"
    assert DEFAULT_REDACTOR.redact_text(text) == text


def test_the_cap_must_be_positive() -> None:
    with pytest.raises(ConfigurationError):
        Redactor(max_scanned_chars=0)


# --- the rewritten pair and block scans find what the patterns found -------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('password="ab\\"cd" next', f'password="{REDACTED}" next'),
        # no unescaped closing quote on the line: up to the last escaped one, as before
        ('password="two words\\" tail', f'password="{REDACTED}" tail'),
        ('password="left open\nnext=1', f"password={REDACTED} open\nnext=1"),
        ("token=(a, b) rest", f"token={REDACTED} rest"),
        ("token=[a, b] rest", f"token={REDACTED} rest"),
        ("token={a: b} rest", f"token={REDACTED} rest"),
        ("token=(a\nb) rest", "token=(a\nb) rest"),
        ("url=https://h/?token=abc&x=1", f"url=https://h/?token={REDACTED}&x=1"),
        ('{\\"password\\": \\"s3cret\\"}', f'{{\\"password\\": \\"{REDACTED}\\"}}'),
        ("pw=b'bytes-secret' ok", f"pw={REDACTED} ok"),
        ("a\n-----BEGIN EC PRIVATE KEY-----\nAAA\n-----END EC PRIVATE KEY-----\nb", f"a\n{REDACTED}\nb"),
        ("-----BEGIN PGP PRIVATE KEY BLOCK-----\nxyz\n-----END PGP PRIVATE KEY BLOCK-----", REDACTED),
        (
            "-----BEGIN PRIVATE KEY-----\nA\n-----END PRIVATE KEY----- mid -----BEGIN PRIVATE KEY-----\nB",
            f"{REDACTED} mid {REDACTED}",
        ),
        ("<Password>s3cret</Password> <user>bob</user>", f"<Password>{REDACTED}</Password> <user>bob</user>"),
        ("postgresql+psycopg://app:p@ss@db/x", f"postgresql+psycopg://app:{REDACTED}@db/x"),
    ],
)
def test_pairs_and_blocks(text: str, expected: str) -> None:
    assert redact_text(text) == expected


# --- key names users expect ------------------------------------------------------------------------

NEW_SECRET_KEYS = [
    "pw", "user_pw", "pin", "card_pin", "pin_code", "otp", "totp", "otp_code", "cvv", "cvv2", "cvc",
    "card_number", "cardNumber", "credit_card_number", "card_no", "credit_card", "ssn", "user_ssn",
    "bearer", "bearer_token", "webhook_url", "SLACK_WEBHOOK_URL", "hook_url", "hmac", "hmac_key",
    "x-hmac", "security_code",
]  # fmt: skip
STILL_HARMLESS = [
    "pin_memory", "pins", "otp_enabled", "card_type", "card_count", "number", "webhook_id", "url",
    "ssn_count", "hmac_algorithm", "cvv_valid", "shipping", "mapping",
]  # fmt: skip


@pytest.mark.parametrize("key", NEW_SECRET_KEYS)
def test_key_names_users_expect_are_secret(key: str) -> None:
    assert is_secret_key(key)
    assert redact_text(f"{key}=4111111111111111 ok") == f"{key}={REDACTED} ok"


@pytest.mark.parametrize("key", STILL_HARMLESS)
def test_neighbouring_key_names_stay_harmless(key: str) -> None:
    assert not is_secret_key(key)

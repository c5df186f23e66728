"""The patterns redaction searches text for: ``key=value`` pairs (the key judged by
:mod:`.keys`), PEM blocks, header lines, and secrets known by their shape (provider keys, tokens, JWTs,
credentials in URLs). To recognise a new kind of secret, add a row to :data:`SHAPE_RULES`.

No pattern backtracks far: runs are matched possessively (``*+``, ``++``) or bounded, and a match
starts only where a run of its characters starts (see :mod:`.scanner` for the rest of the bound).
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

_KEY_CHARS = r"[A-Za-z0-9_.\-]"
_UNQUOTED = r"""[^\s,;&"'\\<>(){}\[\]]+"""

#: ``key=``, ``key: ``, ``"key": ``, ``key => ``: a key and its separator. The key is judged first;
#: only after a secret key is the value looked for (:func:`_value_end`).
KEY_SEP: Final = re.compile(
    rf"""
    (?<!{_KEY_CHARS})
    (?P<kq>(?<!\\)\\*+["']?|["']?)                          # a run of backslashes is taken whole
    (?P<key>{_KEY_CHARS}++)
    (?P=kq)
    (?P<sep>[ \t]*+(?:=>|[:=])[ \t]*+)
    """,
    re.VERBOSE,
)
#: A quoted value: ``"..."``, ``'...'``, ``b'...'``, ``\\"...\\"`` (escaped up to 7 times), on one line.
QUOTED_VALUE: Final = re.compile(r"""[bBrRuU]?(?P<vq>\\{0,7}["'])(?:(?!(?P=vq))(?:\\.|.))*+(?P=vq)""")
#: An unquoted value, after an optional authorization scheme.
UNQUOTED_VALUE: Final = re.compile(
    rf"""(?i:(?:bearer|basic|token|digest|negotiate|bot)[ \t]++)?\\*+["']?{_UNQUOTED}""",
)
#: Brackets a value may be written in (a tuple, a list, a flat dict), with their closing character.
BRACKETS: Final = {"(": ")", "[": "]", "{": "}"}
#: ``<key>value</key>``; the key is judged afterwards. With ``\Z``: a value cut short by the end of the text.
XML_PAIR: Final = re.compile(r"<(?P<key>[\w.:\-]++)>(?P<val>[^<]*+)</(?P=key)>")
XML_PAIR_CUT: Final = re.compile(r"<(?P<key>[\w.:\-]++)>(?P<val>[^<]*+)(?:</(?P=key)>|\Z)")
#: PEM private key blocks (RSA, EC, DSA, OpenSSH, encrypted, PGP's ``PRIVATE KEY BLOCK``).
PEM_BEGIN: Final = re.compile(r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----")
PEM_END: Final = re.compile(r"-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----")
#: What follows a BEGIN line with no END after it: the key's body, also with escaped newlines.
PEM_BODY: Final = re.compile(r"[A-Za-z0-9+/=\s\\]*+")


class TextRule(NamedTuple):
    """A pattern, and lowercase substrings (``tells``) one of which any text it matches contains."""

    pattern: re.Pattern[str]
    tells: tuple[str, ...]


def _rule(source: str, *tells: str) -> TextRule:
    return TextRule(re.compile(source), tells)


#: Telltales of a PEM private key block (redacted first: it spans ``key=value`` pairs).
PEM_TELLS: Final = ("-----begin",)
#: Patterns that go before ``key=value`` pairs are looked for: they span such pairs.
LEADING_RULES: Final = (
    # header lines whose whole value is a credential: inside quotes up to the closing quote,
    # elsewhere up to the end of the line
    _rule(
        r"(?P<q>[\"'])(?i:(?:set-)?cookie|(?:proxy-)?authorization)[ \t]*+:[ \t]*+(?P<secret>[^\r\n]+?)(?=(?P=q)|[\r\n]|$)",
        "cookie",
        "authorization",
    ),
    _rule(
        r"(?<![\w\"'-])(?i:(?:set-)?cookie|(?:proxy-)?authorization)[ \t]*+:[ \t]*+(?P<secret>[^\s\"'][^\r\n]*+)",
        "cookie",
        "authorization",
    ),
)
#: Patterns that go after: secrets recognisable by their shape. The match, or only its group named
#: ``secret`` when there is one, is replaced.
SHAPE_RULES: Final = (
    # credentials in URLs: scheme://user:password@host, scheme://<long token>@host (a scheme has at
    # most 32 characters: a longer run is not read again from each of its dots)
    _rule(r"\b[A-Za-z][A-Za-z0-9+.\-]{0,31}+://[^\s:/?#@\[\]\"']*+:(?P<secret>[^\s/?#\"']+)@", "://"),
    _rule(r"\b[A-Za-z][A-Za-z0-9+.\-]{0,31}+://(?P<secret>[A-Za-z0-9_\-.~%]{20,}+)@", "://"),
    # Slack incoming webhooks carry their secret in the path
    _rule(r"hooks\.slack\.com/services/(?P<secret>[A-Za-z0-9/_\-]++)", "hooks.slack.com"),
    # Authorization schemes (a credential of 8+ characters with a digit or a symbol, or 20+ letters)
    _rule(
        r"\b(?i:bearer|basic)\s++(?P<secret>(?=[A-Za-z]*+[0-9+/=_.~\-]|[A-Za-z]{20})[A-Za-z0-9+/=_.~\-]{8,}+)",
        "bearer",
        "basic",
    ),
    # OpenAI (sk-, sk-proj-, sk-svcacct-) and Anthropic (sk-ant-) keys
    _rule(r"\bsk-[A-Za-z0-9_\-]{16,}+", "sk-"),
    _rule(r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{10,}+", "sk_", "rk_"),  # Stripe secret and restricted keys
    _rule(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", "akia", "asia"),  # AWS access key ids
    _rule(r"\bgh[pousr]_[A-Za-z0-9]{20,}+", "ghp_", "gho_", "ghu_", "ghs_", "ghr_"),  # GitHub
    _rule(r"\bgithub_pat_[A-Za-z0-9_]{20,}+", "github_pat_"),
    _rule(r"\bglpat-[A-Za-z0-9_\-]{20,}+", "glpat-"),  # GitLab
    _rule(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}+", "xox"),  # Slack
    _rule(r"\bAIza[0-9A-Za-z_\-]{35}", "aiza"),  # Google API keys
    _rule(r"\bya29\.[0-9A-Za-z_\-]{20,}+", "ya29."),  # Google OAuth access tokens
    _rule(r"\bhf_[A-Za-z0-9]{30,}+", "hf_"),  # Hugging Face
    _rule(r"\bSG\.[A-Za-z0-9_\-]{16,}+\.[A-Za-z0-9_\-]{16,}+", "sg."),  # SendGrid
    # JWTs (starting where a run of their characters starts, so that ``eyJ-eyJ-...`` is read once)
    _rule(r"(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{8,}+\.[A-Za-z0-9_\-]{8,}+\.[A-Za-z0-9_\-]*+", "eyj"),
)

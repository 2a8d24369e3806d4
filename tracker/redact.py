"""Secrets inside URLs, masked wherever a URL is shown or logged.

A feed URL may carry credentials: `https://user:password@host/feed`, `https://TOKEN@host/feed`,
or `?api_key=...&sig=...`. Pages, the API, exports, the CLI, alert emails and logs show such a
URL with those parts replaced by `***`; only an admin's feed edit form (and the admin's OPML
export, which must import elsewhere) holds the URL whole. A user name before a password stays:
it names the account without opening it."""

import re
from urllib.parse import unquote

MASK = "***"
# scheme://user:password@host -> scheme://user:***@host
_PASSWORD = re.compile(r"(?P<prefix>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@", re.I)
# scheme://token@host -> scheme://***@host (userinfo without a password is often a token)
_BARE_USERINFO = re.compile(r"(?P<prefix>[a-z][a-z0-9+.-]*://)[^:/@\s]+@", re.I)
_QUERY_PARAM = re.compile(r"(?P<prefix>[?&;](?P<name>[^=&#;\s?]+)=)(?P<value>[^&#;\s\"'<>]+)")
# Query parameter names that carry credentials, once lower-cased and stripped of - and _:
# api_key, apiKey, access_token, X-Amz-Signature, client_secret, passwd, sig, auth, jwt, ...
_SECRET_NAME = re.compile(
    r"key|token|secret|pass|pwd|sig|auth(?!or)|credential|session|jwt|bearer|private"
)


def secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(re.sub(r"[-_.\s]", "", unquote(name).lower())))


def redact_text(text: str) -> str:
    """The text with every URL's password, bare userinfo and secret query values masked."""
    text = _PASSWORD.sub(lambda m: f"{m.group('prefix')}{MASK}@", text)
    text = _BARE_USERINFO.sub(lambda m: f"{m.group('prefix')}{MASK}@", text)
    return _QUERY_PARAM.sub(_mask_param, text)


def _mask_param(match: re.Match[str]) -> str:
    if secret_name(match.group("name")):
        return match.group("prefix") + MASK
    return match.group(0)


def redact_optional(text: str | None) -> str | None:
    return None if text is None else redact_text(text)

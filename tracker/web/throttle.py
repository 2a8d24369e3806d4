"""Login throttling: too many failures for one account, or from one address, lock it for a while.
A wrong current password on the password form counts as a failed login of that account: a
stolen session must not become a way to guess the password without limit.

Counted in PostgreSQL (tracker.storage.login_throttle) so every web process sees the same
counts. An unknown email is counted and locked exactly like a real one, so neither the
refusal nor its timing tells whether an account exists."""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from fastapi import Request

from tracker.storage import audit, login_throttle, users

MAX_KEY_CHARS = 320  # the longest email address; longer input is cut, not stored whole
# A key quiet this long after its last lock starts again at the first lock length.
FORGET_AFTER = timedelta(hours=24)
THROTTLE_ACTOR = "login-throttle"


@dataclass(frozen=True)
class Limit:
    scope: str
    max_failures: int
    window: timedelta = timedelta(minutes=15)
    first_lock: timedelta = timedelta(minutes=15)
    max_lock: timedelta = timedelta(hours=24)

    def lock_length(self, earlier_locks: int) -> timedelta:
        """15 minutes, then 30, 60, ... up to a day: each lock in a row lasts twice as long."""
        longer: timedelta = self.first_lock * 2 ** min(earlier_locks, 16)
        return min(longer, self.max_lock)


ACCOUNT = Limit("account", max_failures=5)
# A newsroom logs in from one office address, so the address limit is looser than an account's:
# one person's typos must not lock out their colleagues.
ADDRESS = Limit("address", max_failures=20)


def client_address(request: Request) -> str:
    # Behind a reverse proxy this is the proxy unless uvicorn trusts its forwarded headers.
    return request.client.host if request.client else "unknown"


def _keys(email: str, address: str) -> list[tuple[Limit, str]]:
    # NUL cannot be stored in PostgreSQL text; it is no part of any real address.
    account = users.normalise_email(email).replace("\x00", "")[:MAX_KEY_CHARS]
    return [(ACCOUNT, account), (ADDRESS, address)]


def refused_until(
    conn: psycopg.Connection, email: str, address: str, now: datetime
) -> datetime | None:
    """When the lock on this account or address ends, or None when a login may be tried."""
    keys = [(limit.scope, key) for limit, key in _keys(email, address)]
    return login_throttle.locked_until(conn, keys, now)


def record_failure(
    conn: psycopg.Connection, email: str, address: str, now: datetime
) -> datetime | None:
    """Count a failed login; returns the end of the lock it led to, if any. Locks are audited."""
    until = None
    for limit, key in _keys(email, address):
        counter = login_throttle.record_failure(
            conn, limit.scope, key, now, limit.window, FORGET_AFTER
        )
        if counter.failures >= limit.max_failures:
            end = now + limit.lock_length(counter.lockouts)
            login_throttle.lock(conn, limit.scope, key, now, end)
            details = {"until": end.isoformat(), "failures": counter.failures}
            audit.record(conn, THROTTLE_ACTOR, "login.locked", f"{limit.scope}:{key}", details)
            until = end if until is None else max(until, end)
    if until is not None:
        # Locks happen under attack, which is also when guessed emails pile up.
        login_throttle.purge(conn, now - FORGET_AFTER)
    return until


def record_success(conn: psycopg.Connection, email: str) -> None:
    """A successful login clears the account's count; the address keeps its own."""
    login_throttle.clear(conn, ACCOUNT.scope, _keys(email, "")[0][1])


def refusal_message(until: datetime, now: datetime, failed: str = "failed logins") -> str:
    minutes = max(1, math.ceil((until - now).total_seconds() / 60))
    unit = "minute" if minutes == 1 else "minutes"
    return f"Too many {failed}. Try again in {minutes} {unit}."


def retry_after_s(until: datetime, now: datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds()))

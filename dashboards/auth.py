"""Console users (argon2id password hashes) and their sessions (tokens stored as SHA-256).

create_user(wh, "ana", "reviewer", password)      # -> User; UserError on bad input
user = authenticate(wh, "ana", password)           # -> User | None
token, csrf = open_session(wh, user, ttl_s=3600)   # the token goes in the cookie, once
session = find_session(wh, token)                  # -> Session | None (expired: None)
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, cast, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from dashboards.exceptions import UserError
from ingest.warehouse import Warehouse

Role = Literal["viewer", "reviewer", "admin"]
ROLES: tuple[str, ...] = get_args(Role)
_RANK = {role: rank for rank, role in enumerate(ROLES)}
_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD = 10

_hasher = PasswordHasher()  # argon2id, memory-hard


@dataclass(frozen=True)
class User:
    username: str
    role: Role

    def can(self, role: Role) -> bool:
        """Whether this user's role is ``role`` or above it (viewer < reviewer < admin)."""
        return _RANK[self.role] >= _RANK[role]


@dataclass(frozen=True)
class Session:
    user: User
    csrf_token: str
    expires_at: datetime


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    return cast(Role, role)


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def generate_password() -> str:
    return secrets.token_urlsafe(18)


def create_user(wh: Warehouse, username: str, role: str, password: str) -> User:
    """Add a user; the password is stored only as its argon2id hash."""
    checked = check_role(role)
    if not _USERNAME.match(username):
        raise UserError(
            f"invalid username {username!r}: 1 to 64 letters, digits or . _ @ - characters"
        )
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password must have at least {MIN_PASSWORD} characters")
    if wh.scalar("SELECT count(*) FROM console_users WHERE username = $u", {"u": username}):
        raise UserError(f"the user {username!r} already exists")
    wh.execute(
        "INSERT INTO console_users (username, role, password_hash, created_at) "
        "VALUES ($u, $r, $h, now())",
        {"u": username, "r": checked, "h": _hasher.hash(password)},
    )
    return User(username, checked)


def list_users(wh: Warehouse) -> list[dict[str, object]]:
    return wh.records(
        "SELECT username, role, created_at, disabled FROM console_users ORDER BY username"
    )


def authenticate(wh: Warehouse, username: str, password: str) -> User | None:
    """The user when the password matches; None otherwise (the same for an unknown user)."""
    row = wh.fetchone(
        "SELECT role, password_hash FROM console_users WHERE username = $u AND NOT disabled",
        {"u": username},
    )
    if row is None:
        _hasher.hash(password)  # spend the same time as a real check
        return None
    try:
        _hasher.verify(row[1], password)
    except (VerificationError, InvalidHashError):
        return None
    return User(username, check_role(row[0]))


def open_session(wh: Warehouse, user: User, ttl_s: float) -> tuple[str, str]:
    """A new session: ``(token, csrf_token)``. Only the token's SHA-256 is stored."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    wh.execute("DELETE FROM console_sessions WHERE expires_at <= $now", {"now": now})
    wh.execute(
        "INSERT INTO console_sessions VALUES ($t, $u, $c, $now, $exp)",
        {
            "t": _sha256(token),
            "u": user.username,
            "c": csrf,
            "now": now,
            "exp": now + timedelta(seconds=ttl_s),
        },
    )
    return token, csrf


def find_session(wh: Warehouse, token: str) -> Session | None:
    """The live session of a cookie token; None when unknown, expired or the user is disabled."""
    row = wh.fetchone(
        "SELECT u.username, u.role, s.csrf_token, s.expires_at FROM console_sessions AS s "
        "JOIN console_users AS u USING (username) "
        "WHERE s.token_sha256 = $t AND s.expires_at > now() AND NOT u.disabled",
        {"t": _sha256(token)},
    )
    if row is None:
        return None
    return Session(User(row[0], check_role(row[1])), row[2], row[3])


def close_session(wh: Warehouse, token: str) -> None:
    wh.execute("DELETE FROM console_sessions WHERE token_sha256 = $t", {"t": _sha256(token)})

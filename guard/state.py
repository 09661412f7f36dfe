"""Published state: API keys (stored as SHA-256 hashes) and account enforcement states.

Two backends share one interface, :class:`StateStore`:

* :class:`FileStateStore`: one JSON file, rewritten by atomic replace under a lock file. Workers
  notice a change by polling the file's identity (inode, mtime, size).
* :class:`RedisStateStore`: two hashes and a version counter under a key prefix; every change bumps
  the counter (and is published on ``<prefix>state``), which workers poll.

The control plane publishes decisions through the same API the ``keys`` and ``accounts`` commands
use. A key's secret is returned once by :meth:`StateStore.create_key` and never stored: only its
SHA-256 hash is (the secret is 256 random bits, so a slow password hash would add nothing).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast, get_args

import orjson

from guard.exceptions import StateError, UnknownAccountState, UnknownKey

AccountState = Literal["active", "throttled", "restricted", "suspended"]
ACCOUNT_STATES: tuple[str, ...] = get_args(AccountState)
KEY_PREFIX = "dg-"


def hash_key(secret: str) -> str:
    """The SHA-256 hex digest under which a key is stored and looked up."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def check_state(state: str) -> AccountState:
    """``state`` if it is one of the four account states, else :class:`UnknownAccountState`."""
    if state not in ACCOUNT_STATES:
        raise UnknownAccountState(
            f"unknown account state {state!r}: use one of {', '.join(ACCOUNT_STATES)}"
        )
    return cast(AccountState, state)


@dataclass(frozen=True)
class KeyRecord:
    """One API key as stored: never the secret."""

    key_id: str
    key_hash: str
    account_id: str
    created: str
    revoked: str | None = None


@dataclass(frozen=True)
class AccountRecord:
    """An account's enforcement state and why it was set."""

    account_id: str
    state: AccountState = "active"
    reason: str = ""
    updated: str = ""


@dataclass(frozen=True)
class Snapshot:
    """Everything a worker needs to authenticate and enforce, indexed for the hot path."""

    keys_by_hash: dict[str, KeyRecord] = field(default_factory=dict)
    accounts: dict[str, AccountRecord] = field(default_factory=dict)

    def account(self, account_id: str) -> AccountRecord:
        """The account's record; an account never set is ``active``."""
        return self.accounts.get(account_id) or AccountRecord(account_id)


def _snapshot(keys: list[KeyRecord], accounts: list[AccountRecord]) -> Snapshot:
    return Snapshot({k.key_hash: k for k in keys}, {a.account_id: a for a in accounts})


def _new_key(account_id: str) -> tuple[KeyRecord, str]:
    if not account_id.strip():
        raise StateError("an account id must not be empty")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    record = KeyRecord("key_" + secrets.token_hex(8), hash_key(secret), account_id, _now())
    return record, secret


class StateStore(ABC):
    """Keys and account states, published to every gateway worker."""

    @abstractmethod
    def list_keys(self, account_id: str | None = None) -> list[KeyRecord]:
        """Every key (or one account's), revoked ones included."""

    @abstractmethod
    def list_accounts(self) -> list[AccountRecord]:
        """Every account whose state was ever set."""

    @abstractmethod
    def _put_key(self, record: KeyRecord) -> None: ...

    @abstractmethod
    def _put_account(self, record: AccountRecord) -> None: ...

    @abstractmethod
    def version(self) -> str:
        """A cheap token that changes whenever the state changes."""

    def create_key(self, account_id: str) -> tuple[str, str]:
        """Create a key for ``account_id``; returns ``(key_id, secret)``. The secret is not kept."""
        record, secret = _new_key(account_id)
        self._put_key(record)
        return record.key_id, secret

    def revoke_key(self, key_id: str) -> KeyRecord:
        """Revoke a key; it is refused (401) by every worker within the poll interval."""
        for record in self.list_keys():
            if record.key_id == key_id:
                if record.revoked:
                    return record
                revoked = replace(record, revoked=_now())
                self._put_key(revoked)
                return revoked
        raise UnknownKey(f"no key with id {key_id!r}")

    def set_account_state(self, account_id: str, state: str, reason: str = "") -> AccountRecord:
        """Publish an account's enforcement state."""
        if not account_id.strip():
            raise StateError("an account id must not be empty")
        record = AccountRecord(account_id, check_state(state), reason, _now())
        self._put_account(record)
        return record

    def get_account(self, account_id: str) -> AccountRecord:
        """The account's record (``active`` if never set)."""
        return self.snapshot().account(account_id)

    def snapshot(self) -> Snapshot:
        """The whole state, indexed by key hash."""
        return _snapshot(self.list_keys(), self.list_accounts())

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (a no-op for the file backend)."""


class FileStateStore(StateStore):
    """State in one JSON file (the embedded default), rewritten atomically under a lock."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _read(self) -> dict[str, Any]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {"version": 1, "keys": {}, "accounts": {}}
        except OSError as exc:
            raise StateError(f"cannot read the state file {self.path}: {exc}") from exc
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise StateError(f"the state file {self.path} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict) or data.get("version") != 1:
            raise StateError(f"the state file {self.path} is not a distillguard state file")
        return data

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = open(self.path.with_name(self.path.name + ".lock"), "a+b")  # noqa: SIM115
        except OSError as exc:
            raise StateError(f"cannot lock the state file {self.path}: {exc}") from exc
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self._read()
            yield data
            self._write(data)

    def _write(self, data: dict[str, Any]) -> None:
        payload = orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise StateError(f"cannot write the state file {self.path}: {exc}") from exc

    def list_keys(self, account_id: str | None = None) -> list[KeyRecord]:
        keys = [KeyRecord(**k) for k in self._read()["keys"].values()]
        return [k for k in keys if account_id is None or k.account_id == account_id]

    def list_accounts(self) -> list[AccountRecord]:
        return [AccountRecord(**a) for a in self._read()["accounts"].values()]

    def snapshot(self) -> Snapshot:
        data = self._read()
        return _snapshot(
            [KeyRecord(**k) for k in data["keys"].values()],
            [AccountRecord(**a) for a in data["accounts"].values()],
        )

    def _put_key(self, record: KeyRecord) -> None:
        with self._locked() as data:
            data["keys"][record.key_id] = asdict(record)

    def _put_account(self, record: AccountRecord) -> None:
        with self._locked() as data:
            data["accounts"][record.account_id] = asdict(record)

    def version(self) -> str:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return "absent"
        return f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}"


class RedisStateStore(StateStore):
    """State in Redis under ``prefix``: hashes ``keys`` and ``accounts``, counter ``version``."""

    def __init__(self, url: str, prefix: str = "distillguard:") -> None:
        import redis

        self.prefix = prefix
        self._redis = redis.Redis.from_url(url)
        try:
            self._redis.ping()
        except redis.RedisError as exc:
            self._redis.close()
            raise StateError(f"cannot reach Redis at {url}: {exc}") from exc

    def _hgetall(self, name: str) -> list[dict[str, Any]]:
        raw = cast(dict[bytes, bytes], self._redis.hgetall(self.prefix + name))
        return [orjson.loads(v) for v in raw.values()]

    def _publish(self, pipe: Any) -> None:
        pipe.incr(self.prefix + "version")
        pipe.publish(self.prefix + "state", b"changed")
        pipe.execute()

    def list_keys(self, account_id: str | None = None) -> list[KeyRecord]:
        keys = [KeyRecord(**k) for k in self._hgetall("keys")]
        return [k for k in keys if account_id is None or k.account_id == account_id]

    def list_accounts(self) -> list[AccountRecord]:
        return [AccountRecord(**a) for a in self._hgetall("accounts")]

    def _put_key(self, record: KeyRecord) -> None:
        pipe = self._redis.pipeline()
        pipe.hset(self.prefix + "keys", record.key_id, orjson.dumps(asdict(record)))
        self._publish(pipe)

    def _put_account(self, record: AccountRecord) -> None:
        pipe = self._redis.pipeline()
        pipe.hset(self.prefix + "accounts", record.account_id, orjson.dumps(asdict(record)))
        self._publish(pipe)

    def version(self) -> str:
        value = self._redis.get(self.prefix + "version")
        return "0" if value is None else str(cast(bytes, value).decode())

    def close(self) -> None:
        self._redis.close()


def open_store(
    path: Path, redis_url: str | None = None, prefix: str = "distillguard:"
) -> StateStore:
    """The Redis store when ``redis_url`` is given, else the file store at ``path``."""
    if redis_url:
        return RedisStateStore(redis_url, prefix)
    return FileStateStore(path)

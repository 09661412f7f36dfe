"""Published state (file and Redis backends) and the ``keys``/``accounts`` commands."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from distillguard.cli import main
from guard.exceptions import StateError, UnknownAccountState, UnknownKey
from guard.state import FileStateStore, RedisStateStore, StateStore, hash_key

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["file", "redis"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    if request.param == "file":
        yield FileStateStore(tmp_path / "state.json")
        return
    prefix = f"dgtest:{uuid.uuid4().hex}:"
    store = RedisStateStore(REDIS_URL, prefix)
    yield store
    client = redis.Redis.from_url(REDIS_URL)
    for name in client.scan_iter(prefix + "*"):
        client.delete(name)
    client.close()
    store.close()


def test_keys_are_stored_as_hashes_only(any_store: StateStore) -> None:
    before = any_store.version()
    key_id, secret = any_store.create_key("acct-1")
    assert any_store.version() != before
    snap = any_store.snapshot()
    record = snap.keys_by_hash[hash_key(secret)]
    assert (record.key_id, record.account_id, record.revoked) == (key_id, "acct-1", None)
    assert all(secret not in str(k) for k in any_store.list_keys())


def test_revoke_and_account_states(any_store: StateStore) -> None:
    key_id, _ = any_store.create_key("acct-1")
    any_store.create_key("acct-2")
    assert any_store.revoke_key(key_id).revoked
    assert [k.key_id for k in any_store.list_keys("acct-1")] == [key_id]
    with pytest.raises(UnknownKey):
        any_store.revoke_key("key_nope")
    assert any_store.get_account("acct-1").state == "active"
    any_store.set_account_state("acct-1", "restricted", "template fishing for reasoning")
    account = any_store.get_account("acct-1")
    assert (account.state, account.reason) == ("restricted", "template fishing for reasoning")
    with pytest.raises(UnknownAccountState, match="active, throttled, restricted, suspended"):
        any_store.set_account_state("acct-1", "banned")


def test_a_corrupt_state_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{oops")
    with pytest.raises(StateError, match="not valid JSON"):
        FileStateStore(path).snapshot()


def test_unreachable_redis_is_reported() -> None:
    with pytest.raises(StateError, match="cannot reach Redis"):
        RedisStateStore("redis://127.0.0.1:1/0")


def test_keys_and_accounts_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the defaults: ./distillguard-state.json
    main(["keys", "create", "--account", "acct-9"])
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    assert secret.startswith("dg-")
    record = (
        FileStateStore(tmp_path / "distillguard-state.json")
        .snapshot()
        .keys_by_hash[hash_key(secret)]
    )
    main(["keys", "list"])
    listed = capsys.readouterr().out
    assert record.key_id in listed and "acct-9" in listed and secret not in listed
    main(["keys", "revoke", record.key_id])
    assert "revoked" in capsys.readouterr().out
    main(["accounts", "set-state", "acct-9", "suspended", "--reason", "ring 7"])
    main(["accounts", "list"])
    assert "acct-9\tsuspended" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["accounts", "set-state", "acct-9", "banned"])
    assert exit_.value.code == 2
    assert "unknown account state 'banned'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["keys", "revoke", "key_nope"])
    assert exit_.value.code == 1


def test_state_path_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GUARD_STATE", str(tmp_path / "elsewhere.json"))
    main(["keys", "create", "--account", "a"])
    capsys.readouterr()
    assert len(FileStateStore(tmp_path / "elsewhere.json").list_keys()) == 1

"""Commands contributed by this package to the ``distillguard`` CLI: ``gateway``,
``mock-upstream``, ``keys create|revoke|list`` and ``accounts set-state|list``."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from guard.exceptions import ConfigError
from guard.settings import DEFAULT_SPOOL, DEFAULT_STATE

StateOption = Annotated[
    Path,
    typer.Option("--state", envvar="GUARD_STATE", dir_okay=False, help="The published-state file."),
]
RedisOption = Annotated[
    str | None,
    typer.Option(
        "--redis", envvar="GUARD_REDIS", help="Redis URL: state and limits live there instead."
    ),
]

keys_app = typer.Typer(help="Create, revoke and list API keys (only their hashes are stored).")
accounts_app = typer.Typer(help="Publish account enforcement states to every gateway.")


def _store(state: Path, redis: str | None) -> Any:
    from guard.state import open_store

    return open_store(state, redis, os.environ.get("GUARD_REDIS_PREFIX", "distillguard:"))


@keys_app.command("create")
def keys_create(
    account: Annotated[str, typer.Option("--account", help="The account the key belongs to.")],
    state: StateOption = DEFAULT_STATE,
    redis: RedisOption = None,
) -> None:
    """Create a key for an account; the key is printed once, as the last line."""
    store = _store(state, redis)
    try:
        key_id, secret = store.create_key(account)
    finally:
        store.close()
    typer.echo(f"created {key_id} for account {account} (store the key now: it is not kept)")
    typer.echo(secret)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (key_...), as `keys list` shows.")],
    state: StateOption = DEFAULT_STATE,
    redis: RedisOption = None,
) -> None:
    """Revoke a key: every gateway refuses it (401) within two seconds."""
    store = _store(state, redis)
    try:
        record = store.revoke_key(key_id)
    finally:
        store.close()
    typer.echo(f"revoked {record.key_id} (account {record.account_id}) at {record.revoked}")


@keys_app.command("list")
def keys_list(
    account: Annotated[str | None, typer.Option("--account", help="Only this account.")] = None,
    state: StateOption = DEFAULT_STATE,
    redis: RedisOption = None,
) -> None:
    """List keys: id, account, created, revoked (never the secret)."""
    store = _store(state, redis)
    try:
        keys = sorted(store.list_keys(account), key=lambda k: (k.account_id, k.created))
    finally:
        store.close()
    for k in keys:
        typer.echo(f"{k.key_id}\t{k.account_id}\t{k.created}\t{k.revoked or 'active'}")


@accounts_app.command("set-state")
def accounts_set_state(
    account_id: Annotated[str, typer.Argument(help="The account.")],
    new_state: Annotated[
        str, typer.Argument(metavar="STATE", help="active, throttled, restricted or suspended.")
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why (shown when suspended).")] = "",
    state: StateOption = DEFAULT_STATE,
    redis: RedisOption = None,
) -> None:
    """Set an account's state; every gateway applies it within two seconds."""
    store = _store(state, redis)
    try:
        record = store.set_account_state(account_id, new_state, reason)
    finally:
        store.close()
    typer.echo(f"account {record.account_id} is now {record.state}")


@accounts_app.command("list")
def accounts_list(state: StateOption = DEFAULT_STATE, redis: RedisOption = None) -> None:
    """List accounts whose state was set, with the reason."""
    store = _store(state, redis)
    try:
        accounts = sorted(store.list_accounts(), key=lambda a: a.account_id)
    finally:
        store.close()
    for a in accounts:
        typer.echo(f"{a.account_id}\t{a.state}\t{a.updated}\t{a.reason}")


def _server_options(workers: int) -> dict[str, Any]:
    # proxy_headers off: uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1 and ::1;
    # the gateway believes only --trusted-proxy peers
    options: dict[str, Any] = {
        "workers": workers, "access_log": False, "log_level": "warning", "proxy_headers": False,
    }  # fmt: skip
    try:
        import httptools  # noqa: F401
        import uvloop  # noqa: F401

        options.update(loop="uvloop", http="httptools")
    except ImportError:  # pragma: no cover - both ship with uvicorn[standard]
        pass
    return options


def gateway(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    upstream: Annotated[
        str | None,
        typer.Option(help="Base URL of the model API [default: http://127.0.0.1:9000]."),
    ] = None,
    upstream_protocol: Annotated[
        str | None, typer.Option(help="openai or anthropic [default: openai].")
    ] = None,
    upstream_key_env: Annotated[
        str | None,
        typer.Option(help="Variable holding the upstream key [default: UPSTREAM_API_KEY]."),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    spool: Annotated[
        Path | None, typer.Option(help=f"Call-log spool folder [default: {DEFAULT_SPOOL}].")
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option(
            envvar="GUARD_STATE", help=f"Published-state file [default: {DEFAULT_STATE}]."
        ),
    ] = None,
    redis: RedisOption = None,
    durability: Annotated[
        str | None,
        typer.Option(
            help="durable (answer after fsync, the default) or relaxed (answer first: faster, a "
            "crash can lose the last records)."
        ),
    ] = None,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            "--trusted-proxy",
            help="IP or CIDR of a reverse proxy whose X-Forwarded-For names the client "
            "(repeatable; GUARD_TRUSTED_PROXIES, comma-separated) [default: none].",
        ),
    ] = None,
) -> None:
    """Run the gateway: auth, enforcement, rate limits, proxying, durable call log."""
    import uvicorn
    from pydantic import ValidationError

    from guard.settings import GuardSettings

    given = {
        "upstream": upstream,
        "upstream_protocol": upstream_protocol,
        "upstream_key_env": upstream_key_env,
        "spool": spool,
        "state": state,
        "redis": redis,
        "durability": durability,
        "trusted_proxies": ",".join(trusted_proxy) if trusted_proxy else None,
    }
    for name, value in given.items():
        if value is not None:
            os.environ[f"GUARD_{name.upper()}"] = str(value)
    try:
        settings = GuardSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise ConfigError(f"invalid gateway settings: {problems}") from exc
    if not settings.upstream.startswith(("http://", "https://")):
        raise ConfigError(
            f"--upstream must be an http:// or https:// URL, not {settings.upstream!r}"
        )
    metrics_dir = tempfile.mkdtemp(prefix="distillguard-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    where = f"redis {settings.redis}" if settings.redis else str(settings.state)
    print(
        f"distillguard gateway on http://{host}:{port} -> {settings.upstream} "
        f"({settings.upstream_protocol}); spool {settings.spool} ({settings.durability}); "
        f"state {where}; {workers} worker(s)",
        file=sys.stderr,
        flush=True,
    )
    try:
        uvicorn.run("guard.asgi:app", host=host, port=port, **_server_options(workers))
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def mock_upstream(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 9000,
    latency_ms: Annotated[float, typer.Option(min=0, help="Wait before the first byte.")] = 50.0,
    tokens_per_second: Annotated[
        float, typer.Option(min=0, help="Streaming speed; 0 sends every token at once.")
    ] = 0.0,
    api_key_env: Annotated[
        str | None, typer.Option(help="Require the key held in this variable.")
    ] = None,
) -> None:
    """Serve a mock model API (OpenAI and Anthropic protocols) with deterministic answers."""
    import uvicorn

    from guard.mock import MockSettings, MockUpstream

    key = None
    if api_key_env:
        key = os.environ.get(api_key_env)
        if not key:
            raise ConfigError(f"--api-key-env names {api_key_env}, which is not set")
    app = MockUpstream(MockSettings(latency_ms, tokens_per_second, key))
    print(f"mock upstream on http://{host}:{port} ({latency_ms} ms)", file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, **_server_options(1))


def register(app: typer.Typer) -> None:
    """Add this package's commands to ``app``."""
    app.command("gateway")(gateway)
    app.command("mock-upstream")(mock_upstream)
    app.add_typer(keys_app, name="keys")
    app.add_typer(accounts_app, name="accounts")

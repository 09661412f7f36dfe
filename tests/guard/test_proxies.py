"""The client address behind trusted proxies: ``GUARD_TRUSTED_PROXIES`` / ``--trusted-proxy``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from distillguard.cli import main
from guard.app import CALL_ID_HEADER
from guard.proxies import TrustedProxies
from guard.settings import GuardSettings
from tests.guard.conftest import Factory, chat, journal_records

pytestmark = pytest.mark.anyio


def client_ip(proxies: str, peer: str, *forwarded: str) -> str:
    trusted = TrustedProxies.parse(proxies)
    assert trusted is not None
    return trusted.client(peer, [(b"x-forwarded-for", f.encode()) for f in forwarded])


def test_the_client_is_the_right_most_address_that_is_not_a_trusted_proxy() -> None:
    # the client wrote "6.6.6.6" itself; the edge proxy 10.0.0.2 appended what it saw
    chain = "6.6.6.6, 203.0.113.7, 10.0.0.2"
    assert client_ip("10.0.0.0/8", "10.0.0.3", chain) == "203.0.113.7"
    assert client_ip("10.0.0.0/8", "10.0.0.3", "6.6.6.6, 203.0.113.7", "10.0.0.2") == "203.0.113.7"
    assert client_ip("10.0.0.0/8", "10.0.0.3", "203.0.113.7:5123") == "203.0.113.7"
    assert client_ip("10.0.0.0/8", "10.0.0.3") == "10.0.0.3"  # no header: the proxy itself
    assert client_ip("10.0.0.0/8", "10.0.0.3", "10.0.0.9, 10.0.0.2") == "10.0.0.9"  # all proxies
    # an entry that is no address: believe no further than the last trusted hop
    assert client_ip("10.0.0.0/8", "10.0.0.3", "203.0.113.7, unknown") == "10.0.0.3"


def test_an_untrusted_peer_cannot_spoof_its_address() -> None:
    assert client_ip("10.0.0.0/8", "198.51.100.9", "1.2.3.4") == "198.51.100.9"
    assert client_ip("10.0.0.1", "10.0.0.2", "1.2.3.4") == "10.0.0.2"  # an address, not a net


def test_ipv6_proxies_and_clients() -> None:
    proxies = "2001:db8::/32, ::1"
    assert client_ip(proxies, "::1", "2A00:1450::1, 2001:db8::7") == "2a00:1450::1"
    assert client_ip(proxies, "2001:db8::1", "[2a00:1450::1]:443") == "2a00:1450::1"
    assert client_ip(proxies, "2a00:1450::2", "2a00:1450::1") == "2a00:1450::2"


def test_no_trusted_proxies_by_default() -> None:
    assert TrustedProxies.parse(GuardSettings().trusted_proxies) is None


@pytest.mark.parametrize("bad", ["10.0.0/8", "proxy.internal", "10.0.0.1/33", "::g"])
def test_an_invalid_entry_is_refused_by_name(bad: str) -> None:
    with pytest.raises(ValidationError, match=f"'{bad}' is not an IP address or a CIDR network"):
        GuardSettings(trusted_proxies=f"127.0.0.1, {bad}")


async def test_the_gateway_logs_the_client_behind_a_trusted_proxy(
    make_gateway: Factory, key: str, settings: GuardSettings
) -> None:
    app, _ = await make_gateway(trusted_proxies="10.0.0.0/8,2001:db8::/32")
    headers = {"authorization": f"Bearer {key}", "x-forwarded-for": "6.6.6.6, 203.0.113.7"}
    logged = {}
    for peer in ("10.0.0.3", "198.51.100.9", "2001:db8::5"):
        transport = httpx.ASGITransport(app=app, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            r = await client.post("/v1/chat/completions", json=chat(), headers=headers)
        assert r.status_code == 200
        logged[peer] = r.headers[CALL_ID_HEADER.decode()]
    by_id = {rec["call_id"]: rec["client_ip"] for rec in journal_records(settings.spool)}
    assert {peer: by_id[call_id] for peer, call_id in logged.items()} == {
        "10.0.0.3": "203.0.113.7",
        "198.51.100.9": "198.51.100.9",  # not a proxy: its header is the client's own claim
        "2001:db8::5": "203.0.113.7",
    }


def test_gateway_command_refuses_an_invalid_trusted_proxy(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GUARD_TRUSTED_PROXIES", "")  # restored after the command sets it
    with pytest.raises(SystemExit) as exit_:
        main(["gateway", "--trusted-proxy", "10.0.0.1", "--trusted-proxy", "10.0.0/8"])
    assert exit_.value.code == 2
    assert "'10.0.0/8' is not an IP address or a CIDR network" in capsys.readouterr().err


def test_gateway_command_passes_trusted_proxies_and_turns_off_uvicorns_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import uvicorn

    for name in ("GUARD_TRUSTED_PROXIES", "GUARD_SPOOL", "PROMETHEUS_MULTIPROC_DIR"):
        monkeypatch.setenv(name, "")  # restored after the command sets them
    ran: dict[str, Any] = {}

    def run(app: str, **options: Any) -> None:
        ran.update(options, settings=GuardSettings())

    monkeypatch.setattr(uvicorn, "run", run)
    main(["gateway", "--spool", str(tmp_path), "--trusted-proxy", "10.0.0.0/8",
          "--trusted-proxy", "::1"])  # fmt: skip
    assert ran["settings"].trusted_proxies == "10.0.0.0/8,::1"
    assert ran["proxy_headers"] is False  # uvicorn would believe 127.0.0.1's header by itself

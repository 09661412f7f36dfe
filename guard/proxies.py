"""The client's address behind trusted reverse proxies (``GUARD_TRUSTED_PROXIES``).

A proxy appends the address it received a request from to ``X-Forwarded-For``, so the header's
entries are, right to left, what each hop saw. When the socket peer is a trusted proxy, the client
is the right-most entry that is not itself a trusted proxy (as uvicorn's ``ProxyHeadersMiddleware``
and nginx's ``real_ip_recursive``); what lies left of it was written by the client: not believed.
A peer that is not a trusted proxy is the client, whatever its header says.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """IP addresses and CIDR networks; a ValueError names the entry that is neither."""
    networks = []
    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or a CIDR network") from None
    return tuple(networks)


def _host(entry: str) -> str:
    """The address of one ``X-Forwarded-For`` entry, without a port (``1.2.3.4:80``,
    ``[2001:db8::1]:80``)."""
    if entry.startswith("["):
        return entry[1 : entry.find("]")] if "]" in entry else entry
    if entry.count(":") == 1:
        return entry.partition(":")[0]
    return entry


class TrustedProxies:
    """The proxies whose ``X-Forwarded-For`` is believed; parsed once, at start-up."""

    def __init__(self, networks: tuple[Network, ...]) -> None:
        self.networks = networks
        self.trusts = lru_cache(maxsize=4096)(self._trusts)

    @classmethod
    def parse(cls, text: str) -> TrustedProxies | None:
        """From the comma-separated setting; None when it names no proxy."""
        networks = parse_networks(text.split(","))
        return cls(networks) if networks else None

    def _trusts(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def client(self, peer: str, headers: Iterable[tuple[bytes, bytes]]) -> str:
        """The client's address for a request from ``peer`` with these (raw ASGI) headers."""
        if not self.trusts(peer):
            return peer
        values = [v for k, v in headers if k == b"x-forwarded-for"]
        if not values:
            return peer
        client = peer
        for entry in reversed(b",".join(values).decode("latin-1").split(",")):
            host = _host(entry.strip())
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                break  # not an address: believe no further than the last trusted hop
            client = str(address)
            if not self.trusts(client):
                break
        return client

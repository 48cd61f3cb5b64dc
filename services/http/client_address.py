"""Who is asking: the client's address, through trusted proxies, and address allow-lists.

Behind nginx every request comes from the proxy's own address (loopback on one machine), so
the address that matters is the one the proxy names in X-Forwarded-For. That header is only
believed from a trusted proxy (HOTLINE_TRUSTED_PROXIES, loopback by default): walking it from
the right, each hop added by a trusted proxy is skipped and the first untrusted address is the
client. A request that came through a proxy is therefore never taken for a loopback one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
LOOPBACK: tuple[Network, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)


def parse_networks(text: str) -> tuple[Network, ...]:
    """Comma-separated addresses or networks ("10.1.2.3, 192.168.0.0/24, ::1") as networks.
    Raises ValueError naming the piece that is neither."""
    found: list[Network] = []
    for piece in text.split(","):
        piece = piece.strip()
        if not piece:
            continue
        try:
            found.append(ipaddress.ip_network(piece, strict=False))
        except ValueError as exc:
            raise ValueError(f"{piece!r} is not an IP address or network") from exc
    return tuple(found)


def _address(text: str | None) -> Address | None:
    if not text:
        return None
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [::1]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # 1.2.3.4:port
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def within(address: object, networks: Iterable[Network]) -> bool:
    return address is not None and any(address in net for net in networks)  # type: ignore[operator]


def client_address(
    remote: str | None, forwarded_for: str | None, trusted: Iterable[Network]
) -> Address | None:
    """The client's address: `remote` unless it is a trusted proxy that says who it forwards
    for. None when the address cannot be read (then nothing is allowed by address)."""
    trusted = tuple(trusted)
    address = _address(remote)
    if address is None or not within(address, trusted) or not forwarded_for:
        return address
    hops = [hop for hop in (h.strip() for h in forwarded_for.split(",")) if hop]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None or not within(address, trusted):
            return address
    return address


def of_request(request: web.Request, trusted: Iterable[Network]) -> Address | None:
    """The client address of an aiohttp request (see `client_address`)."""
    return client_address(request.remote, request.headers.get("X-Forwarded-For"), trusted)

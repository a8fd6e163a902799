"""Who is calling, by network address: CIDR lists, key allowlists and trusted proxies.

A key may carry an allowlist of CIDRs (IPv4 and IPv6). The client address is
the socket peer, unless the peer is one of the operator's ``trusted_proxies``:
then it is read from ``X-Forwarded-For``, walking from the right (the entry the
nearest proxy added) past every trusted hop to the first address that is not
trusted. Entries to the left of that one were written by the client itself and
prove nothing, so they are never used. With no trusted proxies (the default)
``X-Forwarded-For`` is ignored entirely.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from functools import lru_cache

__all__ = [
    "MAX_CIDRS",
    "Address",
    "Allowlist",
    "ClientAddressResolver",
    "Network",
    "allows",
    "normalize_cidrs",
    "parse_address",
    "parse_cidr",
]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# An allowlist is a handful of office and CI ranges; a cap keeps the per-request
# check a short loop and the key row small.
MAX_CIDRS = 100
# The longest address text worth reading ("[" IPv6 with zone "]:port", padded);
# anything longer is not an address.
MAX_ADDRESS_TEXT = 80
# X-Forwarded-For chains longer than this are walked every time, not remembered.
MAX_CACHED_CHAIN = 512


def parse_cidr(value: str) -> Network:
    """One CIDR (``10.0.0.0/8``, ``2001:db8::/32``) or a single address (``/32``, ``/128``).

    Host bits must be clear: ``10.0.0.1/8`` is refused rather than silently widened,
    because the writer more likely meant ``10.0.0.1/32`` than all of ``10.0.0.0/8``.
    """
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise ValueError(f"'{value}' is not a CIDR")
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError:
        pass
    try:
        wide = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(
            f"'{value}' is not a CIDR (use e.g. 203.0.113.0/24 or 2001:db8::/32)"
        ) from None
    raise ValueError(f"'{value}' has host bits set; did you mean {wide}?")


def normalize_cidrs(values: Iterable[str]) -> list[str]:
    """Validated, canonical, de-duplicated CIDR strings in the order given.

    Raises ``ValueError`` naming the first bad entry.
    """
    seen: list[str] = []
    for value in values:
        canonical = str(parse_cidr(value))
        if canonical not in seen:
            seen.append(canonical)
    if len(seen) > MAX_CIDRS:
        raise ValueError(f"at most {MAX_CIDRS} CIDRs per key")
    return seen


class Allowlist:
    """A key's networks, matched with integer masks (the ``ipaddress`` operators
    cost about ten times as much, and this runs on every request of such a key)."""

    __slots__ = ("_v4", "_v6", "networks")

    def __init__(self, networks: Iterable[Network]) -> None:
        self.networks: tuple[Network, ...] = tuple(networks)
        self._v4 = tuple(
            (int(n.network_address), int(n.netmask)) for n in self.networks if n.version == 4
        )
        self._v6 = tuple(
            (int(n.network_address), int(n.netmask)) for n in self.networks if n.version == 6
        )

    @classmethod
    @lru_cache(maxsize=1024)
    def from_cidrs(cls, cidrs: tuple[str, ...]) -> Allowlist:
        """From stored CIDR strings; cached, as keys share few distinct lists."""
        return cls(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)

    def allows(self, address: Address | None) -> bool:
        """True when ``address`` lies in one of the networks; an unknown address never does."""
        if address is None:
            return False
        number = int(address)
        pairs = self._v4 if type(address) is ipaddress.IPv4Address else self._v6
        for network, mask in pairs:
            if number & mask == network:
                return True
        return False


def parse_address(value: str | None) -> Address | None:
    """An address as a peer or a proxy reports it, or None when it is not one.

    Accepts ``[2001:db8::1]:443`` and ``203.0.113.7:5000`` (some proxies add the
    port) and reads IPv4-mapped IPv6 (``::ffff:203.0.113.7``) as the IPv4 address,
    so a dual-stack listener matches IPv4 allowlists.
    """
    if not value or len(value) > MAX_ADDRESS_TEXT:
        return None
    return _parse_address(value)


# Cached: the same few clients and proxies call again and again, and parsing is
# the costly part. Only short strings reach it, so the cache stays small.
@lru_cache(maxsize=4096)
def _parse_address(value: str) -> Address | None:
    text = value.strip()
    if text.startswith("["):
        text, closed, _port = text[1:].partition("]")
        if not closed:
            return None
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def allows(networks: Sequence[Network], address: Address | None) -> bool:
    """True when ``address`` lies in one of ``networks``; an unknown address never does."""
    return Allowlist(networks).allows(address)


class ClientAddressResolver:
    """The client address of a request, given the operator's trusted proxies."""

    def __init__(self, trusted_proxies: Iterable[str] = ()) -> None:
        self.trusted = Allowlist(parse_cidr(c) for c in trusted_proxies)
        # Behind a proxy the same (peer, header) pairs repeat for every request of
        # a client; remembering the answer skips the walk. Bounded.
        self._walk = lru_cache(maxsize=4096)(self._walk_uncached)

    def is_trusted_proxy(self, peer: str | None) -> bool:
        """True when the socket peer is one of the operator's trusted proxies."""
        if not self.trusted.networks:
            return False
        return self.trusted.allows(parse_address(peer))

    def resolve(self, peer: str | None, forwarded_for: Sequence[str] = ()) -> Address | None:
        """``peer`` is the socket's remote host; ``forwarded_for`` every
        ``X-Forwarded-For`` header line in order (several lines read as one list)."""
        address = parse_address(peer)
        if address is None or not self.trusted.networks or not self.trusted.allows(address):
            return address
        chain = tuple(forwarded_for)
        if sum(len(line) for line in chain) > MAX_CACHED_CHAIN:
            return self._walk_uncached(address, chain)
        return self._walk(address, chain)

    def _walk_uncached(self, peer: Address, forwarded_for: tuple[str, ...]) -> Address | None:
        nearest = peer
        hops = [hop for line in forwarded_for for hop in line.split(",")]
        for hop in reversed(hops):
            address = parse_address(hop)
            if address is None:
                # A hop we cannot read: the chain is broken here, and nothing to
                # its left can be trusted, so the client is unknown.
                return None
            if not self.trusted.allows(address):
                return address
            nearest = address
        # Every hop was one of our proxies: the left-most is the nearest we know.
        return nearest

"""Addresses the edge must never send to, whatever a message says.

RFC 4475 §3.3.10: an element must never send to a broadcast address found in a Via; the same
holds for multicast and unspecified addresses (SIP multicast, RFC 3261 §18.1.1, is not
supported here). ``classify_destination`` is called on every send, so its verdict is cached per
host string in a small LRU: the address families and ranges cannot change at run time.
"""

from __future__ import annotations

import enum
import functools
import ipaddress

_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")  # RFC 1122 §3.2.1.3: source only
_CLASS_E = ipaddress.IPv4Network("240.0.0.0/4")  # RFC 1112 §4; holds 255.255.255.255 too


class Destination(enum.Enum):
    ALLOWED = "allowed"
    BLOCKED = "blocked"  # broadcast, multicast, unspecified: never a unicast peer
    NOT_LITERAL = "not_literal"  # a host name: resolving it (RFC 3263) is the caller's job


@functools.lru_cache(maxsize=1024)
def classify_destination(host: str) -> Destination:
    """Say whether a datagram or connection may go to ``host`` (an IP literal, no brackets).

    A name is refused rather than resolved: resolving here would block the event loop and
    would let a Via host steer the edge's traffic (RFC 3261 §18.2.2 sends responses to the
    source address, never to a name from the message).
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return Destination.NOT_LITERAL
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped  # ::ffff:255.255.255.255 is still a broadcast
        if mapped is None:
            if address.is_multicast or address.is_unspecified:
                return Destination.BLOCKED
            return Destination.ALLOWED
        address = mapped
    if address.is_multicast or address in _THIS_NETWORK or address in _CLASS_E:
        return Destination.BLOCKED
    return Destination.ALLOWED

"""The send safety belt of sip.transport: which addresses are never sent to (no sockets)."""

from __future__ import annotations

import pytest

from sip.transport.destinations import Destination, classify_destination

BLOCKED = [
    "255.255.255.255",  # limited broadcast: RFC 4475 §3.3.10
    "0.0.0.0",  # unspecified
    "0.1.2.3",  # "this network", RFC 1122 §3.2.1.3
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "240.0.0.1",  # class E, RFC 1112 §4
    "::",  # IPv6 unspecified
    "ff02::1",  # IPv6 multicast
    "ff05::1:3",
    "::ffff:255.255.255.255",  # IPv4-mapped broadcast
    "::ffff:224.0.0.1",
]
ALLOWED = ["127.0.0.1", "192.0.2.10", "10.1.2.3", "223.255.255.255", "::1", "2001:db8::5060"]
NOT_LITERAL = ["sip.example.com", "localhost", "[::1]", "", "256.1.1.1"]


@pytest.mark.parametrize("host", BLOCKED)
def test_broadcast_multicast_and_unspecified_addresses_are_blocked(host: str) -> None:
    assert classify_destination(host) is Destination.BLOCKED


@pytest.mark.parametrize("host", ALLOWED)
def test_unicast_addresses_are_allowed(host: str) -> None:
    assert classify_destination(host) is Destination.ALLOWED


@pytest.mark.parametrize("host", NOT_LITERAL)
def test_names_and_malformed_literals_are_not_sent_to(host: str) -> None:
    assert classify_destination(host) is Destination.NOT_LITERAL

"""Via stamping, response routing and stateless error answers (sip/stateless.py)."""

from __future__ import annotations

import pytest

from sip.errors import SipParseError
from sip.flow import Flow
from sip.headers import Via
from sip.message import Request
from sip.parser import parse_message
from sip.stateless import error_response, stamp_via
from sip.validate import validate_request


def req(via: str, extra: str = "") -> Request:
    message = parse_message(
        (
            "OPTIONS sip:voxedge.test SIP/2.0\r\n"
            f"Via: {via}\r\nVia: SIP/2.0/UDP 127.0.0.9:5062;branch=z9hG4bKlower\r\n"
            "From: <sip:a@voxedge.test>;tag=1\r\nTo: <sip:a@voxedge.test>\r\n"
            f"Call-ID: x\r\nCSeq: 1 OPTIONS\r\n{extra}Content-Length: 0\r\n\r\n"
        ).encode()
    )
    assert isinstance(message, Request)
    return message


def top_via_of(request: Request) -> Via:
    return validate_request(request).vias[0]


UDP = Flow("udp", ("127.0.0.1", 40000), ("127.0.0.1", 8060))


def test_received_is_added_when_sent_by_differs_from_source() -> None:
    request = req("SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bK1")
    stamp_via(request, top_via_of(request), UDP)
    assert request.headers.values("Via")[0] == (
        "SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bK1;received=127.0.0.1"
    )
    assert len(request.headers.values("Via")) == 2  # lower Vias untouched


def test_rport_is_filled_and_responses_go_to_source_port() -> None:
    request = req("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1;rport")
    flow = stamp_via(request, top_via_of(request), UDP)
    assert "rport=40000" in request.headers.values("Via")[0]
    assert flow.remote == ("127.0.0.1", 40000)


def test_without_rport_udp_responses_go_to_source_ip_and_via_port() -> None:
    """RFC 3261 §18.2.2: the Via port, but never the Via host (no DNS, no spraying)."""
    request = req("SIP/2.0/UDP host.example.com:5070;branch=z9hG4bK1")
    flow = stamp_via(request, top_via_of(request), UDP)
    assert flow.remote == ("127.0.0.1", 5070)


def test_without_rport_or_port_udp_responses_go_to_5060() -> None:
    request = req("SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1")
    assert stamp_via(request, top_via_of(request), UDP).remote == ("127.0.0.1", 5060)


def test_stream_responses_use_the_same_connection() -> None:
    tcp = Flow("tcp", ("127.0.0.1", 41000), ("127.0.0.1", 8060), conn_id=7)
    request = req("SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK1")
    assert stamp_via(request, top_via_of(request), tcp) is tcp


def test_error_response_copies_fields_and_names_the_fault() -> None:
    data = req("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1").to_bytes()
    response = error_response(data, SipParseError("Malformed Max-Forwards"))
    assert response is not None
    assert (response.status, response.reason) == (400, "Malformed Max-Forwards")
    assert response.headers.get("Call-ID") == "x"
    assert len(response.headers.values("Via")) == 2


@pytest.mark.parametrize(
    "data",
    [
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1\r\n\r\n",  # a response
        b"ACK sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1\r\n\r\n",
        b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nCall-ID: x\r\n\r\n",  # nothing to copy
        b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: garbage\r\nFrom: <sip:a@b>\r\nTo: <sip:a@b>\r\n"
        b"Call-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n",  # no Via to answer to
        b"\x00\x01\x02 binary",
    ],
)
def test_unanswerable_messages_get_no_response(data: bytes) -> None:
    assert error_response(data, SipParseError("x")) is None


def test_error_reason_is_one_printable_line() -> None:
    data = req("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1").to_bytes()
    response = error_response(data, SipParseError("bad\r\nInjected: yes"))
    assert response is not None and response.reason == "badInjected: yes"

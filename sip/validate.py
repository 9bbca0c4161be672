"""Semantic checks that every SIP element applies after parsing (RFC 3261 §8.1.1, §8.2).

The parser accepts anything that is well-formed; these functions decide whether the fields
make a usable message and return their typed views so nobody parses them twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sip.errors import SipParseError
from sip.headers import NameAddr, Via, parse_cseq, parse_name_addr, parse_uint, parse_via
from sip.message import Request, Response, header_key
from sip.uri import AbsoluteUri, Uri, parse_uri

# RFC 3261 §8.1.1: the header fields every request carries (Max-Forwards is tolerated absent
# for RFC 2543 peers, RFC 4475 §3.4.1).
_MANDATORY = ("Via", "From", "To", "Call-ID", "CSeq")
# RFC 3261 §7.3.1: fields that are not lists may appear once only (RFC 4475 §3.3.8).
_SINGLE = ("From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Type", "Expires")
MAX_EXPIRES = 2**32 - 1
_MANDATORY_KEYS = tuple((name, header_key(name)) for name in _MANDATORY)
_SINGLE_KEYS = tuple((name, header_key(name)) for name in _SINGLE)
_SURVEYED = frozenset(key for _, key in _MANDATORY_KEYS + _SINGLE_KEYS)
_SPACE_RE = re.compile(r"\s")


@dataclass(slots=True)
class MessageInfo:
    """Typed views of the fields that identify a message's transaction and dialog."""

    vias: list[Via]
    from_: NameAddr
    to: NameAddr
    call_id: str
    cseq: int
    cseq_method: str


@dataclass(slots=True)
class RequestInfo(MessageInfo):
    uri: Uri
    max_forwards: int | None
    expires: int | None


def _common(headers_owner: Request | Response) -> MessageInfo:
    headers = headers_owner.headers
    first, repeated = headers.survey(_SURVEYED)
    for name, key in _MANDATORY_KEYS:
        if key not in first:
            raise SipParseError(f"Missing {name} header")
    for name, key in _SINGLE_KEYS:
        if key in repeated:
            raise SipParseError(f"Multiple {name} headers")
    vias = [parse_via(v) for v in headers.values("Via")]
    from_ = parse_name_addr(first["from"], "From")
    to = parse_name_addr(first["to"], "To")
    call_id = first["call-id"].strip()
    # callid = word ["@" word]; word admits almost every visible character (RFC 3261 §25.1).
    if not call_id or _SPACE_RE.search(call_id):
        raise SipParseError("Malformed Call-ID")
    cseq, cseq_method = parse_cseq(first["cseq"])
    return MessageInfo(vias, from_, to, call_id, cseq, cseq_method)


def validate_request(request: Request) -> RequestInfo:
    """Check a parsed request; ``SipParseError.status`` is the response code to send."""
    if request.version != "SIP/2.0":
        raise SipParseError("Version Not Supported", 505)  # RFC 3261 §8.2.1 / RFC 4475 §3.1.2.16
    try:
        uri = parse_uri(request.uri)
    except SipParseError as exc:
        raise SipParseError("Malformed Request-URI") from exc
    info = _common(request)
    if info.cseq_method != request.method:
        raise SipParseError("CSeq method mismatch")  # RFC 4475 §3.1.2.17
    headers = request.headers
    mf = headers.get("Max-Forwards")
    max_forwards = parse_uint(mf, "Max-Forwards", 255) if mf is not None else None
    ex = headers.get("Expires")
    expires = parse_uint(ex, "Expires", MAX_EXPIRES) if ex is not None else None
    if isinstance(uri, AbsoluteUri):
        # RFC 3261 §8.2.2.1: a scheme we do not understand is refused with 416.
        raise SipParseError("Unsupported URI Scheme", 416)
    return RequestInfo(
        info.vias,
        info.from_,
        info.to,
        info.call_id,
        info.cseq,
        info.cseq_method,
        uri,
        max_forwards,
        expires,
    )


def validate_response(response: Response) -> MessageInfo:
    """Check a parsed response; a malformed one is dropped (there is nobody to tell)."""
    if response.version != "SIP/2.0":
        raise SipParseError("Version Not Supported", 505)
    return _common(response)

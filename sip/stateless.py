"""Stateless pieces a server needs before (or instead of) a transaction.

- ``stamp_via``: record where a request really came from in its top Via and say where the
  responses go (RFC 3261 §18.2.1-2, RFC 3581 §4).
- ``error_response``: answer a message the parser or validator refused, when the fields a
  response must copy can still be read (RFC 3261 §8.2.6, §16.3 "bad request" answers).
"""

from __future__ import annotations

from dataclasses import replace

from sip.errors import SipParseError
from sip.flow import Flow
from sip.headers import Via, parse_via
from sip.message import Request, Response, header_key, response_to
from sip.parser import TOKEN_RE, parse_head

# The fields a response copies (RFC 3261 §8.2.6.2).
_COPIED = frozenset(("via", "from", "to", "call-id", "cseq"))
_DEFAULT_PORT = {"tls": 5061, "wss": 443, "ws": 80}


def stamp_via(request: Request, top: Via, flow: Flow) -> Flow:
    """Add ``received``/``rport`` to the top Via and return the flow responses must use.

    RFC 3261 §18.2.1: ``received`` when the sent-by host is not the source address; RFC 3581
    §4: a valueless ``rport`` gets the source port, and responses then go to the source IP and
    port. Without rport, an unreliable response goes to the source IP and the Via port
    (§18.2.2) — never to the sent-by host, so the edge never resolves or sprays a Via host.
    A stream response goes back over the connection it came on.
    """
    source_ip, source_port = flow.remote
    params = top.params
    changed = False
    if top.host.strip("[]") != source_ip:
        params["received"] = source_ip
        changed = True
    if "rport" in params and params["rport"] is None:
        params["rport"] = str(source_port)
        changed = True
    if changed:
        vias = request.headers.values("Via")
        vias[0] = str(top)
        request.headers.replace_all("Via", vias)
    if flow.reliable or "rport" in params:
        return flow
    port = top.port or _DEFAULT_PORT.get(flow.transport, 5060)
    if port == source_port:
        return flow
    return replace(flow, remote=(source_ip, port))


def error_response(data: bytes, error: SipParseError) -> Response | None:
    """A response with ``error``'s status and reason, or None if no answer can be built.

    Only the start line and the fields a response copies are re-read, so a fault elsewhere in
    the header does not prevent the answer. Responses and ACKs are never answered (§17.1.1.3,
    RFC 4475 §3.1.2.19), nor is anything whose Via cannot be read.
    """
    end = data.find(b"\r\n\r\n")
    head = data[:end] if end >= 0 else data
    lines = head.decode("utf-8", "surrogateescape").split("\r\n")
    # The Request-URI is not copied into a response, so a request line that failed only for
    # its URI or spacing (RFC 4475 §3.1.2.7-10) can still be answered: keep just its method.
    method = lines[0].split(" ", 1)[0]
    if lines[0].upper().startswith("SIP/") or not TOKEN_RE.fullmatch(method):
        return None
    kept = [f"{method} sip:invalid SIP/2.0"]
    for line in lines[1:]:
        name, colon, _ = line.partition(":")
        if colon and header_key(name.strip()) in _COPIED:
            kept.append(line)
    try:
        request = parse_head("\r\n".join(kept).encode("utf-8", "surrogateescape"))
        if not isinstance(request, Request) or request.method == "ACK":
            return None
        headers = request.headers
        # With duplicates (RFC 4475 §3.3.8) the first of each is copied.
        if any(name not in headers for name in ("From", "To", "Call-ID", "CSeq")):
            return None
        vias = headers.values("Via")
        if not vias:
            return None
        for via in vias:
            parse_via(via)
    except SipParseError:
        return None
    # The reason phrase is ours; keep it one line of printable text.
    reason = "".join(c for c in error.reason if c.isprintable())[:100] or "Bad Request"
    return response_to(request, error.status, reason)

"""How requests and responses find their transaction (RFC 3261 §17.1.3, §17.2.3).

Keys are plain tuples, hashed once per message:

- server, RFC 3261 branch (magic cookie): ``(branch, sent-by host, sent-by port, method)``,
  with ACK and CANCEL's INVITE looked up under ``method = "INVITE"`` (§17.2.3, §9.2);
- server, RFC 2543 peer (no cookie): ``("2543", Request-URI, To tag, From tag, Call-ID,
  CSeq number, method, top Via)``; its ACK under ``("2543-ack", ..., To tag of the response
  sent, ...)`` (§17.2.3, second half);
- client: ``(branch, CSeq method)`` (§17.1.3).

Nothing here raises on a malformed field: an unreadable Via or tag just means "no key".
"""

from __future__ import annotations

from dataclasses import dataclass

from sip.errors import SipParseError
from sip.headers import BRANCH_COOKIE, Via, parse_cseq, parse_name_addr, parse_via
from sip.message import Headers, Request, Response, split_list
from sip.validate import MessageInfo

Key = tuple[str | int | None, ...]

# Via parameters a receiving server adds itself (RFC 3261 §18.2.1, RFC 3581 §4): they do not
# identify the request, and a retransmission may be stamped before it is matched.
_STAMPED_PARAMS = frozenset(("received", "rport"))


def top_via(headers: Headers) -> Via | None:
    """The first Via value, parsed, or None when absent or malformed."""
    value = headers.get("Via")
    if value is None:
        return None
    if "," in value:
        value = split_list(value)[0]
    try:
        return parse_via(value)
    except SipParseError:
        return None


def message_top_via(message: Request | Response, info: MessageInfo | None) -> Via | None:
    """The top Via from the validator's ``info`` when given, else parsed from the message."""
    if info is not None:
        return info.vias[0] if info.vias else None
    return top_via(message.headers)


def cookie_branch(via: Via) -> str | None:
    """The branch if it is an RFC 3261 one: the magic cookie and an identifier after it.

    A bare cookie identifies nothing (RFC 4475 §3.2.1), so it falls back to RFC 2543 matching.
    """
    branch = via.params.get("branch")
    if branch is not None and len(branch) > len(BRANCH_COOKIE) and branch.startswith(BRANCH_COOKIE):
        return branch
    return None


def server_key(via: Via, branch: str, method: str) -> Key:
    """§17.2.3: branch, sent-by and method (ACK and CANCEL look up ``"INVITE"``)."""
    return (branch, via.host.lower(), via.port, method)


def client_key(branch: str, method: str) -> Key:
    """§17.1.3: the top Via branch and the CSeq method."""
    return (branch, method)


def response_client_key(response: Response, info: MessageInfo | None) -> Key | None:
    """The client key a response names, or None if its Via or CSeq cannot be read."""
    via = message_top_via(response, info)
    if info is not None:
        method: str | None = info.cseq_method
    else:
        cseq = response.headers.get("CSeq")
        try:
            method = parse_cseq(cseq)[1] if cseq is not None else None
        except SipParseError:
            method = None
    if via is None or method is None:
        return None
    # No branch: readable, but matches no client transaction of ours (all carry one).
    return (via.params.get("branch") or "", method)


@dataclass(frozen=True, slots=True)
class LegacyIdentity:
    """The fields an RFC 2543 request is matched on (§17.2.3), read once."""

    uri: str
    to_tag: str
    from_tag: str
    call_id: str
    cseq: int
    via: str

    def request_key(self, method: str) -> Key:
        return (
            "2543",
            self.uri,
            self.to_tag,
            self.from_tag,
            self.call_id,
            self.cseq,
            method,
            self.via,
        )

    def ack_key(self, to_tag: str) -> Key:
        """An ACK matches by the To tag of the response the server sent (§17.2.3)."""
        return ("2543-ack", self.uri, to_tag, self.from_tag, self.call_id, self.cseq, self.via)


def _via_identity(via: Via) -> str:
    # "top Via header field match": compare the parsed value, host case-insensitively, with the
    # parameters in a fixed order and without the ones a receiving server stamps.
    params = sorted((k, v or "") for k, v in via.params.items() if k not in _STAMPED_PARAMS)
    text = ";".join(f"{k}={v}" for k, v in params)
    return f"{via.protocol}/{via.transport} {via.host.lower()}:{via.port};{text}"


def legacy_identity(request: Request, via: Via, info: MessageInfo | None) -> LegacyIdentity | None:
    """The RFC 2543 matching fields, or None when one of them cannot be read."""
    if info is not None:
        return LegacyIdentity(
            request.uri,
            info.to.tag or "",
            info.from_.tag or "",
            info.call_id,
            info.cseq,
            _via_identity(via),
        )
    headers = request.headers
    to = headers.get("To")
    from_ = headers.get("From")
    call_id = headers.get("Call-ID")
    cseq = headers.get("CSeq")
    if to is None or from_ is None or call_id is None or cseq is None:
        return None
    try:
        to_tag = parse_name_addr(to, "To").tag
        from_tag = parse_name_addr(from_, "From").tag
        number = parse_cseq(cseq)[0]
    except SipParseError:
        return None
    return LegacyIdentity(
        request.uri, to_tag or "", from_tag or "", call_id.strip(), number, _via_identity(via)
    )


def to_tag_of(response: Response) -> str:
    """The To tag of a response ("" if none or unreadable)."""
    to = response.headers.get("To")
    if to is None:
        return ""
    try:
        return parse_name_addr(to, "To").tag or ""
    except SipParseError:
        return ""

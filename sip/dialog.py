"""SIP dialogs (RFC 3261 §12, with the INVITE rules of §13.2.2.4 and §14), sans-I/O.

A dialog is the peer-to-peer state two user agents keep for a call: its identifier (Call-ID,
local tag, remote tag), the CSeq counters in each direction, the remote target and the route
set. The B2BUA holds two per call, one as UAS toward the caller and one as UAC toward the
callee; both are ``Dialog`` objects, and their ids are written from the local side, so one
``dict[DialogId, Dialog]`` serves requests and responses in both directions.

Nothing here sends or waits: the caller hands in parsed messages and gets back requests to
pass to a client transaction, or the status code to answer with.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import Enum

from sip.errors import SipParseError
from sip.headers import MAX_CSEQ, NameAddr, parse_cseq, parse_name_addr
from sip.message import Headers, Request, Response, split_list
from sip.uri import SipUri
from sip.validate import MessageInfo, validate_request, validate_response

# RFC 3261 §12.2 / §14: target refresh requests carry a Contact that replaces the remote target.
# INVITE (§14), UPDATE (RFC 3311 §5.1), SUBSCRIBE/NOTIFY (RFC 6665 §4.1.2.1, §4.2.2.1),
# REFER (RFC 3515 §2.4.1 makes it one through its implicit subscription).
TARGET_REFRESH_METHODS = frozenset(("INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"))
# RFC 3261 §8.1.1.5: the first CSeq of a request sequence is below 2**31.
_INITIAL_CSEQ_LIMIT = 2**31


class DialogError(ValueError):
    """A message cannot create, match or drive a dialog; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DialogState(Enum):
    EARLY = "early"  # RFC 3261 §12: created by a 101-199 response with a To tag
    CONFIRMED = "confirmed"  # created or confirmed by a 2xx
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True)
class DialogId:
    """RFC 3261 §12: Call-ID, local tag and remote tag, seen from this user agent.

    ``remote_tag`` is None for an RFC 2543 peer that sent no tag (§12.1.1, §12.1.2).
    """

    call_id: str
    local_tag: str
    remote_tag: str | None


def dialog_id_for_request(info: MessageInfo) -> DialogId:
    """The id of the dialog an incoming request belongs to (RFC 3261 §12.2.2).

    The receiver's local tag is the To tag, the remote tag the From tag. A request without a
    To tag is outside any dialog.
    """
    local = info.to.tag
    if local is None:
        raise DialogError("Request has no To tag: it is outside any dialog")
    return DialogId(info.call_id, local, info.from_.tag)


def dialog_id_for_response(info: MessageInfo) -> DialogId:
    """The id of the dialog a response received by its UAC belongs to (RFC 3261 §12.1.2).

    The UAC's local tag is the From tag (it chose it), the remote tag the To tag.
    """
    local = info.from_.tag
    if local is None:
        raise DialogError("Response has no From tag")
    return DialogId(info.call_id, local, info.to.tag)


@dataclass(slots=True)
class Dialog:
    """The state of one dialog (RFC 3261 §12).

    ``local_uri``/``remote_uri`` are name-addr text without the tag (the display name kept);
    ``remote_target`` is the bare URI of the peer's Contact; ``route_set`` holds Record-Route
    values as written, in the order requests visit them; ``local_contact`` is what this side
    puts in Contact.
    """

    id: DialogId
    state: DialogState
    local_uri: str
    remote_uri: str
    local_seq: int | None
    remote_seq: int | None
    remote_target: str
    route_set: list[str] = field(default_factory=list)
    secure: bool = False
    local_contact: str = ""

    # --- creation -------------------------------------------------------------------------

    @classmethod
    def from_uas(
        cls, request: Request, response: Response, *, local_contact: str, secure: bool
    ) -> Dialog:
        """The UAS's dialog for ``response`` to ``request`` (RFC 3261 §12.1.1).

        ``secure`` says whether the request arrived over TLS; the dialog is secure only when
        its Request-URI is also a SIPS URI (§12.1.1).
        """
        req = _request_info(request)
        resp = _response_info(response)
        state = _creating_state(request.method, response.status)
        if resp.call_id != req.call_id or resp.cseq != req.cseq:
            raise DialogError("Response does not answer this request")
        local_tag = resp.to.tag
        if local_tag is None:
            # §12.1.1: the UAS MUST add a To tag to a response that establishes a dialog.
            raise DialogError("Dialog-creating response has no To tag")
        return cls(
            id=DialogId(req.call_id, local_tag, req.from_.tag),
            state=state,
            local_uri=_uri_text(req.to),
            remote_uri=_uri_text(req.from_),
            local_seq=None,  # §12.1.1: empty until the UAS sends a request
            remote_seq=req.cseq,
            remote_target=_contact_uri(request.headers, "request"),
            # §12.1.1: the Record-Route values of the request, in order.
            route_set=_record_route(request.headers),
            secure=secure and _is_sips(request.uri),
            local_contact=local_contact,
        )

    @classmethod
    def from_uac(cls, request: Request, response: Response) -> Dialog:
        """The UAC's dialog for ``response`` to its ``request`` (RFC 3261 §12.1.2).

        A 101-199 response with a To tag makes an early dialog, a 2xx a confirmed one; a 2xx
        without a To tag is accepted with a null remote tag (RFC 2543 peers, §12.1.2). A 1xx
        without Contact targets the Request-URI until a later response names a Contact.
        """
        req = _request_info(request)
        resp = _response_info(response)
        state = _creating_state(request.method, response.status)
        if resp.call_id != req.call_id or resp.cseq != req.cseq:
            raise DialogError("Response does not answer this request")
        local_tag = req.from_.tag
        if local_tag is None:
            raise DialogError("Request has no From tag")  # §8.1.1.3: the UAC MUST add one
        remote_tag = resp.to.tag
        if remote_tag is None and state is DialogState.EARLY:
            # §12.1: only a provisional response *with a To tag* establishes a dialog.
            raise DialogError("Provisional response has no To tag")
        if state is DialogState.EARLY and response.headers.get("Contact") is None:
            target = request.uri
        else:
            target = _contact_uri(response.headers, "response")
        return cls(
            id=DialogId(req.call_id, local_tag, remote_tag),
            state=state,
            local_uri=_uri_text(req.from_),
            remote_uri=_uri_text(req.to),
            local_seq=req.cseq,  # §12.1.2
            remote_seq=None,
            remote_target=target,
            # §12.1.2: the Record-Route values of the response, in reverse order.
            route_set=_record_route(response.headers)[::-1],
            # §12.1.2: sent over TLS with a SIPS Request-URI; a SIPS URI obliges TLS (§26.2.2).
            secure=_is_sips(request.uri),
            local_contact=request.headers.get("Contact") or "",
        )

    # --- UAC side -------------------------------------------------------------------------

    def update_from_response(self, response: Response) -> None:
        """Apply a response to a request this side sent in the dialog (UAC view).

        - 2xx to the INVITE of an early dialog: confirmed, and the route set recomputed from
          the 2xx, nothing else (§13.2.2.4: RFC 2543 did not mirror Record-Route in 1xx).
        - 2xx to a target refresh request: the remote target becomes its Contact, if present
          (§12.2.1.2). A later 1xx of an early dialog with a Contact does the same.
        - non-2xx final to the INVITE of an early dialog: terminated (§12.3).
        - 481 or 408 to any request: terminated (§12.2.1.2); 2xx to BYE: terminated (§15.1.1).
        """
        info = _response_info(response)
        if dialog_id_for_response(info) != self.id:
            raise DialogError("Response belongs to another dialog")
        status = response.status
        method = info.cseq_method
        if status in (408, 481) or (200 <= status < 300 and method == "BYE"):
            self.state = DialogState.TERMINATED
            return
        early_invite = self.state is DialogState.EARLY and method == "INVITE"
        if early_invite and status >= 300:
            self.state = DialogState.TERMINATED
            return
        if 200 <= status < 300 and method in TARGET_REFRESH_METHODS:
            if early_invite:
                self.state = DialogState.CONFIRMED
                self.route_set = _record_route(response.headers)[::-1]
            if response.headers.get("Contact") is not None:
                self.remote_target = _contact_uri(response.headers, "response")
        elif early_invite and 100 < status < 200 and response.headers.get("Contact"):
            self.remote_target = _contact_uri(response.headers, "response")

    def build_request(
        self,
        method: str,
        *,
        via: str,
        max_forwards: int = 70,
        body: bytes = b"",
        content_type: str | None = None,
        extra_headers: Sequence[tuple[str, str]] = (),
    ) -> Request:
        """A new request within the dialog (RFC 3261 §12.2.1.1); the local CSeq grows by one.

        ``via`` is the full Via value with a fresh branch (``transaction.new_branch()``).
        ACK for a 2xx is ``build_ack``; CANCEL is ``build_cancel`` (it is not a dialog
        request, §9.1).
        """
        if method in ("ACK", "CANCEL"):
            raise DialogError(f"{method} is not built as a new dialog request")
        if self.state is DialogState.TERMINATED:
            raise DialogError("Dialog is terminated")
        if self.local_seq is None:
            # §12.2.1.1: an empty local sequence number starts per §8.1.1.5.
            seq = secrets.randbelow(_INITIAL_CSEQ_LIMIT - 1) + 1
        else:
            seq = self.local_seq + 1
            if seq > MAX_CSEQ:
                raise DialogError("Local CSeq exhausted")
        request = self._build(method, seq, via, max_forwards, body, content_type, extra_headers)
        self.local_seq = seq
        return request

    def build_ack(
        self,
        invite_cseq: int,
        *,
        via: str,
        max_forwards: int = 70,
        body: bytes = b"",
        content_type: str | None = None,
        extra_headers: Sequence[tuple[str, str]] = (),
    ) -> Request:
        """The ACK for a 2xx to the INVITE sent with CSeq ``invite_cseq`` (§13.2.2.4).

        Built like any dialog request but with the INVITE's CSeq number and method ACK; the
        local CSeq does not move. Credentials of the INVITE go in ``extra_headers``.
        """
        return self._build("ACK", invite_cseq, via, max_forwards, body, content_type, extra_headers)

    def _build(
        self,
        method: str,
        seq: int,
        via: str,
        max_forwards: int,
        body: bytes,
        content_type: str | None,
        extra_headers: Sequence[tuple[str, str]],
    ) -> Request:
        if body and content_type is None:
            raise DialogError("A body needs a Content-Type")  # RFC 3261 §20.15
        uri, routes = self.request_target()
        headers = Headers()
        headers.add("Via", via)
        headers.add("Max-Forwards", str(max_forwards))
        for route in routes:
            headers.add("Route", route)
        # §12.2.1.1: To = remote URI and tag, From = local URI and tag, the dialog's Call-ID.
        headers.add("To", _with_tag(self.remote_uri, self.id.remote_tag))
        headers.add("From", _with_tag(self.local_uri, self.id.local_tag))
        headers.add("Call-ID", self.id.call_id)
        headers.add("CSeq", f"{seq} {method}")
        if method in TARGET_REFRESH_METHODS and self.local_contact:
            # §12.2.1.1: a target refresh request carries Contact (§14.1 for re-INVITE).
            contact = self.local_contact
            headers.add("Contact", contact if "<" in contact else f"<{contact}>")
        for name, value in extra_headers:
            headers.add(name, value)
        if content_type is not None:
            headers.add("Content-Type", content_type)
        return Request(method, uri, headers, body)

    def request_target(self) -> tuple[str, list[str]]:
        """The Request-URI and Route values of a request in the dialog (§12.2.1.1).

        Empty route set: the remote target, no Route. First route loose (``;lr``): the remote
        target, and every route in order. First route strict: that URI as the Request-URI,
        stripped of what a Request-URI may not carry (§19.1.1 Table 1: ``method``, headers),
        then the rest of the route set with the remote target appended as the last Route.
        """
        if not self.route_set:
            return self.remote_target, []
        first = _route_uri(self.route_set[0])
        if "lr" in first.params:
            return self.remote_target, list(self.route_set)
        params = {k: v for k, v in first.params.items() if k != "method"}
        uri = str(replace(first, params=params, headers={}))
        return uri, [*self.route_set[1:], f"<{self.remote_target}>"]

    # --- UAS side -------------------------------------------------------------------------

    def receive_request(self, request: Request, info: MessageInfo) -> int | None:
        """Check and apply a request received in the dialog (RFC 3261 §12.2.2).

        Returns None when the request is acceptable, else the status to answer: 500 for a
        CSeq lower than the last one (out of order), 481 when the dialog has ended, 400 for
        an unusable Contact in a target refresh request. ACK and CANCEL reuse the INVITE's
        CSeq and are exempt from ordering.
        """
        if dialog_id_for_request(info) != self.id:
            raise DialogError("Request belongs to another dialog")
        method = request.method
        if self.state is DialogState.TERMINATED and method != "ACK":
            return 481
        seq = info.cseq
        # §12.2.2: a CSeq lower than the remote sequence number is out of order -> 500. Equal
        # is not "lower": retransmissions never get here (the transaction layer absorbs them).
        exempt = method in ("ACK", "CANCEL")  # they carry the CSeq number of the INVITE
        if not exempt and self.remote_seq is not None and seq < self.remote_seq:
            return 500
        target: str | None = None
        if method in TARGET_REFRESH_METHODS and request.headers.get("Contact") is not None:
            try:
                target = _contact_uri(request.headers, "request")
            except DialogError:
                return 400
        if self.remote_seq is None or seq > self.remote_seq:
            self.remote_seq = seq
        if target is not None:
            self.remote_target = target  # §12.2.2, last paragraph
        if method == "BYE":
            self.state = DialogState.TERMINATED  # §15.1.2
        return None

    def response_sent(self, response: Response) -> None:
        """Apply a response this side sent to the dialog-creating INVITE (UAS view).

        A 2xx confirms an early dialog (§12.1.1); a non-2xx final ends it (§12.3).
        """
        if self.state is not DialogState.EARLY:
            return
        if 200 <= response.status < 300:
            self.state = DialogState.CONFIRMED
        elif response.status >= 300:
            self.state = DialogState.TERMINATED

    def terminate(self) -> None:
        self.state = DialogState.TERMINATED

    @property
    def is_confirmed(self) -> bool:
        return self.state is DialogState.CONFIRMED


def build_cancel(invite: Request) -> Request:
    """The CANCEL for a pending INVITE (RFC 3261 §9.1).

    Same Request-URI, Call-ID, To (no tag is added), From and CSeq number as the INVITE, with
    method CANCEL; the INVITE's top Via only (the same branch, so it matches the same server
    transaction, §9.2); the INVITE's Route header fields; no body.
    """
    if invite.method != "INVITE":
        # §9.1: CANCEL SHOULD NOT be sent for any other method.
        raise DialogError("Only an INVITE is cancelled")
    source = invite.headers
    via = source.get("Via")
    cseq = source.get("CSeq")
    if via is None or cseq is None:
        raise DialogError("INVITE lacks Via or CSeq")
    try:
        number = parse_cseq(cseq)[0]
    except SipParseError as exc:
        raise DialogError(exc.reason) from exc
    headers = Headers()
    headers.add("Via", split_list(via)[0])
    headers.add("Max-Forwards", source.get("Max-Forwards") or "70")
    for route in source.get_all("Route"):
        headers.add("Route", route)
    for name in ("To", "From", "Call-ID"):
        value = source.get(name)
        if value is None:
            raise DialogError(f"INVITE lacks {name}")
        headers.add(name, value)
    headers.add("CSeq", f"{number} CANCEL")
    return Request("CANCEL", invite.uri, headers)


# --- helpers ------------------------------------------------------------------------------


def _request_info(request: Request) -> MessageInfo:
    try:
        return validate_request(request)
    except SipParseError as exc:
        raise DialogError(exc.reason) from exc


def _response_info(response: Response) -> MessageInfo:
    try:
        return validate_response(response)
    except SipParseError as exc:
        raise DialogError(exc.reason) from exc


def _creating_state(method: str, status: int) -> DialogState:
    # §12.1: "only 2xx and 101-199 responses with a To tag, where the request was INVITE,
    # will establish a dialog".
    if method != "INVITE":
        raise DialogError(f"{method} does not create a dialog")
    if 100 < status < 200:
        return DialogState.EARLY
    if 200 <= status < 300:
        return DialogState.CONFIRMED
    raise DialogError(f"A {status} response does not create a dialog")


def _uri_text(addr: NameAddr) -> str:
    """The name-addr without header parameters (the tag is dialog id, not URI)."""
    return str(NameAddr(addr.uri, addr.display))


def _with_tag(uri_text: str, tag: str | None) -> str:
    return uri_text if tag is None else f"{uri_text};tag={tag}"


def _is_sips(uri: str) -> bool:
    return uri[:5].lower() == "sips:"


def _contact_uri(headers: Headers, what: str) -> str:
    """The one SIP/SIPS URI in Contact (§12.1.1, §12.1.2; §8.1.1.8 for INVITE)."""
    values = headers.values("Contact")
    if len(values) != 1:
        raise DialogError(f"Contact missing or not a single value in {what}")
    try:
        addr = parse_name_addr(values[0], "Contact")
    except SipParseError as exc:
        raise DialogError(exc.reason) from exc
    if not isinstance(addr.parsed_uri(), SipUri):
        raise DialogError(f"Contact in {what} is not a SIP or SIPS URI")
    return addr.uri


def _record_route(headers: Headers) -> list[str]:
    """Record-Route values as written, top first; each must be a SIP/SIPS name-addr."""
    values = headers.values("Record-Route")
    for value in values:
        _route_uri(value)
    return values


def _route_uri(value: str) -> SipUri:
    try:
        uri = parse_name_addr(value, "Record-Route").parsed_uri()
    except SipParseError as exc:
        raise DialogError(exc.reason) from exc
    if not isinstance(uri, SipUri):
        raise DialogError("Route is not a SIP or SIPS URI")  # §12: a route set of SIP URIs
    return uri

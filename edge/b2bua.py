"""The B2BUA call model, pure: every call is two dialogs joined by the edge.

Leg ``a`` faces the caller (the edge is its UAS), leg ``b`` the callee (the edge is its UAC).
Nothing of one side reaches the other but what a call needs (topology hiding): the callee's
INVITE is a new request with its own Call-ID, tags, Via and Contact; in-dialog requests are
rebuilt from the other dialog (RFC 3261 §12.2.1.1); SDP is rewritten to the edge's relay with
the edge's own ``o=`` line per leg (RFC 3264 §8: the version grows only when the SDP changes).

Like the registrar this is sans-I/O: the glue hands in requests, responses, transaction
failures and timer ticks with ``now`` and gets back transaction events (``Send`` …) and call
actions: ``OpenMedia`` (bind a relay, then call ``media_ready``), ``MediaTarget`` (a leg's far
end moved: set it, re-latch) and ``CallEnded`` (close the relay, write the call record).

Flows: requests to a callee go over the flow its REGISTER came on (RFC 5626 §5.3, NAT
pinholes and connection reuse), requests to a caller over the flow its INVITE came on; the
edge never resolves or sends to a host a Contact names.
"""

from __future__ import annotations

import contextlib
import copy
import heapq
import itertools
import logging
import secrets
from collections.abc import Callable
from dataclasses import replace
from urllib.parse import unquote

from edge.auth import PhoneAuth, Reject
from edge.call_model import (
    IGNORE,
    Action,
    Branch,
    Call,
    CallEnded,
    CallState,
    CallTimer,
    Forked,
    Forks,
    Leg,
    LegName,
    MediaPlanned,
    MediaTarget,
    OnAnswer,
    OpenMedia,
    Refresh,
    Relayed,
    Transfer,
    Unacked,
)
from edge.call_sdp import SDP, BadBody, accepts_sdp, audio_stream, sdp_of, sendrecv
from edge.cdr import EndCause, HungUpBy
from edge.config import EdgeConfig
from edge.location import Binding, LocationService
from edge.responses import ALLOW, SUPPORTED, finish, new_tag
from media.bridge import MediaPlan, plan, widen_offer
from media.offer_answer import addrtype_of, is_hold, is_unspecified, rewrite_for_relay
from media.sdp import (
    Origin,
    SessionDescription,
    connection_for,
)
from sip.dialog import Dialog, DialogError, DialogId, build_cancel, dialog_id_for_request
from sip.errors import SipParseError
from sip.flow import Flow
from sip.message import REASONS, Request, Response, response_to
from sip.refer import (
    DTMF_RELAY_CONTENT_TYPE,
    SIPFRAG_CONTENT_TYPE,
    Replaces,
    dtmf_relay_body,
    parse_refer_to,
    refer_event,
    sipfrag,
    subscription_active,
    subscription_terminated,
)
from sip.session_timer import (
    REASON_422,
    STATUS_422,
    Negotiated,
    Refresher,
    UacOffer,
    uac_offer,
    uac_process_2xx,
    uac_retry_after_422,
    uas_negotiate,
)
from sip.transaction import (
    ClientTransaction,
    Send,
    ServerTransaction,
    TransactionLayer,
    TransactionTableFull,
    new_branch,
)
from sip.uri import SipUri
from sip.validate import RequestInfo

log = logging.getLogger("voxedge.calls")

Planned = tuple[MediaPlan, SessionDescription]  # media.bridge.plan's result

# Headers an in-dialog request or its response carries across (the rest is per dialog).
_RELAYED_HEADERS = ("Event", "Info-Package", "Accept", "Subject", "Allow-Events")


# ---------------------------------------------------------------------------- the engine


class B2BUA:
    def __init__(
        self,
        transactions: TransactionLayer,
        auth: PhoneAuth,
        location: LocationService,
        config: Callable[[], EdgeConfig],
        reject: Reject,
        wall_clock: Callable[[], float],
    ) -> None:
        self._tl = transactions
        self.auth = auth
        self._location = location
        self._config = config
        self._reject = reject
        self._wall = wall_clock
        self.calls: dict[str, Call] = {}
        self._dialogs: dict[DialogId, tuple[Call, Leg]] = {}
        self._heap: list[tuple[float, int, CallTimer]] = []
        self._seq = itertools.count()

    # ------------------------------------------------------------------ timers

    def _at(
        self, call: Call, deadline: float, fire: Callable[[float, list[Action]], None]
    ) -> CallTimer:
        timer = CallTimer(fire)
        if len(call.timers) >= 8:  # fired and cancelled ones go: a long call re-arms often
            call.timers[:] = [t for t in call.timers if not t.cancelled]
        call.timers.append(timer)
        heapq.heappush(self._heap, (deadline, next(self._seq), timer))
        return timer

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def handle_timer(self, now: float) -> list[Action]:
        out: list[Action] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, timer = heapq.heappop(heap)
            if not timer.cancelled:
                timer.cancelled = True
                timer.fire(now, out)
        return out

    # ------------------------------------------------------------------ new calls

    def handle_invite(
        self, txn: ServerTransaction, request: Request, info: RequestInfo, now: float
    ) -> list[Action]:
        """A new INVITE from a phone: authenticate (407), find the callee, open media."""
        out: list[Action] = []
        config = self._config()
        flow = txn.flow
        from_uri = info.from_.parsed_uri()
        claimed = unquote(from_uri.user or "") if isinstance(from_uri, SipUri) else ""
        user = self.auth.authenticate(request, flow, config, now, claimed=claimed, proxy=True)
        if isinstance(user, Response):
            self._respond(txn, user, now, out)
            return out
        target = info.uri
        extension = unquote(target.user) if isinstance(target, SipUri) and target.user else ""
        callee = config.phone_by_extension(extension)
        domain = config.edge.domain
        if callee is None:
            self._reject("NO_ROUTE", flow, f"INVITE {request.uri}")
            return self._refuse(txn, request, 404, "No such extension", now)
        aor = f"sip:{callee.extension}@{domain}"
        if not self._location.lookup(aor, now):
            self._reject("NOT_REGISTERED", flow, aor)
            return self._refuse(txn, request, 480, "Not registered", now)
        if info.max_forwards == 0:
            return self._refuse(txn, request, 483, None, now)  # RFC 3261 §16.3 item 2
        try:
            timer = uas_negotiate(request.headers)
        except SipParseError as exc:
            self._reject("BAD_REQUEST", flow, exc.reason)
            return self._refuse(txn, request, 400, exc.reason, now)
        if timer.reject:  # RFC 4028 §9: below our Min-SE
            response = response_to(request, STATUS_422, REASON_422)
            for name, value in timer.headers:
                response.headers.add(name, value)
            self._respond(txn, response, now, out)
            return out
        if not accepts_sdp(request):
            # RFC 3261 §21.4.7: our answers carry SDP, which the caller says it cannot take.
            self._reject("BAD_REQUEST", flow, "Accept excludes application/sdp")
            response = response_to(request, 406)
            response.headers.add("Accept", SDP)
            self._respond(txn, response, now, out)
            return out
        offer: SessionDescription | None = None
        stream = 0
        if request.body:
            try:
                offer = sdp_of(request)
            except BadBody as exc:
                self._reject("BAD_REQUEST", flow, exc.reason)
                response = response_to(request, exc.status, exc.reason)
                if exc.status == 415:
                    response.headers.add("Accept", SDP)  # RFC 3261 §21.4.13
                self._respond(txn, response, now, out)
                return out
            found = audio_stream(offer)
            if found is None:
                self._reject("BAD_REQUEST", flow, "no audio stream")
                return self._refuse(txn, request, 488, "No audio stream offered", now)
            stream = found
        a = Leg("a", flow, f"sip:{user}@{domain}")
        b = Leg("b", flow, aor)
        call = Call(request, txn, a, b, self._wall())
        call.offer = offer
        call.stream = stream
        call.timer_headers = timer.headers
        call.a_session = timer.negotiated
        txn.context = call
        self.calls[call.id] = call
        deadline = now + config.edge.no_answer_timeout
        call.no_answer = self._at(call, deadline, lambda t, o: self._no_answer(call, t, o))
        out.append(OpenMedia(call))
        return out

    def media_ready(self, call: Call, now: float) -> list[Action]:
        """The relay is bound (``call.media_ports`` set): fork the INVITE to the callee."""
        out: list[Action] = []
        if call.state is not CallState.SETUP:
            return out  # cancelled while the relay was being bound
        body = b""
        if call.offer is not None:
            body = self._sdp_toward(call, call.b, widen_offer(call.offer, call.stream))
            self._learn_media(call, call.a, call.offer, False, out)
        bindings = self._location.lookup(call.b.uri, now)
        if not bindings:
            return self._fail(call, 480, "Not registered", "failed", now, out)
        display = call.invite.headers.get("From") or ""
        name = display.split("<")[0].strip() if "<" in display else ""
        max_forwards = (self._max_forwards(call.invite) or 70) - 1
        self._fork(
            call, call.b, call.a.uri, bindings, name, max_forwards, body, call.forks, now, out
        )
        if not call.forks.branches:
            return self._fail(call, 503, "Service Unavailable", "failed", now, out)
        call.b.flow = bindings[0].flow
        return out

    def _fork(
        self,
        call: Call,
        target: Leg,
        identity: str,
        bindings: list[Binding],
        display: str,
        max_forwards: int,
        body: bytes,
        forks: Forks,
        now: float,
        out: list[Action],
    ) -> None:
        """An INVITE to each of ``bindings`` (parallel forking), each a dialog of its own:
        new Call-ID and tags, the edge's Via and Contact (topology hiding)."""
        domain = self._config().edge.domain
        for binding in bindings:
            request = Request("INVITE", binding.contact.split("?")[0])
            headers = request.headers
            headers.add("Via", self._via(binding.flow))
            headers.add("Max-Forwards", str(max(max_forwards, 1)))
            headers.add("From", f"{display} <{identity}>;tag={new_tag()}".lstrip())
            headers.add("To", f"<{target.uri}>")
            headers.add("Call-ID", f"{secrets.token_hex(12)}@{domain}")
            headers.add("CSeq", "1 INVITE")
            headers.add("Contact", self._contact(binding.flow))
            headers.add("Allow", ALLOW)
            branch = Branch(request, binding.flow)
            for name, value in branch.timer_offer.headers():  # RFC 4028 §7.1
                headers.add(name, value)
            if body:
                headers.add("Content-Type", SDP)
                request.body = body
            txn = self._send(request, binding.flow, now, Forked(call, branch, forks), out)
            if txn is not None:
                forks.branches[txn] = branch

    def media_failed(self, call: Call, now: float) -> list[Action]:
        out: list[Action] = []
        if call.state is CallState.SETUP:
            self._fail(call, 503, "No media ports", "failed", now, out)
        return out

    def _no_answer(self, call: Call, now: float, out: list[Action]) -> None:
        if call.state is CallState.SETUP:
            self._fail(call, 480, "No Answer", "no-answer", now, out)

    def _fail(
        self,
        call: Call,
        status: int,
        reason: str | None,
        cause: EndCause,
        now: float,
        out: list[Action],
    ) -> list[Action]:
        """End a call before it was answered: the final response to the caller, CANCEL forks."""
        response = self._to_caller(call, response_to(call.invite, status, reason))
        self._respond(call.invite_txn, response, now, out)
        self._cancel_forks(call.forks, now, out)
        by: HungUpBy = "caller" if cause == "cancelled" else "edge"
        self._end(call, cause, status, by, now, out)
        return out

    def _cancel_forks(self, forks: Forks, now: float, out: list[Action]) -> None:
        for branch in forks.branches.values():
            if branch.done or branch is forks.winner:
                continue
            if branch.provisional:
                self._send_cancel(branch, now, out)
            else:
                branch.cancel = True  # §9.1: wait for a provisional response

    def _send_cancel(self, branch: Branch, now: float, out: list[Action]) -> None:
        branch.cancel = False
        branch.done = True
        self._send(build_cancel(branch.request), branch.flow, now, IGNORE, out)

    # ------------------------------------------------------------------ CANCEL

    def handle_cancel(
        self, txn: ServerTransaction, request: Request, info: RequestInfo, now: float
    ) -> list[Action]:
        """RFC 3261 §9.2: 200 to the CANCEL, and 487 to its INVITE if still unanswered."""
        out: list[Action] = []
        invite_txn = self._tl.find_invite_for_cancel(request, info)
        if invite_txn is None:
            return self._refuse(txn, request, 481, None, now)
        self._respond(txn, response_to(request, 200), now, out, info.to.tag)
        call = invite_txn.context
        if isinstance(call, Call) and call.state is CallState.SETUP:
            self._fail(call, 487, None, "cancelled", now, out)
        return out

    # ------------------------------------------------------------------ responses

    def handle_response(
        self, txn: ClientTransaction, response: Response, now: float
    ) -> list[Action]:
        out: list[Action] = []
        context = txn.context
        if isinstance(context, Forked):
            self._fork_response(
                context.call, context.forks, txn, context.branch, response, now, out
            )
        elif isinstance(context, Relayed):
            self._relayed_response(context, response, now, out)
        elif isinstance(context, Refresh):
            self._refresh_response(context, txn, response, now, out)
        return out

    def handle_failure(self, txn: ClientTransaction, now: float) -> list[Action]:
        """Timer B/F or a transport error: as a 408 from the far end (RFC 3261 §8.1.3.1)."""
        if txn.last_response is not None and txn.last_response.status >= 200:
            return []  # after its final response: nothing left to fail
        return self.handle_response(txn, response_to(txn.request, 408), now)

    def _fork_response(
        self,
        call: Call,
        forks: Forks,
        txn: ClientTransaction,
        branch: Branch,
        response: Response,
        now: float,
        out: list[Action],
    ) -> None:
        status = response.status
        live = self._live(call, forks)
        if status < 200:
            branch.provisional = True
            if branch.cancel:
                self._send_cancel(branch, now, out)
            elif status > 100 and live and forks.transfer is None:
                self._early(call, response, now, out)
            return
        if (
            status == STATUS_422
            and live
            and self._retry_422(call, forks, txn, branch, response, now, out)
        ):
            return
        if status >= 300:
            self._fork_failed(call, forks, branch, status, now, out)
            return
        if forks.winner is branch:
            if branch.ack:  # the 2xx again: our ACK was lost (§13.2.2.4)
                out.append(Send(txn.flow, branch.ack))
            return
        if forks.winner is not None or not live:
            self._ack_and_bye(branch.request, response, txn.flow, now, out)
            return
        try:
            dialog = Dialog.from_uac(branch.request, response)
            sdp = sdp_of(response) if response.body else None
            if branch.request.body and sdp is None:
                raise BadBody(488, "no answer SDP")  # we offered: the 2xx must answer
            # The offerer: the caller, or the party a transfer target is called for.
            transfer = forks.transfer
            offerer = call.a if transfer is None else call.other(transfer.transferor)
            offer = call.offer if transfer is None else offerer.remote_sdp
            planned = None
            if sdp is not None and offer is not None:
                planned = plan(offer, sdp, call.stream, offerer.name)
                if not planned[0].compatible:
                    # RFC 3264 §6.1: an answer names offered formats; nothing can bridge it.
                    raise BadBody(488, "answer has no codec in common with the offer")
        except (DialogError, BadBody) as exc:
            log.info("call %s: unusable 2xx from %s: %s", call.id, txn.flow.remote, exc.reason)
            self._ack_and_bye(branch.request, response, txn.flow, now, out)
            self._fork_failed(
                call, forks, branch, 488 if isinstance(exc, BadBody) else 502, now, out
            )
            return
        forks.winner = branch
        self._cancel_forks(forks, now, out)
        if transfer is None:
            self._answered(call, txn, branch, dialog, response, sdp, planned, now, out)
        else:
            self._transferred(call, transfer, txn, branch, dialog, response, sdp, planned, now, out)

    def _live(self, call: Call, forks: Forks) -> bool:
        """Whether the attempt ``forks`` belongs to still wants an answer."""
        if forks.transfer is None:
            return call.state is CallState.SETUP
        return call.transfer is forks.transfer

    def _fork_failed(
        self, call: Call, forks: Forks, branch: Branch, status: int, now: float, out: list[Action]
    ) -> None:
        """A fork's final non-2xx; once all have one, the attempt has failed."""
        branch.done = True
        branch.status = status
        if not self._live(call, forks) or not all(b.done for b in forks.branches.values()):
            return
        code, reason, cause = _caller_status([b.status for b in forks.branches.values()])
        transfer = forks.transfer
        if transfer is None:
            self._fail(call, code, reason, cause, now, out)
        else:
            call.transfer = None  # the transferor keeps its call (RFC 3515 §2.4.5)
            self._notify(transfer.transferor, code, REASONS.get(code, "Failed"), True, now, out)

    def _retry_422(
        self,
        call: Call,
        forks: Forks,
        txn: ClientTransaction,
        branch: Branch,
        response: Response,
        now: float,
        out: list[Action],
    ) -> bool:
        """RFC 4028 §7.3: the callee wants a longer session interval; ask again with it."""
        if branch.cancel:
            return False
        try:
            branch.timer_offer = uac_retry_after_422(branch.timer_offer, response.headers)
        except SipParseError:
            return False
        request = copy.deepcopy(branch.request)
        headers = request.headers
        headers.set("Via", self._via(branch.flow))
        number = int((headers.get("CSeq") or "1").split()[0]) + 1
        headers.set("CSeq", f"{number} INVITE")
        for name, value in branch.timer_offer.headers():
            headers.set(name, value)
        branch.request = request
        del forks.branches[txn]
        retry = self._send(request, branch.flow, now, Forked(call, branch, forks), out)
        if retry is None:
            return False
        forks.branches[retry] = branch
        return True

    def _early(self, call: Call, response: Response, now: float, out: list[Action]) -> None:
        """180/183 to the caller (RFC 3261 §13.3.1.1), with the callee's early media SDP."""
        relay = self._to_caller(call, response_to(call.invite, response.status, response.reason))
        if response.body and call.offer is not None:
            try:
                sdp = sdp_of(response)
            except BadBody:
                sdp = None
            if sdp is not None:
                relay.body = self._answer_toward(call, call.a, call.offer, sdp, out)
                relay.headers.add("Content-Type", SDP)
                self._learn_media(call, call.b, sdp, False, out)
        self._respond(call.invite_txn, relay, now, out)

    def _answered(
        self,
        call: Call,
        txn: ClientTransaction,
        branch: Branch,
        dialog: Dialog,
        response: Response,
        sdp: SessionDescription | None,
        planned: Planned | None,
        now: float,
        out: list[Action],
    ) -> None:
        b = call.b
        b.flow = txn.flow
        b.dialog = dialog
        self._dialogs[dialog.id] = (call, b)
        ok = self._to_caller(call, response_to(call.invite, 200))
        if sdp is not None:
            if call.offer is not None:
                ok.body = self._answer_toward(call, call.a, call.offer, sdp, out, planned)
            else:  # delayed offer: the callee offers, the caller answers in its ACK
                ok.body = self._sdp_toward(call, call.a, widen_offer(sdp, call.stream))
            ok.headers.add("Content-Type", SDP)
            self._learn_media(call, b, sdp, False, out)
        if call.offer is None:
            branch.ack_deferred = True  # §13.2.2.4: the answer comes in the caller's ACK
        else:
            self._send_ack(branch, dialog, b.flow, b"", out)
        ok.headers.add("Allow", ALLOW)
        ok.headers.add("Supported", SUPPORTED)
        for name, value in call.timer_headers:
            ok.headers.add(name, value)
        if call.a_session is not None:
            self._run_session(call, call.a, call.a_session, now)
        self._uac_session(call, b, response, now)
        a_dialog = Dialog.from_uas(
            call.invite,
            ok,
            local_contact=self._contact_uri(call.a.flow),
            secure=call.a.flow.transport == "tls",
        )
        call.a.dialog = a_dialog
        self._dialogs[a_dialog.id] = (call, call.a)
        call.state = CallState.ANSWERED
        call.answered = self._wall()
        call.media_since = now
        call.sip_code = 200
        if call.no_answer is not None:
            call.no_answer.cancelled = True
        self._send_2xx(call, call.a, call.invite_txn, ok, now, out)
        log.debug("call %s answered: %s -> %s", call.id, call.a.uri, call.b.uri)

    def _send_ack(
        self, branch: Branch, dialog: Dialog, flow: Flow, body: bytes, out: list[Action]
    ) -> None:
        cseq = int((branch.request.headers.get("CSeq") or "1").split()[0])
        ack = dialog.build_ack(
            cseq,
            via=self._via(flow),
            body=body,
            content_type=SDP if body else None,
        )
        branch.ack = ack.to_bytes()
        branch.ack_deferred = False
        out.append(Send(flow, branch.ack))

    def _ack_and_bye(
        self, request: Request, response: Response, flow: Flow, now: float, out: list[Action]
    ) -> None:
        """A 2xx the call does not want (a later fork won): ACK it, then BYE (§13.2.2.4)."""
        try:
            dialog = Dialog.from_uac(request, response)
        except DialogError:
            return
        cseq = int((request.headers.get("CSeq") or "1").split()[0])
        out.append(Send(flow, dialog.build_ack(cseq, via=self._via(flow)).to_bytes()))
        self._send(dialog.build_request("BYE", via=self._via(flow)), flow, now, IGNORE, out)

    # ------------------------------------------------------------------ 2xx reliability

    def _send_2xx(
        self,
        call: Call,
        leg: Leg,
        txn: ServerTransaction,
        response: Response,
        now: float,
        out: list[Action],
    ) -> None:
        """Send a 2xx to an INVITE and keep re-sending it until the ACK (RFC 3261 §13.3.1.4):
        T1, doubling up to T2; after 64*T1 without an ACK the session ends with BYE."""
        t1 = self._config().edge.t1
        cseq = int((txn.request.headers.get("CSeq") or "0").split()[0])
        unacked = Unacked(txn, response, cseq, t1, now + 64 * t1)
        leg.unacked = unacked
        self._respond(txn, response, now, out, leg.dialog.id.local_tag if leg.dialog else None)
        unacked.timer = self._at(call, now + t1, lambda t, o: self._resend_2xx(call, leg, t, o))

    def _resend_2xx(self, call: Call, leg: Leg, now: float, out: list[Action]) -> None:
        unacked = leg.unacked
        if unacked is None or call.state is CallState.ENDED:
            return
        if now >= unacked.given_up_at:
            leg.unacked = None
            log.info("call %s: no ACK from the %s", call.id, leg.role)
            self._hang_up(call, None, "failed", "edge", now, out)
            return
        out.extend(self._tl.respond(unacked.txn, unacked.response, now))
        unacked.interval = min(unacked.interval * 2, self._config().edge.t2)
        unacked.timer = self._at(
            call, now + unacked.interval, lambda t, o: self._resend_2xx(call, leg, t, o)
        )

    # ------------------------------------------------------------------ in-dialog requests

    def handle_in_dialog(
        self,
        txn: ServerTransaction | None,
        request: Request,
        info: RequestInfo,
        now: float,
    ) -> list[Action]:
        """A request with a To tag (``txn`` None for an ACK, which has no transaction)."""
        out: list[Action] = []
        try:
            found = self._dialogs.get(dialog_id_for_request(info))
        except DialogError:
            found = None
        if found is None:
            if txn is not None:  # §12.2.2: no such dialog
                return self._refuse(txn, request, 481, None, now, info.to.tag)
            return out
        call, src = found
        if request.method == "ACK":
            self._ack(call, src, request, info, now, out)
            return out
        assert txn is not None and src.dialog is not None
        status = src.dialog.receive_request(request, info)
        if status is not None:
            self._respond(txn, response_to(request, status), now, out, info.to.tag)
            return out
        method = request.method
        if src is not call.a and src is not call.b:
            # A transferor that has left the call: only its BYE is expected (RFC 5589 §6).
            status = 200 if method == "BYE" else 481
            self._respond(txn, response_to(request, status), now, out, info.to.tag)
            if method == "BYE":
                self._drop_departed(call, src)
            return out
        if method == "BYE":
            self._respond(txn, response_to(request, 200), now, out, info.to.tag)
            self._hang_up(call, src, "normal", src.role, now, out)
            return out
        if method == "REFER":
            self._refer(call, src, txn, request, info, now, out)
            return out
        dst = call.other(src)
        if call.state is not CallState.ANSWERED or dst.dialog is None:
            return self._refuse(txn, request, 481, None, now, info.to.tag)
        if request.body and request.headers.get("Content-Type") is None:
            # RFC 3261 §20.15: a body MUST come with its Content-Type.
            self._reject("BAD_REQUEST", txn.flow, f"{method} body without Content-Type")
            return self._refuse(txn, request, 400, "Body without Content-Type", now, info.to.tag)
        sdp: SessionDescription | None = None
        if method in ("INVITE", "UPDATE"):
            if src.offering or dst.offering or src.unacked is not None:
                # RFC 3261 §14.2, RFC 3311 §5.2: an offer is already in progress (glare).
                response = response_to(request, 491)
                self._respond(txn, response, now, out, info.to.tag)
                return out
            if request.body:
                try:
                    sdp = sdp_of(request)
                except BadBody as exc:
                    return self._refuse(txn, request, exc.status, exc.reason, now, info.to.tag)
            elif method == "INVITE":
                # A re-INVITE without an offer: ours is the one we last sent (§14.2); the
                # answer in the ACK only moves this leg's media.
                self._reoffer(call, src, txn, request, now, out)
                return out
        body = b""
        content_type = request.headers.get("Content-Type")
        if sdp is not None:
            call.held = is_hold(sdp)
            call.media_since = now
            body = self._sdp_toward(call, dst, widen_offer(sdp, call.stream))
            self._learn_media(call, src, sdp, True, out)
            src.offering = True
        elif request.body:
            body = request.body
        extra = [(n, v) for n in _RELAYED_HEADERS for v in request.headers.get_all(n)]
        if method in ("INVITE", "UPDATE"):
            extra += _refresh_headers(dst)  # RFC 4028 §7.4: each leg keeps its own timer
        try:
            relayed = dst.dialog.build_request(
                method,
                via=self._via(dst.flow),
                body=body,
                content_type=content_type if body else None,
                extra_headers=extra,
            )
        except DialogError as exc:
            src.offering = False
            return self._refuse(txn, request, 500, exc.reason, now, info.to.tag)
        context = Relayed(call, src, dst, txn, request, sdp)
        if self._send(relayed, dst.flow, now, context, out) is None:
            src.offering = False
            self._refuse(txn, request, 503, None, now, info.to.tag)
        return out

    def _reoffer(
        self,
        call: Call,
        leg: Leg,
        txn: ServerTransaction,
        request: Request,
        now: float,
        out: list[Action],
    ) -> None:
        ok = response_to(request, 200)
        ok.headers.add("Contact", self._contact(leg.flow))
        if leg.sdp_sent is not None:
            ok.body = leg.sdp_sent
            ok.headers.add("Content-Type", SDP)
        self._send_2xx(call, leg, txn, ok, now, out)

    def _ack(
        self,
        call: Call,
        leg: Leg,
        request: Request,
        info: RequestInfo,
        now: float,
        out: list[Action],
    ) -> None:
        unacked = leg.unacked
        if unacked is None or unacked.cseq != info.cseq:
            return  # a retransmitted or stray ACK
        leg.unacked = None
        if unacked.timer is not None:
            unacked.timer.cancelled = True
        sdp = None
        if request.body:
            try:
                sdp = sdp_of(request)
            except BadBody:
                sdp = None
        winner = call.forks.winner
        if winner is not None and winner.ack_deferred and call.b.dialog is not None:
            # Delayed offer (§13.2.2.4): the caller's answer goes in the callee's ACK.
            body = b""
            offer = call.b.remote_sdp
            if sdp is not None and offer is not None:
                body = self._answer_toward(call, call.b, offer, sdp, out)
                self._learn_media(call, leg, sdp, False, out)
            self._send_ack(winner, call.b.dialog, call.b.flow, body, out)
        elif sdp is not None:
            self._learn_media(call, leg, sdp, True, out)

    def _relayed_response(
        self, relayed: Relayed, response: Response, now: float, out: list[Action]
    ) -> None:
        call, src, dst, request = relayed.call, relayed.src, relayed.dst, relayed.request
        status = response.status
        if status == 100 or call.state is CallState.ENDED:
            return
        method = request.method
        back = response_to(request, status, response.reason)
        for name in _RELAYED_HEADERS:
            for value in response.headers.get_all(name):
                back.headers.add(name, value)
        if status >= 200 and dst.dialog is not None:
            with contextlib.suppress(DialogError):
                dst.dialog.update_from_response(response)
        sdp: SessionDescription | None = None
        if response.body:
            content_type = response.headers.get("Content-Type") or ""
            if content_type.split(";")[0].strip().lower() == SDP:
                try:
                    sdp = sdp_of(response)
                except BadBody:
                    sdp = None
                if sdp is not None:
                    if relayed.offer is not None:
                        back.body = self._answer_toward(call, src, relayed.offer, sdp, out)
                    else:
                        back.body = self._sdp_toward(call, src, sdp)
                    back.headers.add("Content-Type", SDP)
                    if 200 <= status < 300:
                        self._learn_media(call, dst, sdp, True, out)
            else:
                back.body = response.body
                back.headers.add("Content-Type", content_type)
        tag = src.dialog.id.local_tag if src.dialog is not None else None
        if status >= 200:
            src.offering = False
        if 200 <= status < 300 and method in ("INVITE", "UPDATE"):
            self._uac_session(call, dst, response, now)
            self._uas_session(call, src, request, back, now)
        if method == "INVITE" and 200 <= status < 300:
            if dst.dialog is not None:
                cseq = int((response.headers.get("CSeq") or "0").split()[0])
                ack = dst.dialog.build_ack(cseq, via=self._via(dst.flow))
                out.append(Send(dst.flow, ack.to_bytes()))
            back.headers.add("Contact", self._contact(src.flow))
            self._send_2xx(call, src, relayed.txn, back, now, out)
            return
        if 200 <= status < 300 and method == "UPDATE":
            back.headers.add("Contact", self._contact(src.flow))
        self._respond(relayed.txn, back, now, out, tag)
        if status in (408, 481):
            # §12.2.1.2: the far dialog is gone, so is the call.
            self._hang_up(call, dst, "failed", "edge", now, out)

    # ------------------------------------------------------------------ session timers

    def _run_session(self, call: Call, leg: Leg, terms: Negotiated, now: float) -> None:
        """(Re)start ``leg``'s RFC 4028 timer and its one heap entry."""
        leg.session.start(terms.interval, terms.we_refresh, now)
        self._arm_session(call, leg)

    def _arm_session(self, call: Call, leg: Leg) -> None:
        if leg.session_fire is not None:
            leg.session_fire.cancelled = True
            leg.session_fire = None
        deadline = leg.session.next_deadline()
        if deadline is not None:
            leg.session_fire = self._at(
                call, deadline, lambda t, o: self._session_due(call, leg, t, o)
            )

    def _uac_session(self, call: Call, leg: Leg, response: Response, now: float) -> None:
        """The terms a leg's 2xx sets when the edge sent the INVITE/UPDATE (§7.2)."""
        try:
            terms = uac_process_2xx(response.headers)
        except SipParseError:
            terms = None
        if terms is None:
            leg.session.stop()
            self._arm_session(call, leg)
        else:
            self._run_session(call, leg, terms, now)

    def _uas_session(
        self, call: Call, leg: Leg, request: Request, response: Response, now: float
    ) -> None:
        """The terms of a refresh the leg sent us, into our 2xx (§9)."""
        try:
            decision = uas_negotiate(request.headers)
        except SipParseError:
            return
        if decision.reject:
            return  # a refresh below our minimum: keep the old terms rather than fail the call
        for name, value in decision.headers:
            response.headers.add(name, value)
        if decision.negotiated is None:
            leg.session.stop()
            self._arm_session(call, leg)
        else:
            self._run_session(call, leg, decision.negotiated, now)

    def _session_due(self, call: Call, leg: Leg, now: float, out: list[Action]) -> None:
        leg.session_fire = None
        if call.state is not CallState.ANSWERED or leg not in (call.a, call.b):
            return
        due = leg.session.due(now)
        if due == "expire":
            log.info("call %s: session timer of the %s expired", call.id, leg.role)
            self._hang_up(call, None, "failed", "edge", now, out)
            return
        if due == "refresh" and not leg.offering and leg.unacked is None:
            self._refresh(call, leg, now, out)
        self._arm_session(call, leg)

    def _refresh(
        self,
        call: Call,
        leg: Leg,
        now: float,
        out: list[Action],
        body: bytes | None = None,
        on_answer: OnAnswer | None = None,
    ) -> None:
        """A re-INVITE from the edge to ``leg``: a session refresh (§7.4) with the SDP the leg
        already has (so nothing changes but the timer), or a new offer ``body``."""
        if leg.dialog is None or leg.sdp_sent is None:
            return
        try:
            request = leg.dialog.build_request(
                "INVITE",
                via=self._via(leg.flow),
                body=leg.sdp_sent if body is None else body,
                content_type=SDP,
                extra_headers=_refresh_headers(leg),
            )
        except DialogError:
            return
        leg.offering = True
        if self._send(request, leg.flow, now, Refresh(call, leg, on_answer), out) is None:
            leg.offering = False

    def _refresh_response(
        self,
        refresh: Refresh,
        txn: ClientTransaction,
        response: Response,
        now: float,
        out: list[Action],
    ) -> None:
        call, leg = refresh.call, refresh.leg
        if response.status < 200 or call.state is CallState.ENDED:
            return
        leg.offering = False
        if leg.dialog is None:
            return
        with contextlib.suppress(DialogError):
            leg.dialog.update_from_response(response)
        if response.status < 300:
            cseq = int((response.headers.get("CSeq") or "0").split()[0])
            ack = leg.dialog.build_ack(cseq, via=self._via(leg.flow))
            out.append(Send(txn.flow, ack.to_bytes()))
            self._uac_session(call, leg, response, now)
            if response.body:
                with contextlib.suppress(BadBody):
                    sdp = sdp_of(response)
                    before = leg.media_address
                    self._learn_media(call, leg, sdp, False, out)
                    if leg.media_address != before:
                        out.append(MediaTarget(call, leg.name, leg.media_address, True))
        elif response.status in (408, 481) and refresh.on_answer is None:
            self._hang_up(call, None, "failed", "edge", now, out)
            return
        # Otherwise the timer runs on: no refresh by the deadline ends the call (§10).
        if refresh.on_answer is not None:
            refresh.on_answer(response.status, now, out)

    # ------------------------------------------------------------------ transfer

    def _refer(
        self,
        call: Call,
        src: Leg,
        txn: ServerTransaction,
        request: Request,
        info: RequestInfo,
        now: float,
        out: list[Action],
    ) -> None:
        """Blind transfer (RFC 3515): ``src`` asks the edge to put a new callee in its place."""
        tag = info.to.tag
        if call.state is not CallState.ANSWERED or call.transfer is not None:
            out.extend(self._refuse(txn, request, 491, "Transfer in progress", now, tag))
            return
        values = request.headers.values("Refer-To")
        if len(values) != 1:  # RFC 3515 §2.4.1: exactly one Refer-To
            out.extend(self._refuse(txn, request, 400, "REFER needs one Refer-To", now, tag))
            return
        try:
            target = parse_refer_to(values[0])
        except SipParseError as exc:
            out.extend(self._refuse(txn, request, 400, exc.reason, now, tag))
            return
        if target.replaces is not None:
            self._attended(call, src, txn, request, target.replaces, tag, now, out)
            return
        config = self._config()
        uri = target.parsed
        settings = config.edge
        if not isinstance(uri, SipUri) or uri.host not in (settings.domain, settings.advertise):
            # The edge routes only to its own phones: never to a host a REFER names.
            self._reject("NO_ROUTE", txn.flow, f"REFER to {target.uri}")
            out.extend(self._refuse(txn, request, 403, "Transfer target not served", now, tag))
            return
        phone = config.phone_by_extension(unquote(uri.user or ""))
        if phone is None:
            out.extend(self._refuse(txn, request, 404, "No such extension", now, tag))
            return
        aor = f"sip:{phone.extension}@{settings.domain}"
        bindings = self._location.lookup(aor, now)
        if not bindings:
            out.extend(self._refuse(txn, request, 480, "Not registered", now, tag))
            return
        accepted = response_to(request, 202)  # §2.4.2
        accepted.headers.add("Contact", self._contact(src.flow))
        self._respond(txn, accepted, now, out, tag)
        self._notify(src, 100, "Trying", False, now, out)  # §2.4.4: the first NOTIFY
        other = call.other(src)
        new = Leg(src.name, bindings[0].flow, aor)
        body = b""
        if other.remote_sdp is not None:
            body = self._sdp_toward(call, new, widen_offer(sendrecv(other.remote_sdp), call.stream))
        transfer = Transfer(src, new)
        forks = Forks(transfer)
        self._fork(call, new, other.uri, bindings, "", 70, body, forks, now, out)
        if forks.branches:
            call.transfer = transfer
            log.info("call %s: %s transfers to %s", call.id, src.uri, aor)
        else:
            self._notify(src, 503, "Service Unavailable", True, now, out)

    def _attended(
        self,
        call: Call,
        src: Leg,
        txn: ServerTransaction,
        request: Request,
        replaces: Replaces,
        tag: str | None,
        now: float,
        out: list[Action],
    ) -> None:
        """Attended transfer (RFC 3515 with RFC 3891 Replaces): ``src`` talks to X in this
        call and to Y in another; the REFER names that other dialog. X and Y are joined on this
        call's relay: Y is re-INVITEd to it, and the other call ends without a word to Y."""
        found = self._dialogs.get(replaces.dialog_id())
        other = found[0] if found else None
        if found is None or other is None or other is call or other.state is not CallState.ANSWERED:
            out.extend(self._refuse(txn, request, 481, "Replaced dialog not found", now, tag))
            return
        _, replaced = found
        keep = other.other(replaced)
        if keep.dialog is None or call.other(src).remote_sdp is None or keep.offering:
            out.extend(self._refuse(txn, request, 491, "Transfer in progress", now, tag))
            return
        accepted = response_to(request, 202)
        accepted.headers.add("Contact", self._contact(src.flow))
        self._respond(txn, accepted, now, out, tag)
        self._notify(src, 100, "Trying", False, now, out)
        name = keep.name
        keep.name = src.name  # Y's SDP now describes this call's relay leg
        remote = call.other(src).remote_sdp
        assert remote is not None
        body = self._sdp_toward(call, keep, widen_offer(sendrecv(remote), call.stream))
        keep.name = name

        def joined(status: int, when: float, acts: list[Action]) -> None:
            if status >= 300:
                self._notify(src, status, REASONS.get(status, "Failed"), True, when, acts)
                return
            self._join(call, src, other, replaced, keep, when, acts)

        self._refresh(other, keep, now, out, body, joined)
        log.info("call %s: attended transfer of %s joins call %s", call.id, src.uri, other.id)

    def _join(
        self,
        call: Call,
        src: Leg,
        other: Call,
        replaced: Leg,
        keep: Leg,
        now: float,
        out: list[Action],
    ) -> None:
        """Move ``keep`` from ``other`` into ``call`` in place of ``src``; end ``other``."""
        if call.state is not CallState.ANSWERED:
            return
        keep.name = src.name
        if src is call.a:
            call.a = keep
        else:
            call.b = keep
        call.departed += [src, replaced]  # the transferor's two dialogs, until its BYEs
        for leg in (keep, replaced):
            if leg.dialog is not None:
                self._dialogs[leg.dialog.id] = (call, leg)
        if keep.remote_sdp is not None:
            self._learn_media(call, keep, keep.remote_sdp, True, out)
            offer = call.other(keep).remote_sdp
            if offer is not None:
                self._answer_toward(call, call.other(keep), offer, keep.remote_sdp, out)
        self._arm_session(call, keep)  # its RFC 4028 timer now runs in this call
        call.media_since = now
        # The other call ends with neither of its phones told: both live on elsewhere.
        for leg in (other.a, other.b):
            stand_in = Leg(leg.name, leg.flow, leg.uri)
            stand_in.media_address = leg.media_address
            if leg is other.a:
                other.a = stand_in
            else:
                other.b = stand_in
        self._end(
            other, "normal", 200, "caller" if replaced.role == "caller" else "callee", now, out
        )
        self._notify(src, 200, "OK", True, now, out)
        log.info("call %s: attended transfer done, %s joined", call.id, keep.uri)

    def _transferred(
        self,
        call: Call,
        transfer: Transfer,
        txn: ClientTransaction,
        branch: Branch,
        dialog: Dialog,
        response: Response,
        sdp: SessionDescription | None,
        planned: Planned | None,
        now: float,
        out: list[Action],
    ) -> None:
        """The transfer target answered: it takes the transferor's place (RFC 3515)."""
        call.transfer = None
        new, old = transfer.target, transfer.transferor
        new.flow = txn.flow
        new.dialog = dialog
        self._dialogs[dialog.id] = (call, new)
        self._send_ack(branch, dialog, txn.flow, b"", out)
        if old is call.a:
            call.a = new
        else:
            call.b = new
        call.departed.append(old)
        old.session.stop()
        self._uac_session(call, new, response, now)  # RFC 4028 §7.2: the target's terms
        if sdp is not None:
            self._learn_media(call, new, sdp, True, out)
            offer = call.other(new).remote_sdp
            if offer is not None:
                self._answer_toward(call, call.other(new), offer, sdp, out, planned)
        call.media_since = now
        self._notify(old, 200, "OK", True, now, out)
        log.info("call %s: transferred to %s", call.id, new.uri)

    def _notify(
        self, leg: Leg, status: int, reason: str, final: bool, now: float, out: list[Action]
    ) -> None:
        """The REFER's progress to the transferor as message/sipfrag (RFC 3515 §2.4.4-5)."""
        if leg.dialog is None:
            return
        state = subscription_terminated() if final else subscription_active(60)
        try:
            notify = leg.dialog.build_request(
                "NOTIFY",
                via=self._via(leg.flow),
                body=sipfrag(status, reason),
                content_type=SIPFRAG_CONTENT_TYPE,
                extra_headers=[("Event", refer_event()), ("Subscription-State", state)],
            )
        except DialogError:
            return
        self._send(notify, leg.flow, now, IGNORE, out)

    def _drop_departed(self, call: Call, leg: Leg) -> None:
        """A transferor's BYE: its dialog ends (it stays in ``departed`` for the record)."""
        if leg.dialog is not None:
            leg.dialog.terminate()
            self._dialogs.pop(leg.dialog.id, None)

    # ------------------------------------------------------------------ hanging up

    def shutdown(self, now: float) -> list[Action]:
        """The edge stops: every call ends now (503 to callers still waiting, BYE both ways to
        answered ones), so each one's record is written before the outbox closes."""
        out: list[Action] = []
        for call in list(self.calls.values()):
            if call.state is CallState.SETUP:
                self._fail(call, 503, "Service Unavailable", "failed", now, out)
            else:
                self._hang_up(call, None, "failed", "edge", now, out)
        return out

    def media_timeout(self, call: Call, now: float) -> list[Action]:
        """No RTP from a side for too long: BYE both ways, cause ``media-timeout``."""
        out: list[Action] = []
        if call.state is CallState.ANSWERED:
            self._hang_up(call, None, "media-timeout", "edge", now, out)
        return out

    def _hang_up(
        self,
        call: Call,
        source: Leg | None,
        cause: EndCause,
        by: HungUpBy,
        now: float,
        out: list[Action],
    ) -> None:
        """BYE to every leg but ``source`` (which sent its own), then end the call."""
        if call.state is CallState.ENDED:
            return
        if call.state is CallState.SETUP:
            # A caller's BYE in an early dialog is a CANCEL (§15).
            self._fail(call, 487, None, "cancelled", now, out)
            return
        for leg in (call.a, call.b, *call.departed):
            if leg is source or leg.dialog is None or not leg.dialog.is_confirmed:
                continue
            try:
                bye = leg.dialog.build_request("BYE", via=self._via(leg.flow))
            except DialogError:
                continue
            self._send(bye, leg.flow, now, IGNORE, out)
        self._end(call, cause, call.sip_code or 200, by, now, out)

    def _end(
        self,
        call: Call,
        cause: EndCause,
        code: int,
        by: HungUpBy | None,
        now: float,
        out: list[Action],
    ) -> None:
        if call.state is CallState.ENDED:
            return
        call.state = CallState.ENDED
        call.ended = self._wall()
        call.end_cause = cause
        call.sip_code = code
        call.hung_up_by = by
        for timer in call.timers:
            timer.cancelled = True
        call.timers.clear()
        for leg in (call.a, call.b, *call.departed):
            leg.unacked = None
            leg.session.stop()
            if leg.dialog is not None:
                leg.dialog.terminate()
                self._dialogs.pop(leg.dialog.id, None)
        self.calls.pop(call.id, None)
        log.info(
            "call %s %s -> %s ended: %s (%d) by %s",
            call.id,
            call.a.uri,
            call.b.uri,
            cause,
            code,
            by,
        )
        out.append(CallEnded(call))

    # ------------------------------------------------------------------ helpers

    def _respond(
        self,
        txn: ServerTransaction,
        response: Response,
        now: float,
        out: list[Action],
        to_tag: str | None = None,
    ) -> None:
        finish(response, to_tag)
        out.extend(self._tl.respond(txn, response, now))

    def _refuse(
        self,
        txn: ServerTransaction,
        request: Request,
        status: int,
        reason: str | None,
        now: float,
        to_tag: str | None = None,
    ) -> list[Action]:
        out: list[Action] = []
        self._respond(txn, response_to(request, status, reason), now, out, to_tag)
        return out

    def _to_caller(self, call: Call, response: Response) -> Response:
        """A response to the caller's INVITE: the call's To tag, and Contact where it makes a
        dialog (RFC 3261 §12.1.1)."""
        to = response.headers.get("To") or ""
        response.headers.set("To", f"{to};tag={call.a_tag}")
        if response.status < 300 and response.status > 100:
            response.headers.add("Contact", self._contact(call.a.flow))
        return response

    def _send(
        self, request: Request, flow: Flow, now: float, context: object, out: list[Action]
    ) -> ClientTransaction | None:
        try:
            txn, events = self._tl.send_request(request, flow, now)
        except TransactionTableFull:
            return None
        txn.context = context
        out.extend(events)
        return txn

    def _max_forwards(self, request: Request) -> int | None:
        value = request.headers.get("Max-Forwards")
        return int(value) if value is not None and value.isdigit() else None

    def _host(self) -> str:
        host = self._config().edge.advertise
        return f"[{host}]" if ":" in host else host

    def _via(self, flow: Flow) -> str:
        transport = flow.transport.upper()
        return f"SIP/2.0/{transport} {self._host()}:{flow.local[1]};branch={new_branch()};rport"

    def _contact_uri(self, flow: Flow) -> str:
        param = "" if flow.transport == "udp" else f";transport={flow.transport}"
        return f"sip:{self._host()}:{flow.local[1]}{param}"

    def _contact(self, flow: Flow) -> str:
        return f"<{self._contact_uri(flow)}>"

    def _sdp_toward(self, call: Call, leg: Leg, sdp: SessionDescription) -> bytes:
        """``sdp`` from the other side, as the edge sends it to ``leg``: the relayed stream at
        the relay, every other stream declined (port 0), the edge's own ``o=`` and ``s=``."""
        address = self._config().edge.media_address
        port = call.media_ports.get(leg.name, 0)
        ports = []
        for index, media in enumerate(sdp.media):
            if index != call.stream or port == 0:
                media.port = 0
            ports.append(port if index == call.stream else 0)
        out = rewrite_for_relay(sdp, address, [p or 1 for p in ports])
        for media, p in zip(out.media, ports, strict=True):
            if p == 0:
                media.port = 0
        out.session_name = "-"
        out.origin = Origin(
            "voxedge", leg.sdp_id, leg.sdp_version, "IN", addrtype_of(address), address
        )
        data = out.to_bytes()
        if leg.sdp_sent is not None and data != leg.sdp_sent:
            leg.sdp_version += 1  # RFC 3264 §8: a changed description has a higher version
            out.origin = replace(out.origin, session_version=leg.sdp_version)
            data = out.to_bytes()
        leg.sdp_sent = data
        return data

    def _answer_toward(
        self,
        call: Call,
        offerer: Leg,
        offer: SessionDescription,
        answer: SessionDescription,
        out: list[Action],
        planned: Planned | None = None,
    ) -> bytes:
        """``answer`` to the (widened) ``offer`` of ``offerer``, as sent back to it, and the
        relay plan bridging the two (``media.bridge``: transcoding, DTMF as INFO); ``planned``
        when that plan was made already."""
        result, fit = planned or plan(offer, answer, call.stream, offerer.name)
        call.codec = result.codec or call.codec
        call.other(offerer).codec = result.codec or call.other(offerer).codec
        offerer.codec = result.offerer_codec or offerer.codec
        out.append(MediaPlanned(call, result))
        return self._sdp_toward(call, offerer, fit)

    def dtmf(
        self, call: Call, leg: LegName, digit: str, duration_ms: int, now: float
    ) -> list[Action]:
        """A key press the relay heard on ``leg``, for a far side without telephone-event:
        SIP INFO ``application/dtmf-relay`` (the form Cisco and Asterisk use)."""
        out: list[Action] = []
        dst = call.other(call.leg(leg))
        if call.state is not CallState.ANSWERED or dst.dialog is None:
            return out
        try:
            info = dst.dialog.build_request(
                "INFO",
                via=self._via(dst.flow),
                body=dtmf_relay_body(digit, duration_ms),
                content_type=DTMF_RELAY_CONTENT_TYPE,
            )
        except (DialogError, ValueError):
            return out
        self._send(info, dst.flow, now, IGNORE, out)
        return out

    def _learn_media(
        self, call: Call, leg: Leg, sdp: SessionDescription, relatch: bool, out: list[Action]
    ) -> None:
        """Where ``leg``'s phone wants its media (its SDP), for the relay to expect."""
        if call.stream >= len(sdp.media):
            return
        media = sdp.media[call.stream]
        connection = connection_for(sdp, media)
        address = None
        if media.port != 0 and connection is not None and not is_unspecified(connection):
            address = (connection.address, media.port)
        leg.media_address = address
        leg.remote_sdp = sdp
        out.append(MediaTarget(call, leg.name, address, relatch))


def _refresh_headers(leg: Leg) -> list[tuple[str, str]]:
    """Session-timer headers of a request the edge sends ``leg`` in its dialog (§7.4): our
    terms, with the refresher as the leg's running timer has it."""
    session = leg.session
    if not session.running or session.interval is None:
        return uac_offer().headers()
    refresher: Refresher = "uac" if session.we_refresh else "uas"
    return UacOffer(int(session.interval), refresher=refresher).headers()


# How the callee's final answers become the caller's (RFC 3261 §16.7 picks the best of
# several; a B2BUA also hides what the caller cannot act on).
_BUSY = frozenset((486, 600))
_DECLINED = frozenset((603,))


def _caller_status(statuses: list[int]) -> tuple[int, str | None, EndCause]:
    """(status, reason, end cause) for the caller once every fork has failed."""
    if any(s in _BUSY for s in statuses):
        return 486, None, "busy"
    if any(s in _DECLINED for s in statuses):
        return 603, None, "busy"
    if any(s in (488, 606) for s in statuses):
        return 488, None, "failed"
    if all(s in (408, 480, 487) for s in statuses):
        return 480, None, "no-answer"
    return 480, None, "failed"

"""The registrar (RFC 3261 §10.3) with digest authentication (RFC 7616 / RFC 8760).

Pure: a validated REGISTER, its flow, the config snapshot and ``now`` in; a response out. The
asyncio glue sends it through the server transaction.
"""

from __future__ import annotations

import email.utils
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

from edge.auth import PhoneAuth, Reject
from edge.config import EdgeConfig
from edge.location import Binding, LocationService
from sip.errors import SipParseError
from sip.flow import Flow
from sip.headers import parse_name_addr, parse_uint
from sip.message import Request, Response, response_to
from sip.uri import SipUri, uri_equal
from sip.validate import MAX_EXPIRES, RequestInfo

log = logging.getLogger("voxedge.registrar")

_QVALUE_RE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")


@dataclass(slots=True)
class _ContactUpdate:
    contact: str
    uri: SipUri
    q: float
    expires: int


class Registrar:
    def __init__(
        self,
        auth: PhoneAuth,
        location: LocationService,
        reject: Reject,
        wall_clock: Callable[[], float],
    ) -> None:
        self.auth = auth
        self.location = location
        self._reject = reject  # one call per refusal: its metric and (rate-limited) log line
        self._wall_clock = wall_clock
        self._date_second = -1
        self._date_text = ""

    def handle(
        self,
        request: Request,
        info: RequestInfo,
        flow: Flow,
        config: EdgeConfig,
        now: float,
        *,
        for_us: bool = True,
    ) -> Response:
        """Answer a REGISTER; ``for_us``: the Request-URI names this registrar's domain."""
        settings = config.edge
        to_uri = info.to.parsed_uri()
        # RFC 3261 §10.3 step 1 and §10.2: the AOR must be a SIP or SIPS URI in our domain.
        if not isinstance(to_uri, SipUri):
            self._reject("BAD_AOR", flow, info.to.uri)
            return response_to(request, 400, "AOR must be a SIP or SIPS URI")
        if not for_us or to_uri.host != settings.domain.lower() or not to_uri.user:
            self._reject("NO_ROUTE", flow, f"REGISTER {info.to.uri}")
            return response_to(request, 404, "Domain not served here")
        # Step 3: authenticate (edge.auth: a challenge first, the throttle for failures).
        to_user = unquote(to_uri.user, errors="surrogateescape")
        username = self.auth.authenticate(request, flow, config, now, claimed=to_user)
        if isinstance(username, Response):
            return username
        aor = to_uri.aor()
        # Step 4: the authenticated identity may only change its own bindings.
        if username != to_user:
            self._reject("AUTH_FAILED", flow, f"user {username} may not bind {aor}")
            return response_to(request, 403, "Not allowed to register this AOR")
        try:
            updates, wildcard = _contact_updates(request, info, config)
        except SipParseError as exc:
            self._reject("BAD_REQUEST", flow, exc.reason)
            return response_to(request, exc.status, exc.reason)
        response = self._apply(request, info, flow, aor, updates, wildcard, config, now)
        if response.status == 200:
            log.debug("registered %s: %d contact(s) from %s", aor, len(updates), flow.remote[0])
        return response

    def prune(self, config: EdgeConfig, now: float) -> list[str]:
        """Drop the bindings of every AOR ``config`` no longer admits (a deleted phone, a new
        domain), so a removed phone stops being reachable at once instead of when its
        registration expires; returns those AORs. Called when a new snapshot is applied."""
        domain = config.edge.domain.lower()
        gone = []
        for aor in self.location.aors():
            user, _, host = aor.partition(":")[2].rpartition("@")
            if host != domain or config.phone_by_extension(user) is None:
                self.location.commit(aor, [], now)
                gone.append(aor)
        return gone

    def _apply(
        self,
        request: Request,
        info: RequestInfo,
        flow: Flow,
        aor: str,
        updates: list[_ContactUpdate],
        wildcard: bool,
        config: EdgeConfig,
        now: float,
    ) -> Response:
        current = self.location.lookup(aor, now)
        if wildcard:
            # §10.3 step 6: '*' removes every binding unless one is newer (same Call-ID,
            # higher or equal CSeq).
            for binding in current:
                if binding.call_id == info.call_id and binding.cseq >= info.cseq:
                    self._reject("OUT_OF_ORDER", flow, aor)
                    return response_to(request, 500, "CSeq out of order")
            self.location.commit(aor, [], now)
            return self._ok(request, [], now)
        minimum = config.edge.min_expires
        for update in updates:
            if 0 < update.expires < minimum:
                # §10.3 step 7 / §20.23: too brief, say the minimum.
                self._reject("INTERVAL_TOO_BRIEF", flow, f"{aor} expires {update.expires}")
                response = response_to(request, 423)
                response.headers.add("Min-Expires", str(minimum))
                return response
        result = list(current)
        for update in updates:
            existing = next((b for b in result if uri_equal(b.uri, update.uri)), None)
            if existing is not None:
                # §10.3 step 7: same Call-ID must come with a higher CSeq.
                if existing.call_id == info.call_id and existing.cseq >= info.cseq:
                    self._reject("OUT_OF_ORDER", flow, aor)
                    return response_to(request, 500, "CSeq out of order")
                result.remove(existing)
            if update.expires > 0:
                expires = min(update.expires, config.edge.max_expires)
                result.append(
                    Binding(
                        aor,
                        update.contact,
                        update.uri,
                        update.q,
                        now + expires,
                        info.call_id,
                        info.cseq,
                        flow,
                    )
                )
        if len(result) > self.location.max_bindings_per_aor:
            self._reject("TOO_MANY_CONTACTS", flow, aor)
            return response_to(request, 403, "Too many contacts for this AOR")
        # Step 7: all updates succeeded, so they become visible together.
        if updates:
            self.location.commit(aor, result, now)
        return self._ok(request, result, now)

    def _ok(self, request: Request, bindings: list[Binding], now: float) -> Response:
        response = response_to(request, 200)
        # §10.3 step 8: every current binding with its expiry, and a Date header.
        for binding in bindings:
            q = f";q={binding.q:g}" if binding.q != 1.0 else ""
            response.headers.add(
                "Contact", f"<{binding.contact}>;expires={binding.remaining(now)}{q}"
            )
        response.headers.add("Date", self._date())
        return response

    def _date(self) -> str:
        """RFC 1123 date for the ``Date`` header (RFC 3261 §20.17), made once per second."""
        second = int(self._wall_clock())
        if second != self._date_second:
            self._date_second = second
            self._date_text = email.utils.formatdate(second, usegmt=True)
        return self._date_text


def _contact_updates(
    request: Request, info: RequestInfo, config: EdgeConfig
) -> tuple[list[_ContactUpdate], bool]:
    """The Contact values of a REGISTER with their expiry and q (RFC 3261 §10.3 steps 6-7)."""
    values = request.headers.values("Contact")
    if values == ["*"]:
        # §10.3 step 6: '*' only with Expires: 0 and no other Contact.
        if info.expires != 0:
            raise SipParseError("Wildcard Contact requires Expires: 0")
        return [], True
    if "*" in values:
        raise SipParseError("Wildcard Contact must be alone")
    default = info.expires if info.expires is not None else config.edge.default_expires
    updates: list[_ContactUpdate] = []
    for value in values:
        contact = parse_name_addr(value, "Contact")
        uri = contact.parsed_uri()
        if not isinstance(uri, SipUri):
            raise SipParseError("Contact must be a SIP or SIPS URI")
        expires_param = contact.params.get("expires")
        expires = (
            parse_uint(expires_param, "Contact expires", MAX_EXPIRES)
            if expires_param is not None
            else default
        )
        q = _parse_q(contact.params.get("q"))
        updates.append(_ContactUpdate(contact.uri, uri, q, expires))
    return updates, False


def _parse_q(value: str | None) -> float:
    """qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ) (RFC 3261 §25.1)."""
    if value is None:
        return 1.0
    if not _QVALUE_RE.fullmatch(value):
        raise SipParseError("Malformed Contact q value")
    return float(value)

"""Digest authentication of phones, for REGISTER (401) and for calls (407).

Pure: a request, its flow, the config snapshot and ``now`` in; the authenticated username or
the response to send out. RFC 3261 §22.2 (UA authentication: ``WWW-Authenticate`` /
``Authorization``, ``401``) and §22.3 (proxy-to-user: ``Proxy-Authenticate`` /
``Proxy-Authorization``, ``407``), with RFC 7616/8760 digests from ``sip.digest``. Failed
attempts feed the per-source throttle (DESIGN.md principle 3).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from edge.config import DEFAULT_DIGEST_ALGORITHMS, EdgeConfig
from edge.limits import AuthFailureThrottle
from sip.digest import DigestAuthenticator, DigestError, parse_credentials
from sip.flow import Flow
from sip.message import Request, Response, response_to

log = logging.getLogger("voxedge.auth")

Reject = Callable[[str, Flow, str], None]  # (reason, flow, detail): count and log


class PhoneAuth:
    """Challenges and verifies phones' digest credentials under the edge's domain (realm)."""

    def __init__(
        self, authenticator: DigestAuthenticator, throttle: AuthFailureThrottle, reject: Reject
    ) -> None:
        self.authenticator = authenticator
        self.throttle = throttle
        self._reject = reject

    def authenticate(
        self,
        request: Request,
        flow: Flow,
        config: EdgeConfig,
        now: float,
        *,
        claimed: str,
        proxy: bool = False,
    ) -> str | Response:
        """The authenticated phone's username, or the ``401``/``407``/``400``/``403`` to send.

        ``claimed`` is the user the request speaks for (To of a REGISTER, From of an INVITE):
        it picks the digest algorithms of the challenge (some UAs choke on SHA-256); unknown
        users get the default so that a challenge does not tell who exists. ``proxy`` selects
        the §22.3 header pair and ``407``. A request without usable Digest credentials gets a
        challenge, which is not a failure (§22.2; RFC 4475 §3.3.7 for unknown schemes).
        """
        source_ip = flow.remote[0]
        if self.throttle.is_blocked(source_ip, now):
            self._reject("AUTH_THROTTLED", flow, claimed)
            return response_to(request, 403, "Too many failed authentications")
        phone = config.phone_by_extension(claimed)
        algorithms = tuple(phone.ha1) if phone is not None else DEFAULT_DIGEST_ALGORITHMS
        name = "Proxy-Authorization" if proxy else "Authorization"
        header = request.headers.get(name)
        creds = None
        if header is not None:
            try:
                creds = parse_credentials(header)
            except DigestError as exc:
                self._reject("BAD_REQUEST", flow, f"{name}: {exc.reason}")
                return response_to(request, 400, f"Malformed {name}: {exc.reason}")
            if creds.scheme.lower() != "digest" or creds.realm != config.edge.domain:
                creds = None  # someone else's credentials: challenge for ours
        if creds is None:
            return self._challenge(request, now, False, algorithms, proxy)
        result = self.authenticator.verify(creds, request.method, _ha1_lookup(config), now)
        if result.ok and result.username is not None:
            self.throttle.record_success(source_ip)
            return result.username
        if result.stale:
            return self._challenge(request, now, True, algorithms, proxy)
        self._reject("AUTH_FAILED", flow, f"user {result.username}: {result.reason}")
        if self.throttle.record_failure(source_ip, now):
            log.warning(
                "auth throttle: source %s blocked after repeated failures (last user %s)",
                source_ip,
                result.username,
            )
        return response_to(request, 403, "Authentication failed")

    def _challenge(
        self,
        request: Request,
        now: float,
        stale: bool,
        algorithms: tuple[str, ...],
        proxy: bool,
    ) -> Response:
        response = response_to(request, 407 if proxy else 401)
        header = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        for value in self.authenticator.challenge_values(now, stale, algorithms):
            response.headers.add(header, value)
        return response


def _ha1_lookup(config: EdgeConfig) -> Callable[[str, str], str | None]:
    def lookup(username: str, algorithm: str) -> str | None:
        phone = config.phone_by_extension(username)
        return phone.ha1.get(algorithm) if phone is not None else None

    return lookup

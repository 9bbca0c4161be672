"""Digest authentication (RFC 7616, RFC 8760, RFC 3261 §22), sans-I/O.

The server side is :class:`DigestAuthenticator`: it issues challenges with stateless nonces
(issue time + counter + HMAC-SHA256 under a secret), verifies credentials against stored HA1
values, and refuses nonce-count replays with a bounded table. Time always comes in as ``now``.

What the caller still owns: checking that ``creds.uri`` is the Request-URI (RFC 3261 §22.4,
RFC 7616 §3.4.6 — URI equality belongs to the SIP URI module), that the authenticated username
is allowed to act for the From/To identity, and the ACK/CANCEL rules of RFC 3261 §22.1.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

# RFC 8760 §2: the algorithms a SIP UAS may offer; the token is what goes on the wire.
HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


def ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    """H(username ":" realm ":" password), RFC 7616 §3.4.2, as stored per algorithm."""
    return HASHES[algorithm](f"{username}:{realm}:{password}".encode()).hexdigest()


# Wire token (upper-cased, RFC 7616 §3.3 tokens compare case-insensitively here) ->
# (base algorithm whose HA1 is stored, is a -sess variant). RFC 7616 §3.4.2.
_ALGORITHMS: dict[str, tuple[str, bool]] = {
    "MD5": ("MD5", False),
    "MD5-SESS": ("MD5", True),
    "SHA-256": ("SHA-256", False),
    "SHA-256-SESS": ("SHA-256", True),
}

# Limits (DESIGN.md principle 3: every size and count has a limit).
MAX_CREDENTIALS_LENGTH = 4096
MAX_AUTH_PARAMS = 32
_MAX_NAME_IN_REASON = 32

# RFC 3261 §25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
# RFC 3261 §25.1: LWS = [*WSP CRLF] 1*WSP; SWS = [LWS]
_SWS = re.compile(r"(?:[ \t]*\r\n)?[ \t]+")
# The common case in one match: name = token or a quoted string without escapes or folds.
_PARAM_FAST = re.compile(
    r"([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*=[ \t]*"
    r'(?:"([^"\\\x00-\x08\x0a-\x1f\x7f]*)"|([A-Za-z0-9\-.!%*_+`\'~]+))'
)
_COMMA_FAST = re.compile(r"[ \t]*,[ \t]*")
# Characters a quoted string must not carry raw (RFC 3261 §25.1 qdtext excludes CTLs but HT).
_QUOTED_BAD = re.compile(r'["\\\x00-\x08\x0a-\x1f\x7f]')
# RFC 7616 §3.4: nc-value = 8LHEX
_NC = re.compile(r"[0-9A-Fa-f]{8}")

# Nonce layout: issue time (IEEE double, big endian), counter (u32), truncated HMAC-SHA256.
# 8 + 4 + 24 = 36 bytes -> exactly 48 base64url characters, never any padding.
_NONCE_HEAD = struct.Struct(">dI")
_NONCE_MAC_LEN = 24
_NONCE_LEN = 48
_NONCE_CHARS = re.compile(r"[A-Za-z0-9_-]{48}")
# A nonce used without qop is single-use: record it above any 8-hex nonce-count.
_NC_CONSUMED = 1 << 32
_MIN_SECRET_LENGTH = 16


class DigestError(ValueError):
    """Malformed credentials; ``reason`` names the fault (fit for a 400 reason phrase)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Credentials:
    """One parsed Authorization / Proxy-Authorization value (RFC 3261 §22.4, RFC 7616 §3.4)."""

    scheme: str
    username: str | None = None
    realm: str | None = None
    nonce: str | None = None
    uri: str | None = None
    response: str | None = None
    algorithm: str = "MD5"  # RFC 7616 §3.4: absent means MD5
    cnonce: str | None = None
    opaque: str | None = None
    qop: str | None = None
    nc: str | None = None
    params: dict[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class AuthResult:
    """Outcome of :meth:`DigestAuthenticator.verify`.

    ``stale`` is set only when the digest itself was right but the nonce can no longer be used,
    so the caller re-challenges with ``stale=true`` instead of counting an auth failure
    (RFC 7616 §3.3).
    """

    ok: bool
    stale: bool
    username: str | None
    reason: str


def _short(name: str) -> str:
    return name[:_MAX_NAME_IN_REASON]


def _skip_sws(value: str, pos: int) -> int:
    m = _SWS.match(value, pos)
    return m.end() if m else pos


def _quoted_string(value: str, pos: int) -> tuple[str, int]:
    """Unquote the quoted-string opening at ``value[pos]``; RFC 3261 §25.1."""
    end = len(value)
    # Fast path: no escapes and no control characters before the closing quote.
    close = value.find('"', pos + 1)
    if close != -1:
        body = value[pos + 1 : close]
        if _QUOTED_BAD.search(body) is None:
            return body, close + 1
    out: list[str] = []
    i = pos + 1
    while i < end:
        c = value[i]
        if c == '"':
            return "".join(out), i + 1
        if c == "\\":
            # quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
            if i + 1 >= end:
                break
            escaped = value[i + 1]
            if escaped in "\r\n" or ord(escaped) > 0x7F:
                raise DigestError("bad quoted-pair in quoted string")
            out.append(escaped)
            i += 2
            continue
        if c == "\r":
            # A folded line (CRLF WSP) inside qdtext is LWS; anything else is a bare CR.
            folded = _SWS.match(value, i)
            if folded is None:
                raise DigestError("control character in quoted string")
            out.append(" ")
            i = folded.end()
            continue
        if (ord(c) < 0x20 and c != "\t") or c == "\x7f":
            raise DigestError("control character in quoted string")
        out.append(c)
        i += 1
    raise DigestError("unterminated quoted string")


def _auth_param(value: str, pos: int) -> tuple[str, str, int]:
    """``auth-param = token EQUAL ( token / quoted-string )``, the general (slow) path."""
    end = len(value)
    m = _TOKEN.match(value, pos)
    if m is None:
        raise DigestError("expected auth-param name")
    name = m.group().lower()
    i = _skip_sws(value, m.end())
    if i == end or value[i] != "=":
        raise DigestError(f"missing '=' after {_short(name)}")
    i = _skip_sws(value, i + 1)
    if i < end and value[i] == '"':
        param_value, i = _quoted_string(value, i)
        return name, param_value, i
    m = _TOKEN.match(value, i)
    if m is None:
        raise DigestError(f"bad value for {_short(name)}")
    return name, m.group(), m.end()


def parse_credentials(value: str) -> Credentials:
    """Parse ``credentials = auth-scheme LWS auth-param *(COMMA auth-param)`` (RFC 3261 §25.1).

    Any scheme parses; the caller treats a non-Digest scheme as no credentials. Raises
    :class:`DigestError` for anything malformed.
    """
    if len(value) > MAX_CREDENTIALS_LENGTH:
        raise DigestError("credentials too long")
    end = len(value)
    i = _skip_sws(value, 0)
    if i == end:
        raise DigestError("empty credentials")
    m = _TOKEN.match(value, i)
    if m is None:
        raise DigestError("bad auth-scheme")
    scheme = m.group()
    i = m.end()
    after_scheme = _skip_sws(value, i)
    if after_scheme == end:
        return Credentials(scheme=scheme)
    if after_scheme == i:
        raise DigestError("missing space after auth-scheme")
    i = after_scheme

    params: dict[str, str] = {}
    while True:
        # RFC 7616 §3.4: parameter names are case-insensitive.
        fast = _PARAM_FAST.match(value, i)
        if fast is not None:
            name = fast[1].lower()
            param_value = fast[2] if fast[2] is not None else fast[3]
            i = fast.end()
        else:
            name, param_value, i = _auth_param(value, i)
        # Two usernames (or realms, nonces...) would make the credentials ambiguous.
        if name in params:
            raise DigestError(f"duplicate parameter {_short(name)}")
        if len(params) == MAX_AUTH_PARAMS:
            raise DigestError("too many auth-params")
        params[name] = param_value
        if i == end:
            break
        separator = _COMMA_FAST.match(value, i)  # the common ", " between parameters
        if separator is not None and separator.end() < end and value[separator.end()] != "\r":
            i = separator.end()
            continue
        i = _skip_sws(value, i)
        if i == end:
            break
        if value[i] != ",":
            raise DigestError(f"expected ',' after {_short(name)}")
        i = _skip_sws(value, i + 1)
        if i == end:
            raise DigestError("trailing ','")

    return Credentials(
        scheme=scheme,
        username=params.get("username"),
        realm=params.get("realm"),
        nonce=params.get("nonce"),
        uri=params.get("uri"),
        response=params.get("response"),
        algorithm=params.get("algorithm", "MD5"),
        cnonce=params.get("cnonce"),
        opaque=params.get("opaque"),
        qop=params.get("qop"),
        nc=params.get("nc"),
        params=params,
    )


def compute_response(
    ha1_hex: str,
    *,
    algorithm: str,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
) -> str:
    """The request-digest for a stored HA1 (RFC 7616 §3.4.1; RFC 2069 form when qop is None).

    Serves both the verifier and a UAC answering a challenge (e.g. an outbound trunk).
    """
    try:
        base, sess = _ALGORITHMS[algorithm.upper()]
    except KeyError:
        raise DigestError("unsupported algorithm") from None
    hash_fn = HASHES[base]

    def h(text: str) -> str:
        return hash_fn(text.encode()).hexdigest()

    ha1_value = ha1_hex.lower()
    if sess:
        # RFC 7616 §3.4.2: HA1 = H(H(user:realm:password):nonce:cnonce) for -sess
        if cnonce is None:
            raise DigestError("missing parameter cnonce")
        ha1_value = h(f"{ha1_value}:{nonce}:{cnonce}")
    # RFC 7616 §3.4.3: qop=auth -> A2 = Method ":" request-uri
    ha2 = h(f"{method}:{uri}")
    if qop is None:
        # RFC 2069 §2.1.1 / RFC 3261 §22.4 compatibility: no qop, no nc, no cnonce
        return h(f"{ha1_value}:{nonce}:{ha2}")
    if qop.lower() != "auth":
        raise DigestError("unsupported qop")
    if nc is None or cnonce is None:
        raise DigestError("missing parameter " + ("nc" if nc is None else "cnonce"))
    return h(f"{ha1_value}:{nonce}:{nc}:{cnonce}:auth:{ha2}")


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class DigestAuthenticator:
    """Challenges and verifies digest credentials for one realm (UAS or proxy side)."""

    __slots__ = (
        "_counter",
        "_evicted_through",
        "_highest_nc",
        "_mac",
        "_max_tracked",
        "_opaque",
        "_order",
        "_realm",
        "_realm_quoted",
        "_ttl",
    )

    def __init__(
        self,
        secret: bytes,
        realm: str,
        nonce_ttl: float = 300.0,
        max_tracked_nonces: int = 100_000,
    ) -> None:
        if len(secret) < _MIN_SECRET_LENGTH:
            raise ValueError(f"secret must be at least {_MIN_SECRET_LENGTH} bytes")
        if not realm or any(ord(c) < 0x20 or c == "\x7f" for c in realm):
            raise ValueError("realm must be non-empty and free of control characters")
        if not nonce_ttl > 0:
            raise ValueError("nonce_ttl must be positive")
        if max_tracked_nonces < 1:
            raise ValueError("max_tracked_nonces must be at least 1")
        self._realm = realm
        self._realm_quoted = _quote(realm)
        self._ttl = nonce_ttl
        self._max_tracked = max_tracked_nonces
        # Domain-separated MACs under one key: nonces and the opaque value.
        self._mac = hmac.new(secret, b"voxedge digest nonce\x00" + realm.encode(), "sha256")
        opaque_mac = hmac.new(secret, b"voxedge digest opaque\x00" + realm.encode(), "sha256")
        self._opaque = opaque_mac.hexdigest()[:32]
        self._counter = 0
        # RFC 7616 §3.4 / §5.6: highest nonce-count accepted per nonce, and the nonces ordered
        # by issue time (a heap) so expiry pruning and eviction both pop the oldest.
        self._highest_nc: dict[str, int] = {}
        self._order: list[tuple[float, str]] = []
        # Newest issue time ever evicted while still valid: such nonces are no longer tracked,
        # so any untracked nonce issued up to here is refused as stale rather than replayable.
        self._evicted_through = float("-inf")

    # -- challenges ---------------------------------------------------------------------------

    def _new_nonce(self, now: float) -> str:
        self._counter = (self._counter + 1) & 0xFFFFFFFF
        head = _NONCE_HEAD.pack(now, self._counter)
        mac = self._mac.copy()
        mac.update(head)
        raw = head + mac.digest()[:_NONCE_MAC_LEN]
        return base64.urlsafe_b64encode(raw).decode("ascii")

    def _nonce_issued_at(self, nonce: str) -> float | None:
        """Issue time of a nonce this authenticator minted, or None if it did not."""
        if len(nonce) != _NONCE_LEN or _NONCE_CHARS.fullmatch(nonce) is None:
            return None
        raw = base64.urlsafe_b64decode(nonce)
        head, tag = raw[: _NONCE_HEAD.size], raw[_NONCE_HEAD.size :]
        mac = self._mac.copy()
        mac.update(head)
        if not hmac.compare_digest(mac.digest()[:_NONCE_MAC_LEN], tag):
            return None
        issued: float = _NONCE_HEAD.unpack(head)[0]
        return issued

    def challenge_values(
        self,
        now: float,
        stale: bool = False,
        algorithms: Sequence[str] = ("SHA-256", "MD5"),
    ) -> list[str]:
        """WWW-Authenticate (401) / Proxy-Authenticate (407) values, SHA-256 first by default.

        RFC 8760 §2.4 / RFC 7616 §3.7: one challenge per algorithm, the preferred one first.
        """
        nonce = self._new_nonce(now)
        tail = ', qop="auth"' + (", stale=true" if stale else "")
        return [
            f'Digest realm={self._realm_quoted}, nonce="{nonce}", opaque="{self._opaque}", '
            f"algorithm={algorithm}{tail}"
            for algorithm in algorithms
        ]

    # -- verification -------------------------------------------------------------------------

    def verify(
        self,
        creds: Credentials,
        method: str,
        lookup_ha1: Callable[[str, str], str | None],
        now: float,
    ) -> AuthResult:
        """Check ``creds`` for a request with ``method``; ``lookup_ha1(username, algorithm)``
        returns the stored HA1 hex for the base algorithm ("MD5" or "SHA-256") or None."""
        user = creds.username

        def fail(reason: str, stale: bool = False) -> AuthResult:
            return AuthResult(ok=False, stale=stale, username=user, reason=reason)

        if creds.scheme.lower() != "digest":
            return fail("not digest")
        username, nonce, uri, response = creds.username, creds.nonce, creds.uri, creds.response
        if username is None:
            return fail("missing parameter username")
        if creds.realm is None:
            return fail("missing parameter realm")
        if nonce is None:
            return fail("missing parameter nonce")
        if uri is None:
            return fail("missing parameter uri")
        if response is None:
            return fail("missing parameter response")

        algorithm = _ALGORITHMS.get(creds.algorithm.upper())
        if algorithm is None:
            return fail("unsupported algorithm")
        base, sess = algorithm
        # RFC 7616 §3.4.4: a hashed username would need a per-user lookup by hash; not offered.
        if creds.params.get("userhash", "false").lower() == "true":
            return fail("unsupported userhash")
        qop = creds.qop
        nc_value = 0
        if qop is not None:
            if qop.lower() != "auth":  # auth-int needs the body; never offered
                return fail("unsupported qop")
            if creds.nc is None:
                return fail("missing parameter nc")
            if creds.cnonce is None:
                return fail("missing parameter cnonce")
            if _NC.fullmatch(creds.nc) is None:
                return fail("bad nonce-count")
            nc_value = int(creds.nc, 16)
        elif sess and creds.cnonce is None:
            return fail("missing parameter cnonce")

        # RFC 3261 §22.4: the realm must be one this server challenged with.
        if creds.realm != self._realm:
            return fail("realm mismatch")
        issued = self._nonce_issued_at(nonce)
        if issued is None:
            return fail("nonce forged")
        # RFC 7616 §3.4: opaque SHOULD be returned unchanged; tolerate its absence.
        if creds.opaque is not None and not hmac.compare_digest(
            creds.opaque.encode(), self._opaque.encode()
        ):
            return fail("opaque mismatch")

        stored = lookup_ha1(username, base)
        if stored is None:
            return fail("unknown user")
        expected = compute_response(
            stored,
            algorithm=creds.algorithm,
            nonce=nonce,
            method=method,
            uri=uri,
            qop=qop,
            nc=creds.nc,
            cnonce=creds.cnonce,
        )
        if not hmac.compare_digest(expected.encode(), response.lower().encode()):
            return fail("bad response")

        # RFC 7616 §3.3: right digest on an unusable nonce -> stale, the client retries silently.
        if now >= issued + self._ttl:
            return fail("stale nonce", stale=True)
        highest = self._highest_nc.get(nonce)
        if highest is None and issued <= self._evicted_through:
            return fail("nonce no longer tracked", stale=True)
        # RFC 7616 §3.4 / §5.6: nonce-count must strictly increase; without qop there is no
        # count, so the nonce is single-use (otherwise a captured request replays until expiry).
        used_nc = nc_value if qop is not None else _NC_CONSUMED
        if highest is not None and (qop is None or nc_value <= highest):
            return fail("nonce-count replay")
        if highest is None:
            self._track(nonce, issued, now)
        self._highest_nc[nonce] = used_nc
        return AuthResult(ok=True, stale=False, username=username, reason="ok")

    def _track(self, nonce: str, issued: float, now: float) -> None:
        order = self._order
        while order and (len(order) >= self._max_tracked or order[0][0] + self._ttl <= now):
            oldest_issued, oldest = heapq.heappop(order)
            del self._highest_nc[oldest]
            if oldest_issued + self._ttl > now:
                self._evicted_through = max(self._evicted_through, oldest_issued)
        heapq.heappush(order, (issued, nonce))

    # -- timers (sans-I/O convention, DESIGN.md principle 1) ----------------------------------

    @property
    def tracked_nonces(self) -> int:
        """How many nonces the replay table holds (a gauge for metrics)."""
        return len(self._order)

    def next_deadline(self) -> float | None:
        """When the earliest tracked nonce expires, or None with nothing tracked."""
        return self._order[0][0] + self._ttl if self._order else None

    def handle_timer(self, now: float) -> None:
        """Forget nonces that have expired; they would be answered stale anyway."""
        order = self._order
        while order and order[0][0] + self._ttl <= now:
            _, nonce = heapq.heappop(order)
            del self._highest_nc[nonce]

"""Call transfer pieces, sans-I/O: REFER (RFC 3515), Replaces (RFC 3891), message/sipfrag
(RFC 3420) NOTIFY bodies, and the application/dtmf-relay INFO body.

Parsers raise ``SipParseError`` (status 400) with a reason naming the fault; builders raise
``ValueError`` for arguments that cannot be written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from urllib.parse import unquote_to_bytes

from sip.dialog import DialogId
from sip.errors import SipParseError
from sip.headers import parse_name_addr, quoted_string_end
from sip.message import header_key
from sip.parser import TOKEN_RE
from sip.uri import SipUri, Uri

# RFC 3261 §25.1 has callid = word ["@" word]; like sip.validate, any Call-ID without white
# space or control characters is accepted, so every dialog we hold can be named. A ';' would
# end the Call-ID inside Replaces (RFC 3891 §6.1), so it cannot be written there.
_CALL_ID_RE = re.compile(r"[^\s;\x00-\x1f\x7f]+")
_GEN_VALUE_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~:\[\]]+")  # token / host (RFC 3261 §25.1)
_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f]")  # control characters (CR, LF, NUL…)

# RFC 3515 §2.4.5 / RFC 3420: the NOTIFY body type reporting a REFER's progress.
SIPFRAG_CONTENT_TYPE = "message/sipfrag;version=2.0"
DTMF_RELAY_CONTENT_TYPE = "application/dtmf-relay"


# --- Replaces (RFC 3891) -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Replaces:
    """A Replaces value (RFC 3891 §6.1): the dialog an INVITE replaces.

    The tags are seen by the UA that *receives* the INVITE with Replaces (RFC 3891 §3): its
    local tag is ``to_tag``, its remote tag ``from_tag``.
    """

    call_id: str
    to_tag: str
    from_tag: str
    early_only: bool = False

    def dialog_id(self) -> DialogId:
        """The id of the replaced dialog for the UA receiving the INVITE (our dialog table)."""
        return DialogId(self.call_id, self.to_tag, self.from_tag)

    def __str__(self) -> str:
        return format_replaces(self.call_id, self.to_tag, self.from_tag, early_only=self.early_only)


def _split_params(text: str, what: str) -> list[tuple[str, str | None]]:
    """``a=b;c;d="x;y"`` -> [(name lower-cased, value or None)], in order, duplicates kept."""
    items: list[str] = []
    start = 0
    i = 0
    while i < len(text):
        if text[i] == '"':
            try:
                i = quoted_string_end(text, i)
            except SipParseError as exc:
                raise SipParseError(f"Malformed {what} parameter") from exc
            continue
        if text[i] == ";":
            items.append(text[start:i])
            start = i + 1
        i += 1
    items.append(text[start:])
    out: list[tuple[str, str | None]] = []
    for item in items:
        name, eq, value = item.partition("=")
        name = name.strip()
        value = value.strip()
        if not TOKEN_RE.fullmatch(name):
            raise SipParseError(f"Malformed {what} parameter")
        if eq and not _gen_value_ok(value):
            raise SipParseError(f"Malformed {what} parameter")
        out.append((name.lower(), value if eq else None))
    return out


def _gen_value_ok(value: str) -> bool:
    """gen-value = token / host / quoted-string (RFC 3261 §25.1)."""
    if _GEN_VALUE_RE.fullmatch(value):
        return True
    if not value.startswith('"'):
        return False
    try:
        return quoted_string_end(value, 0) == len(value)
    except SipParseError:
        return False


def parse_replaces(value: str) -> Replaces:
    """``Replaces`` (RFC 3891 §6.1).

    Replaces       = "Replaces" HCOLON callid *(SEMI replaces-param)
    replaces-param = to-tag / from-tag / early-flag / generic-param
    to-tag = "to-tag" EQUAL token; from-tag = "from-tag" EQUAL token; early-flag = "early-only"
    Exactly one to-tag and one from-tag are REQUIRED (§6.1).
    """
    call_id, semi, param_text = value.partition(";")
    call_id = call_id.strip()
    if not call_id:
        raise SipParseError("Replaces without Call-ID")
    if not _CALL_ID_RE.fullmatch(call_id):
        raise SipParseError("Malformed Replaces Call-ID")
    tags: dict[str, str] = {}
    early_only = False
    for name, param in _split_params(param_text, "Replaces") if semi else []:
        if name in ("to-tag", "from-tag"):
            if name in tags:
                raise SipParseError(f"Multiple {name} in Replaces")
            if param is None or not TOKEN_RE.fullmatch(param):
                raise SipParseError(f"Malformed {name} in Replaces")
            tags[name] = param
        elif name == "early-only":
            if param is not None:
                raise SipParseError("Malformed early-only in Replaces")
            early_only = True
    for name in ("to-tag", "from-tag"):
        if name not in tags:
            raise SipParseError(f"Replaces without {name}")
    return Replaces(call_id, tags["to-tag"], tags["from-tag"], early_only)


def format_replaces(call_id: str, to_tag: str, from_tag: str, *, early_only: bool = False) -> str:
    """A Replaces value (RFC 3891 §6.1), e.g. for an INVITE replacing a dialog."""
    if not _CALL_ID_RE.fullmatch(call_id):
        raise ValueError("Call-ID is not a valid callid (RFC 3261 §25.1)")
    if not TOKEN_RE.fullmatch(to_tag) or not TOKEN_RE.fullmatch(from_tag):
        raise ValueError("tags must be tokens (RFC 3891 §6.1)")
    flag = ";early-only" if early_only else ""
    return f"{call_id};to-tag={to_tag};from-tag={from_tag}{flag}"


# --- Refer-To (RFC 3515 §2.1) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReferTarget:
    """A parsed Refer-To.

    ``uri``: the target without its embedded headers, i.e. the Request-URI of the INVITE to
    send (RFC 3261 §19.1.5); ``parsed``: its typed view. ``headers``: the URI's embedded
    headers, unescaped, in order (RFC 3261 §19.1.1); ``replaces``: the embedded Replaces, parsed
    (RFC 3891 §3). ``params``: the Refer-To header's own parameters.
    """

    uri: str
    parsed: Uri
    display: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: tuple[tuple[str, str], ...] = ()
    replaces: Replaces | None = None

    @property
    def method(self) -> str:
        """The method to use on the target: the URI's ``method`` parameter, else INVITE
        (RFC 3261 §19.1.1, RFC 3515 §2.4.2)."""
        if isinstance(self.parsed, SipUri):
            method = self.parsed.params.get("method")
            if method:
                return method.upper()
        return "INVITE"


def _unescape(text: str) -> str:
    try:
        out = unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SipParseError("Malformed Refer-To: bad escape in URI header") from exc
    # An escaped CR/LF/NUL would smuggle a header line into the INVITE built from it.
    if _UNSAFE_CHARS.search(out):
        raise SipParseError("Malformed Refer-To: control character in URI header")
    return out


def parse_refer_to(value: str) -> ReferTarget:
    """``Refer-To`` / ``r`` (RFC 3515 §2.1): (name-addr / addr-spec) *(SEMI generic-param).

    A URI with embedded headers must be in <> (RFC 3515 §2.1, RFC 3261 §20). Raises
    ``SipParseError`` naming the fault.
    """
    if not value.strip():
        raise SipParseError("Empty Refer-To")
    addr = parse_name_addr(value, "Refer-To")
    parsed = addr.parsed_uri()
    uri = addr.uri
    headers: list[tuple[str, str]] = []
    replaces: Replaces | None = None
    if isinstance(parsed, SipUri) and parsed.headers:
        # sip.uri keeps the headers in a dict, which hides repeats: split the text again. The
        # last '@' ends the userinfo (which may hold '?'), and the first '?' after it starts the
        # headers (RFC 3261 §19.1.1, §25.1).
        question = uri.find("?", uri.rfind("@") + 1)
        uri, header_text = uri[:question], uri[question + 1 :]
        for item in header_text.split("&"):
            raw_name, _, raw_value = item.partition("=")
            name = _unescape(raw_name)
            text = _unescape(raw_value)
            headers.append((name, text))
            if header_key(name) == "replaces":
                if replaces is not None:
                    raise SipParseError("Malformed Refer-To: multiple Replaces")
                try:
                    replaces = parse_replaces(text)
                except SipParseError as exc:
                    raise SipParseError(f"Malformed Refer-To: {exc.reason}") from exc
        parsed = replace(parsed, headers={})
    return ReferTarget(uri, parsed, addr.display, dict(addr.params), tuple(headers), replaces)


# --- NOTIFY for the implicit subscription (RFC 3515 §2.4.4 - §2.4.7, RFC 3420) -------------------


def sipfrag(status: int, reason: str) -> bytes:
    """A message/sipfrag NOTIFY body: a bare Status-Line (RFC 3515 §2.4.5, RFC 3420 §2)."""
    if not 100 <= status <= 699:
        raise ValueError("status must be 100..699")
    if _UNSAFE_CHARS.search(reason.replace("\t", " ")):
        raise ValueError("reason must not contain control characters")
    return f"SIP/2.0 {status} {reason}\r\n".encode()


def refer_event(refer_cseq: int | None = None) -> str:
    """The NOTIFY's Event value: ``refer``; ``refer;id=<CSeq of the REFER>`` when the dialog
    carried more than one REFER (RFC 3515 §2.4.6)."""
    if refer_cseq is None:
        return "refer"
    if not 0 <= refer_cseq <= 2**32 - 1:
        raise ValueError("CSeq out of range")
    return f"refer;id={refer_cseq}"


def subscription_active(expires: int) -> str:
    """Subscription-State of a NOTIFY while the referred request is in progress
    (RFC 3515 §2.4.7, RFC 6665 §4.1.3)."""
    if expires < 0:
        raise ValueError("expires must not be negative")
    return f"active;expires={expires}"


def subscription_terminated(reason: str = "noresource") -> str:
    """Subscription-State of the final NOTIFY: the REFER's subscription ends with reason
    "noresource" (RFC 3515 §2.4.7)."""
    if not TOKEN_RE.fullmatch(reason):
        raise ValueError("reason must be a token")
    return f"terminated;reason={reason}"


# --- DTMF relay over INFO (application/dtmf-relay, de facto: Cisco, Asterisk) ------------------

_DIGITS = frozenset("0123456789*#ABCD")
MAX_DTMF_DURATION_MS = 60_000


def dtmf_relay_body(digit: str, duration_ms: int) -> bytes:
    """``Signal=5\\r\\nDuration=160\\r\\n`` for an INFO with Content-Type application/dtmf-relay."""
    signal = digit.upper()
    if len(signal) != 1 or signal not in _DIGITS:
        raise ValueError("digit must be one of 0-9 * # A-D")
    if not 1 <= duration_ms <= MAX_DTMF_DURATION_MS:
        raise ValueError(f"duration_ms must be within 1..{MAX_DTMF_DURATION_MS}")
    return f"Signal={signal}\r\nDuration={duration_ms}\r\n".encode()

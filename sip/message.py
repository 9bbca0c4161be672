"""SIP message model and serializer (RFC 3261 §7, §20).

A message keeps its header fields as received, in order, under canonical names; typed views
(Via, name-addr, CSeq, URIs) are parsed on demand by ``sip.headers`` and ``sip.uri``. That keeps
parsing cheap for the fields nobody looks at and lets a proxy relay unknown headers unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

# RFC 3261 §7.3.3 and later RFCs: compact forms.
COMPACT_FORMS = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

_KNOWN = (
    "Accept Accept-Encoding Accept-Language Alert-Info Allow Authentication-Info Authorization "
    "Call-ID Call-Info Contact Content-Disposition Content-Encoding Content-Language "
    "Content-Length Content-Type CSeq Date Error-Info Expires From In-Reply-To Max-Forwards "
    "Min-Expires MIME-Version Organization Path Priority Proxy-Authenticate Proxy-Authorization "
    "Proxy-Require Reason Record-Route Reply-To Require Retry-After Route Server Subject "
    "Supported Timestamp To Unsupported User-Agent Via Warning WWW-Authenticate RSeq RAck "
    "Event Allow-Events Refer-To Referred-By Replaces Session-Expires Min-SE P-Asserted-Identity "
    "Privacy Identity Accept-Contact Reject-Contact Request-Disposition Flow-Timer"
)
# lower-case key -> the spelling we write on the wire.
CANONICAL_NAMES = {name.lower(): name for name in _KNOWN.split()}
for _short, _long in COMPACT_FORMS.items():
    CANONICAL_NAMES[_short] = _long


_KEY_CACHE: dict[str, str] = {}
_KEY_CACHE_LIMIT = 4096  # names repeat; a flood of invented names must not grow memory


def header_key(name: str) -> str:
    """Case-insensitive identity of a header name, compact forms expanded (RFC 3261 §7.3.1)."""
    key = _KEY_CACHE.get(name)
    if key is None:
        lowered = name.lower()
        long = COMPACT_FORMS.get(lowered)
        key = long.lower() if long is not None else lowered
        if len(_KEY_CACHE) < _KEY_CACHE_LIMIT:
            _KEY_CACHE[name] = key
    return key


def split_list(value: str) -> list[str]:
    """Split a list header value at commas outside quoted strings and <...> (RFC 3261 §7.3.1)."""
    if "," not in value:
        return [value.strip()]
    items: list[str] = []
    start = 0
    quoted = False
    angle = False
    escaped = False
    for i, ch in enumerate(value):
        if quoted:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            angle = True
        elif ch == ">":
            angle = False
        elif ch == "," and not angle:
            items.append(value[start:i].strip())
            start = i + 1
    items.append(value[start:].strip())
    return items


class Headers:
    """Ordered header fields: ``(name, value)`` pairs with case-insensitive lookup."""

    __slots__ = ("_fields",)

    def __init__(self, fields: list[tuple[str, str]] | None = None) -> None:
        # Each entry: (key, name, value) — key is header_key(name), name the written spelling.
        self._fields: list[tuple[str, str, str]] = []
        for name, value in fields or ():
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        key = header_key(name)
        self._fields.append((key, CANONICAL_NAMES.get(key, name), value))

    def insert_first(self, name: str, value: str) -> None:
        key = header_key(name)
        self._fields.insert(0, (key, CANONICAL_NAMES.get(key, name), value))

    def get(self, name: str) -> str | None:
        """Value of the first field of this name, or None."""
        key = header_key(name)
        for k, _, v in self._fields:
            if k == key:
                return v
        return None

    def get_all(self, name: str) -> list[str]:
        """Values of all fields of this name, as written (not split at commas)."""
        key = header_key(name)
        return [v for k, _, v in self._fields if k == key]

    def values(self, name: str) -> list[str]:
        """All values of a list header, fields split at top-level commas, in order."""
        key = header_key(name)
        out: list[str] = []
        for k, _, v in self._fields:
            if k == key:
                out.extend(split_list(v))
        return out

    def survey(self, keys: frozenset[str]) -> tuple[dict[str, str], set[str]]:
        """One pass: the first value of each of ``keys`` (header_key form) present, and the
        keys that occur more than once."""
        first: dict[str, str] = {}
        repeated: set[str] = set()
        for key, _, value in self._fields:
            if key in keys:
                if key in first:
                    repeated.add(key)
                else:
                    first[key] = value
        return first, repeated

    def count(self, name: str) -> int:
        key = header_key(name)
        return sum(1 for k, _, _ in self._fields if k == key)

    def set(self, name: str, value: str) -> None:
        """Replace every field of this name by one field (added at the end if absent)."""
        key = header_key(name)
        for i, (k, n, _) in enumerate(self._fields):
            if k == key:
                self._fields[i] = (k, n, value)
                self._fields[i + 1 :] = [f for f in self._fields[i + 1 :] if f[0] != key]
                return
        self._fields.append((key, CANONICAL_NAMES.get(key, name), value))

    def replace_all(self, name: str, values: list[str]) -> None:
        """Replace every field of this name by one field per value, at the first one's place."""
        key = header_key(name)
        spelled = CANONICAL_NAMES.get(key, name)
        new = [(key, spelled, v) for v in values]
        for i, (k, _, _) in enumerate(self._fields):
            if k == key:
                rest = [f for f in self._fields[i:] if f[0] != key]
                self._fields[i:] = new + rest
                return
        self._fields.extend(new)

    def remove(self, name: str) -> None:
        key = header_key(name)
        self._fields = [f for f in self._fields if f[0] != key]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for _, name, value in self._fields:
            yield name, value

    def __len__(self) -> int:
        return len(self._fields)

    def copy(self) -> Headers:
        clone = Headers()
        clone._fields = list(self._fields)
        return clone


def _serialize(start_line: str, headers: Headers, body: bytes) -> bytes:
    # RFC 3261 §18.3 / §20.14: Content-Length is always written and always true.
    lines = [start_line]
    for key, name, value in headers._fields:
        if key != "content-length":
            lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    lines.append("")
    lines.append("")
    return "\r\n".join(lines).encode("utf-8", "surrogateescape") + body


@dataclass(slots=True)
class Request:
    method: str
    uri: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = "SIP/2.0"

    def to_bytes(self) -> bytes:
        return _serialize(f"{self.method} {self.uri} {self.version}", self.headers, self.body)


@dataclass(slots=True)
class Response:
    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = "SIP/2.0"

    def to_bytes(self) -> bytes:
        return _serialize(f"{self.version} {self.status} {self.reason}", self.headers, self.body)


# RFC 3261 §21 and extensions: default reason phrases.
REASONS = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
}


def response_to(request: Request, status: int, reason: str | None = None) -> Response:
    """A response to ``request`` with the fields RFC 3261 §8.2.6.2 says to copy.

    Via (all values, in order), From, To, Call-ID and CSeq are copied; the UAS adds a To tag
    itself where the response needs one. A 100 Trying also echoes Timestamp (§8.2.6.1).
    """
    headers = Headers()
    fields = request.headers._fields
    for entry in fields:
        if entry[0] == "via":
            headers._fields.append(entry)
    for key in ("from", "to", "call-id", "cseq"):
        for entry in fields:
            if entry[0] == key:
                headers._fields.append(entry)
                break
    if status == 100:
        stamp = request.headers.get("Timestamp")
        if stamp is not None:
            headers.add("Timestamp", stamp)
    return Response(status, reason or REASONS.get(status, "Unknown"), headers)

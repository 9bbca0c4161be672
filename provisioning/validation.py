"""Field rules of the admin API, pure: each check returns the value (normalised) or raises
ValueError with a message naming the fault, which pydantic turns into a 422 entry."""

from __future__ import annotations

import importlib
import ipaddress
import re
import zoneinfo
from typing import Any, Final

E164: Final = re.compile(r"\+[1-9][0-9]{0,14}")
EXTENSION: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
CLASSIFICATION: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_MAC: Final = re.compile(r"[0-9a-f]{2}([:-]?)[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}")
_RATE: Final = re.compile(r"([0-9]{1,9})/([0-9]{1,9}(?:\.[0-9]{1,6})?)?(ms|s|m|h)")
_PORT_RANGE: Final = re.compile(r"([0-9]{1,5})-([0-9]{1,5})")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")

KNOWN_CODECS: Final = ("PCMU", "PCMA", "G722", "opus", "telephone-event")
# RFC 8760 digest algorithms, in the order the edge challenges with them.
DIGEST_ALGORITHMS: Final = ("SHA-256", "MD5")
MIN_MEDIA_PORT: Final = 1024
MAX_MEDIA_PORT: Final = 65535
MAX_PATTERN_CHARS: Final = 200
MAX_REPLACEMENT_CHARS: Final = 200


def name(text: str) -> str:
    """A display name: trimmed, not empty, no control characters."""
    text = text.strip()
    if not text:
        raise ValueError("must not be empty or blank")
    if _CONTROL.search(text):
        raise ValueError("must not contain control characters")
    return text


def no_control(text: str) -> str:
    if _CONTROL.search(text.replace("\n", "").replace("\t", "")):
        raise ValueError("must not contain control characters")
    return text


def e164(text: str) -> str:
    if not E164.fullmatch(text):
        raise ValueError(f"{text!r} is not an E.164 number: '+' then 1-15 digits, the first not 0")
    return text


def extension(text: str) -> str:
    if not EXTENSION.fullmatch(text):
        raise ValueError(
            f"{text!r} is not an extension: 1-32 of letters, digits, '.', '_', '-', "
            "starting with a letter or digit"
        )
    return text


def classification(text: str) -> str:
    if not CLASSIFICATION.fullmatch(text):
        raise ValueError(
            f"{text!r} is not a classification: 1-64 of letters, digits, '_', '.', '-'"
        )
    return text


def timezone(text: str) -> str:
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{text!r} is not an IANA time zone such as Europe/Berlin") from None
    return text


def ip_literal(text: str) -> str:
    """An IPv4 or IPv6 address literal (no brackets): the edge never resolves host names."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(
            f"{text!r} is not an IP address (host names are not resolved by the edge)"
        ) from None


def ip_network(text: str) -> str:
    """An address or a CIDR network (host bits clear), e.g. 192.0.2.0/24 or 2001:db8::/32."""
    try:
        return str(ipaddress.ip_network(text, strict=True))
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an IP address or CIDR network: {exc}") from None


def mac_address(text: str) -> str:
    """Six octets, with ':' or '-' separators or none; normalised to aa:bb:cc:dd:ee:ff."""
    lowered = text.lower()
    if not _MAC.fullmatch(lowered):
        raise ValueError(f"{text!r} is not a MAC address such as 00:1a:2b:3c:4d:5e")
    digits = lowered.replace(":", "").replace("-", "")
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def _known_once(what: str, names: list[str], known: tuple[str, ...]) -> list[str]:
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown {what}(s) {unknown}; known: {', '.join(known)}")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{what}(s) listed twice: {duplicates}")
    return names


def codecs(names: list[str]) -> list[str]:
    return _known_once("codec", names, KNOWN_CODECS)


def digest_algorithms(names: list[str]) -> list[str]:
    """Known, each once; returned in the order they are challenged (SHA-256 first)."""
    _known_once("digest algorithm", names, DIGEST_ALGORITHMS)
    return [a for a in DIGEST_ALGORITHMS if a in names]


def unique_items(items: list[str]) -> list[str]:
    duplicates = sorted({i for i in items if items.count(i) > 1})
    if duplicates:
        raise ValueError(f"listed twice: {duplicates}")
    return items


def rate(text: str) -> str:
    """``COUNT/WINDOW`` as the edge reads it (edge.config.parse_rate): "40/5s", "5/500ms",
    "100/1m", "3/h" (no window number means 1)."""
    match = _RATE.fullmatch(text)
    if match is None:
        raise ValueError(f'{text!r} is not a rate "COUNT/WINDOW" like "40/5s" (ms, s, m, h)')
    if int(match[1]) < 1 or float(match[2] or 1) <= 0:
        raise ValueError(f"{text!r}: count and window must be greater than 0")
    return text


def port_range(text: str) -> str:
    """``FIRST-LAST`` RTP/RTCP ports: FIRST even (RTP even, RTCP odd, RFC 3550 §11), both in
    1024..65535, holding at least one pair."""
    match = _PORT_RANGE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a port range FIRST-LAST, e.g. 20000-29999")
    first, last = int(match[1]), int(match[2])
    if not (MIN_MEDIA_PORT <= first <= MAX_MEDIA_PORT and MIN_MEDIA_PORT <= last <= MAX_MEDIA_PORT):
        raise ValueError(f"{text!r}: ports must be within {MIN_MEDIA_PORT}-{MAX_MEDIA_PORT}")
    if first % 2:
        raise ValueError(f"{text!r}: the first port must be even (RTP even, RTCP odd)")
    if last < first + 1:
        raise ValueError(f"{text!r}: the range must hold at least one RTP/RTCP pair")
    return text


# -- number-plan patterns ------------------------------------------------------------------

_REPEATS: Final = frozenset({"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"})
_BACKREFERENCES: Final = frozenset({"GROUPREF", "GROUPREF_EXISTS"})


def safe_pattern(text: str) -> str:
    """A number-plan pattern the edge can run on every dialled number without risk.

    The rule, so a pattern cannot backtrack catastrophically (ReDoS):

    - at most 200 characters, and it must compile with Python's ``re``;
    - no backreferences (``\\1``, ``(?P=name)``) nor conditionals (``(?(1)a|b)``): matching
      them is not a regular language and costs unbounded time;
    - no *nested variable quantifiers*: a quantifier whose count varies and can exceed one
      (``*``, ``+``, ``{2,5}``) must not contain another quantifier whose count varies
      (``*``, ``+``, ``?``, ``{1,3}``). ``(a+)+``, ``(a*)*``, ``(\\d{1,3})+`` and ``(a?)*`` are
      refused: the number of ways to split the input between the two loops grows
      exponentially. ``(\\d{3})+``, ``(\\d+)?`` and ``\\d{1,3}(\\d{2})*`` are accepted.

    The rule is conservative (``(\\d+x)+`` is refused although the ``x`` makes it safe); a
    plan can always be written without the nesting.
    """
    if len(text) > MAX_PATTERN_CHARS:
        raise ValueError(f"the pattern is longer than {MAX_PATTERN_CHARS} characters")
    if _CONTROL.search(text):
        raise ValueError("the pattern holds a control character (write it escaped, e.g. \\x00)")
    try:
        re.compile(text)
    except re.error as exc:
        raise ValueError(f"the pattern does not compile: {exc}") from None
    parser: Any = importlib.import_module("re._parser")
    fault = _unsafe(parser.parse(text), inside_loop=False)
    if fault:
        raise ValueError(fault)
    return text


def _unsafe(node: Any, *, inside_loop: bool) -> str | None:
    for op, argument in node:
        kind = str(op)
        if kind in _BACKREFERENCES:
            return "backreferences and conditional groups are not allowed in a pattern"
        if kind in _REPEATS:
            low, high, body = argument
            varies = low != high
            if varies and inside_loop:
                return (
                    "nested variable quantifiers such as (a+)+ or (a*)* are not allowed: "
                    "they can backtrack catastrophically"
                )
            fault = _unsafe(body, inside_loop=inside_loop or (varies and high > 1))
        else:
            fault = _walk_children(argument, inside_loop=inside_loop)
        if fault:
            return fault
    return None


def _walk_children(argument: Any, *, inside_loop: bool) -> str | None:
    """Recurse into every sub-pattern an opcode's argument holds (groups, branches,
    lookarounds), whatever tuple or list shape it comes in."""
    if hasattr(argument, "data"):  # a SubPattern
        return _unsafe(argument, inside_loop=inside_loop)
    if isinstance(argument, tuple | list):
        for item in argument:
            fault = _walk_children(item, inside_loop=inside_loop)
            if fault:
                return fault
    return None


def replacement_for(pattern: str, replacement: str) -> str:
    """``replacement`` must be a valid ``re.sub`` template for ``pattern``: escapes parse and
    every group it names (``\\2``, ``\\g<name>``) exists in the pattern."""
    if len(replacement) > MAX_REPLACEMENT_CHARS:
        raise ValueError(f"the replacement is longer than {MAX_REPLACEMENT_CHARS} characters")
    try:
        # Substituting into "" parses the template against the pattern's groups.
        re.compile(pattern).sub(replacement, "")
    except (re.error, IndexError) as exc:  # an unknown \g<name> is an IndexError
        raise ValueError(f"the replacement is not valid for the pattern: {exc}") from None
    return replacement

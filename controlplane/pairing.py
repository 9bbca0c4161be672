"""One-time pairing tokens (DESIGN.md, Security): an admin issues a token for one edge, the edge
presents it once with its CSR, and the control plane answers with the edge's certificate.

Pure logic with the clock injected. Only the SHA-256 of a token is ever stored, so a leaked
database does not pair anyone. Persisting `used_at` is the store's job: it must do so in the same
transaction as issuing the certificate and only where `used_at IS NULL`, so two replicas cannot
both redeem one token.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

TOKEN_BYTES: Final = 32
TOKEN_PREFIX: Final = "vxp_"
DEFAULT_TTL: Final = 3600.0  # seconds
MAX_TTL: Final = 7 * 24 * 3600.0  # a week: a pairing token is not a standing credential
MAX_TOKEN_CHARS: Final = 128  # token_urlsafe(32) is 43; anything much longer is not ours
_URLSAFE: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class PairingFailure(StrEnum):
    MALFORMED = "MALFORMED"
    UNKNOWN = "UNKNOWN"
    EXPIRED = "EXPIRED"
    ALREADY_USED = "ALREADY_USED"


class PairingError(Exception):
    """A token that does not pair; `reason` says why (for the log line and the metric)."""

    def __init__(self, reason: PairingFailure) -> None:
        super().__init__(f"pairing token refused: {reason}")
        self.reason = reason


@dataclass(slots=True)
class TokenRecord:
    """What the store keeps for one token: its hash, never the token itself."""

    token_hash: str  # hex SHA-256 of the token text
    edge_id: str
    org_id: str
    expires_at: datetime.datetime
    used_at: datetime.datetime | None = None


TokenLookup = Callable[[str], TokenRecord | None] | Mapping[str, TokenRecord]


def hash_token(token_text: str) -> str:
    """The hex SHA-256 under which a token's record is stored and looked up."""
    return hashlib.sha256(token_text.encode("ascii")).hexdigest()


def issue_token(
    edge_id: str, org_id: str, now: datetime.datetime, ttl: float = DEFAULT_TTL
) -> tuple[str, TokenRecord]:
    """A new token for `edge_id` (show it to the admin once) and the record to store.

    The token is ``vxp_`` and 32 random bytes, URL-safe base64 without padding (47
    characters): the prefix makes a leaked token recognisable to secret scanners, and a token
    never starts with "-", which a command line would take for an option.
    """
    _require_aware(now)
    if not 0 < ttl <= MAX_TTL:
        raise ValueError(f"ttl must be in (0, {MAX_TTL:.0f}] seconds: {ttl!r}")
    if not edge_id or not org_id:
        raise ValueError("a pairing token needs an edge_id and an org_id")
    token_text = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    record = TokenRecord(
        token_hash=hash_token(token_text),
        edge_id=edge_id,
        org_id=org_id,
        expires_at=now + datetime.timedelta(seconds=ttl),
    )
    return token_text, record


def redeem(token_text: str, lookup: TokenLookup, now: datetime.datetime) -> TokenRecord:
    """The record of `token_text`, marked used at `now`; PairingError naming why otherwise.

    `lookup` finds a record by token hash: a callable (a store query) or a mapping.
    """
    _require_aware(now)
    if (
        not isinstance(token_text, str)
        or not 0 < len(token_text) <= MAX_TOKEN_CHARS
        or not _URLSAFE.issuperset(token_text)
    ):
        raise PairingError(PairingFailure.MALFORMED)
    digest = hash_token(token_text)
    record = lookup.get(digest) if isinstance(lookup, Mapping) else lookup(digest)
    # The lookup itself may be an index probe or a collation-aware SQL comparison; compare the
    # hash we were handed back in constant time before trusting it.
    if record is None or not hmac.compare_digest(record.token_hash, digest):
        raise PairingError(PairingFailure.UNKNOWN)
    if record.used_at is not None:
        raise PairingError(PairingFailure.ALREADY_USED)
    if now >= record.expires_at:
        raise PairingError(PairingFailure.EXPIRED)
    record.used_at = now
    return record


def _require_aware(now: datetime.datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")

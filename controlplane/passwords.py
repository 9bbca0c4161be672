"""Secrets at rest: admin passwords as salted PBKDF2-SHA512, SIP secrets as digest HA1.

No plaintext secret is ever stored. Admin passwords are encoded in one self-describing string
(``pbkdf2_sha512$<iterations>$<salt b64>$<hash b64>``) so the work factor can be raised later
and old hashes still verify. Phone SIP passwords are kept only as HA1 = H(user:realm:password)
per digest algorithm (RFC 7616 §3.4.2, RFC 8760), which is all a registrar needs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCHEME = "pbkdf2_sha512"
# OWASP 2023 recommendation for PBKDF2-HMAC-SHA512.
DEFAULT_ITERATIONS = 210_000
SALT_BYTES = 16
MIN_ITERATIONS = 1_000  # refuse hashes a tampered row could weaken to nothing
MAX_ITERATIONS = 10_000_000  # refuse hashes that would burn the CPU for minutes


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, iterations: int = DEFAULT_ITERATIONS) -> str:
    """A fresh random salt per call: two hashes of one password never match."""
    if not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
        raise ValueError(f"iterations out of range: {iterations}")
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return f"{SCHEME}${iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches ``encoded``; malformed hashes verify as False."""
    try:
        scheme, iter_text, salt_b64, hash_b64 = encoded.split("$")
        iterations = int(iter_text)
        salt = base64.b64decode(salt_b64, validate=True)
        expected = base64.b64decode(hash_b64, validate=True)
    except ValueError:
        return False
    if scheme != SCHEME or not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS or not expected:
        return False
    actual = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    # Constant time: the comparison must not leak how many leading bytes matched.
    return hmac.compare_digest(actual, expected)


def needs_rehash(encoded: str, *, iterations: int = DEFAULT_ITERATIONS) -> bool:
    """True when the stored hash uses another scheme or fewer iterations than configured."""
    parts = encoded.split("$")
    return (
        len(parts) != 4
        or parts[0] != SCHEME
        or not parts[1].isdigit()
        or int(parts[1]) < iterations
    )


def digest_ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    """HA1 = H(username ":" realm ":" password), lowercase hex (RFC 7616 §3.4.2, RFC 8760)."""
    names = {"MD5": "md5", "SHA-256": "sha256"}
    if algorithm not in names:
        raise ValueError(f"unsupported digest algorithm: {algorithm}")
    text = f"{username}:{realm}:{password}".encode()
    return hashlib.new(names[algorithm], text).hexdigest()


def api_token_digest(token: str) -> str:
    """API tokens are random and long, so a plain SHA-256 (no salt, no stretching) is enough
    to store them unreadably while still allowing an indexed lookup."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_api_token() -> str:
    return "vxe_" + secrets.token_urlsafe(32)

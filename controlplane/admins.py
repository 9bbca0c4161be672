"""Admin users, logins and bearer tokens of the admin API.

Passwords are PBKDF2-SHA512 (controlplane.passwords), verified off the event loop; a login
with an unknown username verifies a decoy hash so it costs what a known one does. A bearer
token is random, shown once, stored as its SHA-256, and carries the user's role.
"""

from __future__ import annotations

import asyncio
import datetime
import functools

from sqlalchemy import select

from controlplane.audit import add_audit
from controlplane.models import AdminUser, ApiToken, Organisation, Role
from controlplane.passwords import (
    DEFAULT_ITERATIONS,
    api_token_digest,
    hash_password,
    new_api_token,
    verify_password,
)
from controlplane.store import Store
from provisioning.backend import IssuedToken
from provisioning.errors import Unauthorized

API_TOKEN_TTL = datetime.timedelta(hours=12)
LOGIN_FAILED = "invalid username or password"
MAX_LOGIN_CANDIDATES = 5  # one username in several organisations: verify each, bounded


async def create_admin(
    store: Store,
    org_id: str,
    username: str,
    password: str,
    role: Role = Role.ADMIN,
    *,
    display_name: str = "",
    iterations: int = DEFAULT_ITERATIONS,
) -> str:
    """A new admin user of ``org_id`` (``username`` is kept in ``AdminUser.email``); its id.
    ConflictError when the username is taken in the organisation."""
    if not 0 < len(username) <= 254 or not password:
        raise ValueError("an admin needs a username of 1-254 characters and a password")
    password_hash = await asyncio.to_thread(hash_password, password, iterations=iterations)
    async with store.transaction() as session:
        user = AdminUser(
            org_id=org_id,
            email=username,
            display_name=display_name,
            role=role,
            password_hash=password_hash,
        )
        session.add(user)
        await session.flush()
        add_audit(session, org_id, None, "create", "admin_users", user.id, detail={"role": role})
    return user.id


async def issue_api_token(
    store: Store, org_id: str, username: str, password: str, now: datetime.datetime
) -> str:
    """A bearer token for ``username`` of ``org_id``; Unauthorized when the credentials fail."""
    user = await verify_login(store, username, password, org_id=org_id)
    return (await issue_token(store, user, now)).token


@functools.cache
def _decoy_hash() -> str:
    """Verified against when no user matches, so an unknown username costs what a known one
    does (no timing oracle for which usernames exist)."""
    return hash_password("decoy password")


async def verify_login(
    store: Store,
    username: str,
    password: str,
    *,
    org_id: str | None = None,
    organisation: str | None = None,
) -> AdminUser:
    """The one enabled user ``username``/``password`` names; Unauthorized otherwise, with
    one message whether the username or the password was wrong."""
    query = select(AdminUser).where(AdminUser.email == username)
    if org_id is not None:
        query = query.where(AdminUser.org_id == org_id)
    if organisation is not None:
        query = query.join(Organisation, Organisation.id == AdminUser.org_id).where(
            Organisation.sip_domain == organisation
        )
    async with store.read() as session:
        users = list(
            await session.scalars(query.order_by(AdminUser.id).limit(MAX_LOGIN_CANDIDATES))
        )
    if not users:
        await asyncio.to_thread(verify_password, password, _decoy_hash())
        raise Unauthorized(LOGIN_FAILED)
    # PBKDF2 takes ~0.1 s of CPU: off the event loop.
    matching = [
        user
        for user in users
        if await asyncio.to_thread(verify_password, password, user.password_hash)
    ]
    if not matching:
        raise Unauthorized(LOGIN_FAILED)
    if len(matching) > 1:  # only someone who knows the password learns this
        raise Unauthorized(
            f"{LOGIN_FAILED}: the username exists in several organisations; name its SIP "
            'domain in "organisation"'
        )
    if matching[0].disabled:
        raise Unauthorized("this account is disabled")
    return matching[0]


async def issue_token(store: Store, user: AdminUser, now: datetime.datetime) -> IssuedToken:
    token = new_api_token()
    expires_at = now + API_TOKEN_TTL
    async with store.transaction() as session:
        row = ApiToken(
            org_id=user.org_id,
            user_id=user.id,
            name="login",
            token_sha256=api_token_digest(token),
            role=user.role,
            expires_at=expires_at,
        )
        session.add(row)
        await session.flush()
        detail = {"expires_at": expires_at.isoformat()}
        add_audit(session, user.org_id, user.id, "login", "api_tokens", row.id, detail=detail)
    return IssuedToken(token, expires_at)

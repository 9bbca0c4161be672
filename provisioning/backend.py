"""What the routes need from storage, as a protocol: ``controlplane.api`` implements it over
the store. Every call but ``login`` and ``authenticate`` takes the caller's ``Principal`` and
must confine itself to ``principal.org_id`` (another organisation's row is ``NotFound``)."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from provisioning.errors import Fault
from provisioning.schemas import Role

Item = dict[str, Any]  # one resource's public view, keyed by the response model's fields


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the organisation every query is scoped to, and the token's role."""

    org_id: str
    user_id: str
    role: Role


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A secret shown once (API token or pairing token) and when it expires."""

    token: str
    expires_at: datetime.datetime


@dataclass(frozen=True, slots=True)
class Page:
    """``limit`` rows from ``offset`` in a stable order, narrowed by ``filters`` (field name
    to value; ``since``/``until`` bound a time range)."""

    limit: int
    offset: int
    filters: Mapping[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    async def login(self, username: str, password: str, organisation: str | None) -> IssuedToken:
        """A new bearer token; Unauthorized (one message for every failure) otherwise."""
        ...

    async def authenticate(self, token: str) -> Principal:
        """The token's principal; Unauthorized when unknown, expired, revoked or disabled."""
        ...

    async def list(self, principal: Principal, resource: str, page: Page) -> list[Item]: ...

    async def get(self, principal: Principal, resource: str, item_id: str) -> Item: ...

    async def create(
        self,
        principal: Principal,
        resource: str,
        values: Mapping[str, Any],
        faults: Sequence[Fault] = (),
    ) -> Item:
        """The new item; Invalid naming ``faults`` (found by the routes) together with every
        field breaking a uniqueness or reference rule, so one answer names them all."""
        ...

    async def update(
        self,
        principal: Principal,
        resource: str,
        item_id: str,
        changes: Mapping[str, Any],
        faults: Sequence[Fault] = (),
    ) -> Item: ...

    async def delete(self, principal: Principal, resource: str, item_id: str) -> None: ...

    async def issue_pairing_token(self, principal: Principal, edge_id: str) -> IssuedToken: ...

    async def revoke_edge(self, principal: Principal, edge_id: str) -> Item: ...

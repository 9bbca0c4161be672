"""Audit log rows: who changed what, when (never a secret)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from controlplane.models import AuditLog


def audit_row(
    org_id: str,
    user_id: str | None,
    action: str,
    entity_type: str,
    entity_id: str | None,
    *,
    version: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditLog:
    """One audit row; ``version`` only for configuration writes."""
    return AuditLog(
        org_id=org_id,
        user_id=user_id,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        config_version=version,
        detail=detail or {},
    )


def add_audit(session: AsyncSession, *args: Any, **kwargs: Any) -> None:
    """An audit row (``audit_row``'s arguments) in the caller's transaction."""
    session.add(audit_row(*args, **kwargs))

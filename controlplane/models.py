"""The control plane's tables (SQLAlchemy 2 typed declarative).

Every row but an organisation's carries ``org_id``: every query is scoped to one organisation
(DESIGN "Security"). Ids are UUID strings, so they are portable between SQLite and PostgreSQL
and safe to show in URLs. Enumerations are stored as strings with a CHECK constraint
(``native_enum=False``) so adding a value never needs a PostgreSQL ``ALTER TYPE``.
No column holds a plaintext secret: admin passwords are PBKDF2-SHA512 strings, phone and trunk
SIP secrets are HA1 per digest algorithm, API tokens are SHA-256 digests.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names, so migrations can refer to (and drop) them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: JSON}

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id, sort_order=-10)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, sort_order=10)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, sort_order=10)


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Role(enum.StrEnum):
    ADMIN = "admin"
    TELEPHONY_ADMIN = "telephony_admin"
    VIEWER = "viewer"


class EdgeStatus(enum.StrEnum):
    PENDING = "pending"  # created, not yet paired
    ONLINE = "online"
    DEGRADED = "degraded"  # running on its cached configuration (survivability)
    OFFLINE = "offline"


class PhoneKind(enum.StrEnum):
    GENERIC_SIP = "generic_sip"
    MANAGED = "managed"
    WEBRTC = "webrtc"
    REMOTE_NUMBER = "remote_number"


class TrunkTransport(enum.StrEnum):
    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"


class Organisation(Base):
    __tablename__ = "organisations"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    # The SIP domain is also the digest realm the phones' HA1 values were computed with.
    sip_domain: Mapped[str] = mapped_column(String(253), unique=True)
    # Bumped by one in the same transaction as every configuration write (Store.write).
    config_version: Mapped[int] = mapped_column(Integer, default=0)


class OrgScoped:
    """Mixin: the owning organisation; deleting it deletes everything it owns."""

    org_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("organisations.id", ondelete="CASCADE"), index=True, sort_order=-5
    )


class AdminUser(OrgScoped, Base):
    __tablename__ = "admin_users"
    __table_args__ = (UniqueConstraint("org_id", "email"),)

    email: Mapped[str] = mapped_column(String(254))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    # passwords.hash_password(): "pbkdf2_sha512$iterations$salt$hash"
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)


class ApiToken(OrgScoped, Base):
    __tablename__ = "api_tokens"

    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("admin_users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    # SHA-256 hex of the bearer token (passwords.api_token_digest); the token is shown once.
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Site(OrgScoped, Base):
    __tablename__ = "sites"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")


class Edge(OrgScoped, Base):
    __tablename__ = "edges"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    site_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("sites.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[EdgeStatus] = mapped_column(
        _enum(EdgeStatus, "edge_status"), default=EdgeStatus.PENDING
    )
    # PEM of the client certificate the control plane's CA issued at pairing.
    certificate_pem: Mapped[str | None] = mapped_column(Text)
    certificate_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    last_seen_at: Mapped[datetime | None]
    # The configuration version the edge last acknowledged.
    config_version: Mapped[int] = mapped_column(Integer, default=0)
    # Added by revision 0002.
    software_version: Mapped[str | None] = mapped_column(String(64))
    # Added by revision 0003: a revoked edge is refused on every gRPC call, whatever its
    # certificate's validity (the CA has no CRL; this row is the revocation list).
    revoked_at: Mapped[datetime | None]
    # Added by revision 0004: edge settings fed to the edge (protos EdgeSettings: expires
    # bounds, media ports and timeouts, "40/5s" rates); a missing key keeps the edge default.
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")


class PairingToken(OrgScoped, Base):
    """A single-use pairing token for one edge (controlplane.pairing), added by revision 0003.

    Only the token's SHA-256 is kept. ``used_at`` is set by the one UPDATE that redeems it
    (``WHERE used_at IS NULL AND expires_at > now``) in the transaction that stores the
    edge's new certificate, so two replicas cannot both pair with one token.
    """

    __tablename__ = "pairing_tokens"

    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    edge_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("edges.id", ondelete="CASCADE"), index=True
    )
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class BaseSettingsProfile(OrgScoped, Base):
    __tablename__ = "base_settings_profiles"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    name: Mapped[str] = mapped_column(String(200))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Phone(OrgScoped, Base):
    __tablename__ = "phones"
    __table_args__ = (UniqueConstraint("org_id", "extension"),)

    site_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("sites.id", ondelete="SET NULL"), index=True
    )
    base_settings_profile_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("base_settings_profiles.id", ondelete="SET NULL")
    )
    kind: Mapped[PhoneKind] = mapped_column(_enum(PhoneKind, "phone_kind"))
    extension: Mapped[str] = mapped_column(String(32))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    # Digest credentials: the username and HA1 per algorithm, never the password
    # (realm = the organisation's sip_domain). Remote-number phones have none.
    sip_username: Mapped[str | None] = mapped_column(String(128))
    ha1_md5: Mapped[str | None] = mapped_column(String(32))
    ha1_sha256: Mapped[str | None] = mapped_column(String(64))
    # managed phones: the MAC the provisioning server renders a configuration for
    mac_address: Mapped[str | None] = mapped_column(String(17))
    # remote_number phones: the external number calls are forwarded to
    remote_number: Mapped[str | None] = mapped_column(String(32))


class Trunk(OrgScoped, Base):
    __tablename__ = "trunks"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    site_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("sites.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(253))
    port: Mapped[int] = mapped_column(Integer, default=5060)
    transport: Mapped[TrunkTransport] = mapped_column(
        _enum(TrunkTransport, "trunk_transport"), default=TrunkTransport.UDP
    )
    # Carrier source addresses/CIDRs admitted on the trunk side.
    allowed_sources: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Digest toward the carrier, as HA1 for the carrier's realm (enough to answer a challenge).
    auth_username: Mapped[str | None] = mapped_column(String(128))
    auth_realm: Mapped[str | None] = mapped_column(String(253))
    auth_ha1_md5: Mapped[str | None] = mapped_column(String(32))
    auth_ha1_sha256: Mapped[str | None] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Added by revision 0004: codec names offered toward the carrier, in preference order.
    codecs: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")


class Did(OrgScoped, Base):
    __tablename__ = "dids"
    __table_args__ = (UniqueConstraint("org_id", "number"),)

    number: Mapped[str] = mapped_column(String(32))  # E.164
    description: Mapped[str] = mapped_column(Text, default="")
    trunk_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("trunks.id", ondelete="SET NULL")
    )
    phone_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("phones.id", ondelete="SET NULL")
    )


class NumberPlan(OrgScoped, Base):
    """Classifies a dialled number (e.g. ``^\\+1[2-9]\\d{9}$`` -> "national")."""

    __tablename__ = "number_plans"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    name: Mapped[str] = mapped_column(String(200))
    pattern: Mapped[str] = mapped_column(String(500))
    # Added by revision 0004: re.sub replacement applied to a matching number ("" keeps it).
    replacement: Mapped[str] = mapped_column(String(200), default="", server_default="")
    classification: Mapped[str] = mapped_column(String(64))
    priority: Mapped[int] = mapped_column(Integer, default=100)


class OutboundRoute(OrgScoped, Base):
    """Sends the classifications it lists to its trunks, in order (failover)."""

    __tablename__ = "outbound_routes"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    name: Mapped[str] = mapped_column(String(200))
    classifications: Mapped[list[str]] = mapped_column(JSON, default=list)
    trunk_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    priority: Mapped[int] = mapped_column(Integer, default=100)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class Cdr(OrgScoped, Base):
    __tablename__ = "cdrs"
    # The edge's outbox delivers at least once; the idempotency key makes it exactly once here.
    __table_args__ = (UniqueConstraint("org_id", "idempotency_key"),)

    idempotency_key: Mapped[str] = mapped_column(String(128))
    edge_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("edges.id", ondelete="SET NULL"), index=True
    )
    call_id: Mapped[str] = mapped_column(String(255))
    direction: Mapped[str] = mapped_column(String(16))
    caller: Mapped[str] = mapped_column(String(255))
    callee: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(index=True)
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    disposition: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class AuditLog(OrgScoped, Base):
    __tablename__ = "audit_log"

    user_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("admin_users.id", ondelete="SET NULL")
    )
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str | None] = mapped_column(String(36))
    config_version: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)

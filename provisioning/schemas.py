"""Request and response bodies of the admin API.

Request models forbid unknown fields (a typo is a 422, not a silently ignored setting).
Response models list only public fields: no password, HA1, token digest or certificate ever
leaves in a response, whatever the backend hands over.
"""

from __future__ import annotations

import copy
import datetime
import functools
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model

from provisioning import validation
from provisioning.fields import (
    E164,
    MAX_LIST,
    PRINTABLE,
    Classification,
    Codecs,
    Description,
    DigestAlgorithms,
    DigestRealm,
    DigestUser,
    Expires,
    Extension,
    Id,
    IpLiteral,
    IpNetwork,
    MacAddress,
    Name,
    Password,
    Pattern,
    PortRange,
    Priority,
    Rate,
    Replacement,
    Timeout,
    Timezone,
)


class Role(StrEnum):
    """Admin roles, weakest first (the values match the store's)."""

    VIEWER = "viewer"
    TELEPHONY_ADMIN = "telephony_admin"
    ADMIN = "admin"


class PhoneType(StrEnum):
    GENERIC_SIP = "generic_sip"
    MANAGED = "managed"
    WEBRTC = "webrtc"
    REMOTE_NUMBER = "remote_number"


class Transport(StrEnum):
    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Response(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Stamped(Response):
    id: str
    created_at: datetime.datetime
    updated_at: datetime.datetime


@functools.cache
def partial(model: type[Request]) -> type[Request]:
    """The PATCH twin of a create model: every field optional, same types and validators.

    A field left out is not changed (the routes use ``exclude_unset``); an explicit ``null``
    is only accepted where the field itself is nullable.
    """
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        optional = copy.copy(info)
        optional.default = None
        optional.default_factory = None
        fields[name] = (info.annotation, optional)
    update: type[Request] = create_model(
        model.__name__.replace("In", "Patch"), __base__=Request, **fields
    )
    return update


# -- authentication ------------------------------------------------------------------------


class LoginIn(Request):
    username: str = Field(min_length=1, max_length=254, pattern=PRINTABLE)
    password: str = Field(min_length=1, max_length=1024)
    organisation: str | None = Field(
        default=None,
        max_length=253,
        pattern=PRINTABLE,
        description="the organisation's SIP domain; needed only when the username exists "
        "in several organisations",
    )


class TokenOut(Response):
    token: str
    expires_at: datetime.datetime


# -- resources -----------------------------------------------------------------------------


class SiteIn(Request):
    name: Name
    description: Description = ""
    timezone: Timezone = "UTC"


class SiteOut(Stamped):
    name: str
    description: str
    timezone: str


class EdgeSettings(Request):
    """Settings fed to the edge; a key left out keeps the edge's own default."""

    min_expires: Expires | None = None
    max_expires: Expires | None = None
    default_expires: Expires | None = None
    media_ports: PortRange | None = None
    media_timeout: Timeout | None = None
    no_answer_timeout: Timeout | None = None
    max_registration_rate: Rate | None = None
    max_call_rate: Rate | None = None


class EdgeIn(Request):
    """A PATCH with ``settings`` replaces the settings object whole (send every key to keep)."""

    name: Name
    site_id: Id
    settings: EdgeSettings = Field(default_factory=EdgeSettings)


class EdgeOut(Stamped):
    name: str
    site_id: str
    settings: dict[str, Any]
    status: str
    last_seen_at: datetime.datetime | None
    config_version: int
    software_version: str | None
    paired: bool
    revoked: bool
    revoked_at: datetime.datetime | None


class PhoneIn(Request):
    name: Name
    type: PhoneType
    site_id: Id
    extension: Extension
    password: Password | None = None
    # Which HA1s to keep (default: both). A phone that only answers MD5 challenges (older
    # softphones, SIPp) is challenged with MD5 alone; changing this needs the password.
    digest_algorithms: DigestAlgorithms | None = None
    mac_address: MacAddress | None = None
    remote_number: E164 | None = None


class PhoneOut(Stamped):
    name: str
    type: PhoneType
    site_id: str | None
    extension: str
    sip_username: str | None
    digest_algorithms: list[str]
    mac_address: str | None
    remote_number: str | None


class TrunkIn(Request):
    name: Name
    site_id: Id | None = None
    host: IpLiteral
    port: int = Field(default=5060, ge=1, le=65535)
    transport: Transport = Transport.UDP
    allowed_sources: list[IpNetwork] = Field(default_factory=list, max_length=MAX_LIST)
    auth_username: DigestUser | None = None
    auth_realm: DigestRealm | None = None
    auth_password: Password | None = None
    codecs: Codecs = Field(default_factory=lambda: ["PCMU", "PCMA", "telephone-event"])
    enabled: bool = True


class TrunkOut(Stamped):
    name: str
    site_id: str | None
    host: str
    port: int
    transport: Transport
    allowed_sources: list[str]
    auth_username: str | None
    auth_realm: str | None
    auth_password_set: bool
    codecs: list[str]
    enabled: bool


class DidIn(Request):
    number: E164
    description: Description = ""
    trunk_id: Id | None = None
    phone_id: Id | None = None


class DidOut(Stamped):
    number: str
    description: str
    trunk_id: str | None
    phone_id: str | None


class NumberPlanIn(Request):
    name: Name
    pattern: Pattern
    replacement: Replacement = ""
    classification: Classification
    priority: Priority = 100


class NumberPlanOut(Stamped):
    name: str
    pattern: str
    replacement: str
    classification: str
    priority: int


class OutboundRouteIn(Request):
    name: Name
    classifications: Annotated[
        list[Classification],
        Field(min_length=1, max_length=MAX_LIST),
        AfterValidator(validation.unique_items),
    ]
    trunk_ids: Annotated[
        list[Id],
        Field(min_length=1, max_length=MAX_LIST, description="in order of preference"),
        AfterValidator(validation.unique_items),
    ]
    priority: Priority = 100
    enabled: bool = True


class OutboundRouteOut(Stamped):
    name: str
    classifications: list[str]
    trunk_ids: list[str]
    priority: int
    enabled: bool


class CdrOut(Stamped):
    edge_id: str | None
    call_id: str
    direction: str
    caller: str
    callee: str
    started_at: datetime.datetime
    answered_at: datetime.datetime | None
    ended_at: datetime.datetime | None
    disposition: str


class AuditOut(Stamped):
    user_id: str | None
    action: str
    entity_type: str
    entity_id: str | None
    config_version: int | None
    detail: dict[str, Any]

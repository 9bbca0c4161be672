"""The table the CRUD routes are generated from: one row per resource."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from provisioning import checks, schemas
from provisioning.schemas import Role


@dataclass(frozen=True, slots=True)
class Resource:
    """``path`` is the URL segment and the name the backend knows the resource by."""

    path: str
    create: type[schemas.Request]
    out: type[BaseModel]
    write_role: Role
    filters: tuple[str, ...] = ()
    rules: checks.Check = checks.no_rules

    @property
    def update(self) -> type[schemas.Request]:
        return schemas.partial(self.create)


_ADMIN, _TELEPHONY = Role.ADMIN, Role.TELEPHONY_ADMIN

RESOURCES = (
    Resource("sites", schemas.SiteIn, schemas.SiteOut, _ADMIN),
    Resource("edges", schemas.EdgeIn, schemas.EdgeOut, _ADMIN, ("site_id",), checks.edge_rules),
    Resource(
        "phones", schemas.PhoneIn, schemas.PhoneOut, _TELEPHONY, ("site_id",), checks.phone_rules
    ),
    Resource(
        "trunks", schemas.TrunkIn, schemas.TrunkOut, _TELEPHONY, ("site_id",), checks.trunk_rules
    ),
    Resource("dids", schemas.DidIn, schemas.DidOut, _TELEPHONY),
    Resource(
        "number-plans",
        schemas.NumberPlanIn,
        schemas.NumberPlanOut,
        _TELEPHONY,
        rules=checks.number_plan_rules,
    ),
    Resource("outbound-routes", schemas.OutboundRouteIn, schemas.OutboundRouteOut, _TELEPHONY),
)

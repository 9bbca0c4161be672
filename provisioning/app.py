"""The FastAPI application: ``/api/v1`` routes over a ``Backend``, OpenAPI at ``/docs``.

The CRUD routes are generated from ``provisioning.resources.RESOURCES``. Every route but
login needs a bearer token; reads need ``viewer``, writes the resource's role.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations at
# definition time, and they name closure variables (the backend's dependencies).

import datetime
from collections.abc import Callable, Coroutine, Sequence
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query
from fastapi import Request as HttpRequest
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, BaseModel, create_model

from provisioning import schemas
from provisioning.backend import Backend, Item, Page, Principal
from provisioning.errors import ApiError, Fault, Forbidden, Invalid, Unauthorized
from provisioning.fields import ID_PATTERN
from provisioning.resources import RESOURCES, Resource
from provisioning.schemas import Role

PREFIX = "/api/v1"
MAX_LIMIT = 1000
MAX_TOKEN_CHARS = 512
_RANK = {Role.VIEWER: 0, Role.TELEPHONY_ADMIN: 1, Role.ADMIN: 2}

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no valid bearer token (or, at login, bad credentials)"},
    403: {"description": "the token's role may not do this; the detail names the role needed"},
    404: {"description": "no such item in the caller's organisation"},
    409: {"description": "refused in the current state (e.g. a site that still has edges)"},
}
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")]
Offset = Annotated[int, Query(ge=0, le=2**31, description="rows to skip")]
ItemId = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN)]
FilterId = Annotated[str | None, Query(min_length=1, max_length=64, pattern=ID_PATTERN)]
RoleCheck = Callable[[Principal], Coroutine[Any, Any, Principal]]


def build_api(backend: Backend, *, title: str = "VoxEdge admin API") -> FastAPI:
    app = FastAPI(title=title, version="1", docs_url="/docs", openapi_url="/openapi.json")
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    bearer = HTTPBearer(auto_error=False, description="a token from POST /api/v1/auth/token")

    async def principal(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        if credentials is None:
            raise Unauthorized("a bearer token is required")
        if len(credentials.credentials) > MAX_TOKEN_CHARS:
            raise Unauthorized("invalid, expired or revoked token")
        return await backend.authenticate(credentials.credentials)

    def needs(role: Role) -> RoleCheck:
        async def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
            if _RANK[who.role] < _RANK[role]:
                raise Forbidden(f"this needs the {role.value} role; the token has {who.role.value}")
            return who

        return check

    router = APIRouter(prefix=PREFIX, responses=_ERRORS)
    _login_route(router, backend)
    for resource in RESOURCES:
        filters = _site_filter if "site_id" in resource.filters else _no_filter
        _read_routes(router, backend, resource.path, resource.out, needs(Role.VIEWER), filters)
        _write_routes(router, backend, resource, needs(resource.write_role))
    _read_routes(router, backend, "cdrs", schemas.CdrOut, needs(Role.VIEWER), _cdr_filter)
    _read_routes(router, backend, "audit-log", schemas.AuditOut, needs(Role.ADMIN), _no_filter)
    _edge_actions(router, backend, needs(Role.ADMIN))
    app.include_router(router)
    return app


# -- routes --------------------------------------------------------------------------------


def _login_route(router: APIRouter, backend: Backend) -> None:
    @router.post("/auth/token", response_model=schemas.TokenOut, tags=["auth"])
    async def login(body: schemas.LoginIn) -> dict[str, Any]:
        """A bearer token for ``Authorization: Bearer <token>``, valid for hours."""
        issued = await backend.login(body.username, body.password, body.organisation)
        return {"token": issued.token, "expires_at": issued.expires_at}


def _read_routes(
    router: APIRouter,
    backend: Backend,
    path: str,
    out: type[BaseModel],
    read: RoleCheck,
    filters: Callable[..., dict[str, Any]],
) -> None:
    slug = path.replace("-", "_")

    @router.get(f"/{path}", response_model=_page_of(out), name=f"list_{slug}", tags=[path])
    async def list_items(
        who: Annotated[Principal, Depends(read)],
        where: Annotated[dict[str, Any], Depends(filters)],
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        # One row more than asked tells whether there is a next page.
        items = await backend.list(who, path, Page(limit + 1, offset, where))
        more = len(items) > limit
        return {
            "items": items[:limit],
            "limit": limit,
            "offset": offset,
            "next_offset": offset + limit if more else None,
        }

    @router.get(f"/{path}/{{item_id}}", response_model=out, name=f"get_{slug}", tags=[path])
    async def get_item(item_id: ItemId, who: Annotated[Principal, Depends(read)]) -> Item:
        return await backend.get(who, path, item_id)


def _write_routes(
    router: APIRouter, backend: Backend, resource: Resource, write: RoleCheck
) -> None:
    path, slug = resource.path, resource.path.replace("-", "_")
    tags: list[str | Enum] = [path]
    create_body, update_body = resource.create, resource.update

    @router.post(
        f"/{path}", status_code=201, response_model=resource.out, name=f"create_{slug}", tags=tags
    )
    async def create_item(
        body: create_body,  # type: ignore[valid-type]
        who: Annotated[Principal, Depends(write)],
    ) -> Item:
        values = body.model_dump(mode="json")  # type: ignore[attr-defined]
        faults = resource.rules(values, None)
        return await backend.create(who, path, values, faults)

    @router.patch(
        f"/{path}/{{item_id}}", response_model=resource.out, name=f"update_{slug}", tags=tags
    )
    async def update_item(
        item_id: ItemId,
        body: update_body,  # type: ignore[valid-type]
        who: Annotated[Principal, Depends(write)],
    ) -> Item:
        changes = body.model_dump(mode="json", exclude_unset=True)  # type: ignore[attr-defined]
        current = await backend.get(who, path, item_id)
        if not changes:
            return current
        faults = resource.rules(changes, current)
        return await backend.update(who, path, item_id, changes, faults)

    @router.delete(f"/{path}/{{item_id}}", status_code=204, name=f"delete_{slug}", tags=tags)
    async def delete_item(item_id: ItemId, who: Annotated[Principal, Depends(write)]) -> Response:
        await backend.delete(who, path, item_id)
        return Response(status_code=204)


def _edge_actions(router: APIRouter, backend: Backend, admin: RoleCheck) -> None:
    @router.post(
        "/edges/{item_id}/pairing-token",
        status_code=201,
        response_model=schemas.TokenOut,
        tags=["edges"],
    )
    async def issue_pairing_token(
        item_id: ItemId, who: Annotated[Principal, Depends(admin)]
    ) -> dict[str, Any]:
        """A single-use token the edge presents once, with its CSR, to get its certificate."""
        issued = await backend.issue_pairing_token(who, item_id)
        return {"token": issued.token, "expires_at": issued.expires_at}

    @router.post("/edges/{item_id}/revoke", response_model=schemas.EdgeOut, tags=["edges"])
    async def revoke_edge(item_id: ItemId, who: Annotated[Principal, Depends(admin)]) -> Item:
        """Refuse the edge on every gRPC call from now on, whatever its certificate says."""
        return await backend.revoke_edge(who, item_id)


# -- list filters (FastAPI dependencies) ---------------------------------------------------


def _no_filter() -> dict[str, Any]:
    return {}


def _site_filter(site_id: FilterId = None) -> dict[str, Any]:
    return {} if site_id is None else {"site_id": site_id}


def _cdr_filter(
    edge_id: FilterId = None,
    since: Annotated[AwareDatetime | None, Query(description="started at or after")] = None,
    until: Annotated[AwareDatetime | None, Query(description="started before")] = None,
) -> dict[str, Any]:
    where: dict[str, Any] = {"edge_id": edge_id} if edge_id is not None else {}
    for key, moment in (("since", since), ("until", until)):
        if moment is not None:
            where[key] = moment.astimezone(datetime.UTC)
    return where


def _page_of(out: type[BaseModel]) -> type[BaseModel]:
    page: type[BaseModel] = create_model(
        out.__name__.removesuffix("Out") + "Page",
        __base__=schemas.Response,
        items=(list[out], ...),  # type: ignore[valid-type]
        limit=(int, ...),
        offset=(int, ...),
        next_offset=(int | None, ...),
    )
    return page


# -- errors --------------------------------------------------------------------------------


async def _api_error(request: HttpRequest, exc: ApiError) -> JSONResponse:
    if isinstance(exc, Invalid):
        return _faults_response(exc.faults)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
    return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=headers)


async def _validation_error(request: HttpRequest, exc: RequestValidationError) -> JSONResponse:
    # FastAPI's shape without "input" and "ctx": the input of a bad field may be a password.
    faults = [
        Fault(tuple(e.get("loc", ())), str(e.get("msg", "")), str(e.get("type", "")))
        for e in exc.errors()
    ]
    return _faults_response(faults)


def _faults_response(faults: Sequence[Fault]) -> JSONResponse:
    return JSONResponse({"detail": [f.as_json() for f in faults]}, status_code=422)

"""What a backend raises for the routes to answer: each maps to one HTTP status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Fault:
    """One bad field, in FastAPI's 422 shape: ``loc`` such as ("body", "trunk_ids", 1)."""

    loc: tuple[str | int, ...]
    msg: str
    type: str = "value_error"

    def as_json(self) -> dict[str, object]:
        return {"loc": list(self.loc), "msg": self.msg, "type": self.type}


def body_fault(field: str | tuple[str | int, ...], msg: str, kind: str = "value_error") -> Fault:
    path = (field,) if isinstance(field, str) else field
    return Fault(("body", *path), msg, kind)


class ApiError(Exception):
    status = 500


class Unauthorized(ApiError):
    """No, a bad, an expired or a revoked bearer token; or a failed login."""

    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    """Not in the caller's organisation (also when it exists in another one)."""

    status = 404


class Conflict(ApiError):
    """The request is valid but the current state forbids it (e.g. a site with edges)."""

    status = 409


class Invalid(ApiError):
    """422 naming every bad field, checks the backend alone can make included."""

    status = 422

    def __init__(self, faults: Sequence[Fault]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, f.loc))}: {f.msg}" for f in faults))
        self.faults = list(faults)

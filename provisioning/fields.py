"""Reusable field types: each carries its bounds and its validator, so a create model and
its partial (PATCH) twin check a field the same way."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from provisioning import validation as v

MAX_LIST = 100  # every list in a request body has a bound

Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(v.name)]
Description = Annotated[str, Field(max_length=2000), AfterValidator(v.no_control)]
# Ids are UUIDs; a well-formed id that names nothing is the backend's 422 (or 404 in a path).
# The pattern keeps NUL and friends out of queries (PostgreSQL refuses them in text).
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=ID_PATTERN)]
Password = Annotated[
    str, Field(min_length=8, max_length=128, description="write-only; stored as digest HA1")
]
Extension = Annotated[str, Field(max_length=32), AfterValidator(v.extension)]
E164 = Annotated[str, Field(max_length=16, examples=["+4930123456"]), AfterValidator(v.e164)]
MacAddress = Annotated[str, Field(max_length=17), AfterValidator(v.mac_address)]
Timezone = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(v.timezone)]
IpLiteral = Annotated[
    str, Field(max_length=45, examples=["192.0.2.10"]), AfterValidator(v.ip_literal)
]
IpNetwork = Annotated[
    str, Field(max_length=49, examples=["192.0.2.0/24"]), AfterValidator(v.ip_network)
]
DigestUser = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^:\x00-\x1f\x7f]+$")]
DigestRealm = Annotated[str, Field(min_length=1, max_length=253, pattern=r'^[^"\x00-\x1f\x7f]+$')]
Codecs = Annotated[
    list[str],
    Field(min_length=1, max_length=len(v.KNOWN_CODECS), examples=[["PCMU", "PCMA"]]),
    AfterValidator(v.codecs),
]
DigestAlgorithms = Annotated[
    list[str],
    Field(min_length=1, max_length=len(v.DIGEST_ALGORITHMS), examples=[["SHA-256", "MD5"]]),
    AfterValidator(v.digest_algorithms),
]
Classification = Annotated[str, Field(max_length=64), AfterValidator(v.classification)]
Pattern = Annotated[
    str,
    Field(min_length=1, max_length=v.MAX_PATTERN_CHARS, examples=[r"^\+1([2-9]\d{9})$"]),
    AfterValidator(v.safe_pattern),
]
Replacement = Annotated[
    str, Field(max_length=v.MAX_REPLACEMENT_CHARS), AfterValidator(v.no_control)
]
Priority = Annotated[int, Field(ge=0, le=65535)]
Rate = Annotated[str, Field(max_length=32, examples=["40/5s"]), AfterValidator(v.rate)]
PortRange = Annotated[
    str, Field(max_length=11, examples=["20000-29999"]), AfterValidator(v.port_range)
]
Expires = Annotated[int, Field(ge=1, le=7 * 86_400)]
Timeout = Annotated[float, Field(gt=0, le=86_400)]

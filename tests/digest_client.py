"""What a user agent does with a digest challenge (RFC 7616 §3.4), for tests."""

from __future__ import annotations

import re

from sip.digest import compute_response, ha1
from sip.message import Response


def authorization(
    challenge: Response,
    user: str,
    password: str,
    *,
    uri: str = "sip:voxedge.test",
    method: str = "REGISTER",
    algorithm: str | None = None,
    nc: int = 1,
    realm: str = "voxedge.test",
) -> str:
    """The Authorization value answering ``challenge``'s ``algorithm`` offer with qop=auth
    (by default the first, preferred offer, as a UA that supports both would)."""
    header = "Proxy-Authenticate" if challenge.status == 407 else "WWW-Authenticate"
    offers = challenge.headers.get_all(header)
    value = next(v for v in offers if algorithm is None or f"algorithm={algorithm}" in v)
    params = dict(re.findall(r'(\w+)="?([^",]+)"?', value))
    algorithm = params["algorithm"]
    count = f"{nc:08x}"
    digest = compute_response(
        ha1(user, realm, password, algorithm),
        algorithm=algorithm,
        nonce=params["nonce"],
        method=method,
        uri=uri,
        qop="auth",
        nc=count,
        cnonce="c0ffee",
    )
    return (
        f'Digest username="{user}", realm="{realm}", nonce="{params["nonce"]}", '
        f'uri="{uri}", response="{digest}", algorithm={algorithm}, '
        f'qop=auth, nc={count}, cnonce="c0ffee", opaque="{params["opaque"]}"'
    )

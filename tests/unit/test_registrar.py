"""Registrar behaviour (RFC 3261 §10.3) under a fake clock, no sockets."""

from __future__ import annotations

import collections
import dataclasses
import re
from pathlib import Path

import pytest

from edge.auth import PhoneAuth
from edge.config import EdgeConfig, parse_config
from edge.limits import AuthFailureThrottle
from edge.location import LocationService
from edge.registrar import Registrar
from sip.digest import DigestAuthenticator
from sip.flow import Flow
from sip.message import Request, Response
from sip.parser import parse_message
from sip.validate import validate_request
from tests.digest_client import authorization

CONFIG = """
[edge]
name = "t"
domain = "voxedge.test"
advertise = "127.0.0.1"
data_dir = "var"
min_expires = 60
max_expires = 3600
default_expires = 1800
auth_failures = "3/60s"
auth_cooldown = 30

[[phones]]
name = "alice"
type = "generic_sip"
extension = "1001"
password = "alice-secret"

[[phones]]
name = "bob"
type = "generic_sip"
extension = "1002"
password = "bob-secret"

[[phones]]
name = "legacy"
type = "generic_sip"
extension = "1003"
password = "legacy-secret"
digest_algorithms = ["MD5"]
"""
FLOW = Flow("udp", ("127.0.0.1", 5070), ("127.0.0.1", 8060))
WALL = 1_800_000_000.0


class Phone:
    """Builds REGISTERs the way a UA does, answering challenges."""

    def __init__(self, user: str, password: str, call_id: str = "reg-1@127.0.0.1") -> None:
        self.user = user
        self.password = password
        self.call_id = call_id
        self.cseq = 0
        self.nc = 0

    def register(
        self,
        contacts: list[str] | None = None,
        *,
        expires: int | None = None,
        auth: str | None = None,
        to_user: str | None = None,
        extra: str = "",
    ) -> Request:
        self.cseq += 1
        to = f"sip:{to_user or self.user}@voxedge.test"
        branch = f"{self.call_id.split('@')[0]}-{self.cseq}"
        lines = [
            "REGISTER sip:voxedge.test SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-{branch}",
            "Max-Forwards: 70",
            f"From: <{to}>;tag=f1",
            f"To: <{to}>",
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} REGISTER",
        ]
        lines += [f"Contact: {c}" for c in (contacts if contacts is not None else [])]
        if expires is not None:
            lines.append(f"Expires: {expires}")
        if auth is not None:
            lines.append(f"Authorization: {auth}")
        if extra:
            lines.append(extra)
        data = ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()
        message = parse_message(data)
        assert isinstance(message, Request)
        return message

    def answer(self, challenge: Response, algorithm: str = "SHA-256") -> str:
        self.nc += 1
        return authorization(challenge, self.user, self.password, algorithm=algorithm, nc=self.nc)


class Harness:
    def __init__(self) -> None:
        self.config: EdgeConfig = parse_config(CONFIG, Path("."))
        self.counts: collections.Counter[str] = collections.Counter()
        self.location = LocationService(max_bindings_per_aor=3)
        reject = lambda reason, flow, detail: self.counts.update([reason])  # noqa: E731
        auth = PhoneAuth(
            DigestAuthenticator(b"k" * 32, "voxedge.test", nonce_ttl=300),
            AuthFailureThrottle(self.config.edge.auth_failures, self.config.edge.auth_cooldown),
            reject,
        )
        self.registrar = Registrar(auth, self.location, reject, lambda: WALL)
        self.now = 1000.0

    def send(self, request: Request, flow: Flow = FLOW) -> Response:
        return self.registrar.handle(
            request, validate_request(request), flow, self.config, self.now
        )

    def register(self, phone: Phone, contacts: list[str] | None, **kw: object) -> Response:
        """Challenge, then the authenticated retry; returns the final answer."""
        challenge = self.send(phone.register(contacts, **kw))  # type: ignore[arg-type]
        assert challenge.status == 401
        return self.send(phone.register(contacts, auth=phone.answer(challenge), **kw))  # type: ignore[arg-type]


@pytest.fixture
def reg() -> Harness:
    return Harness()


def contacts_of(response: Response) -> dict[str, str]:
    out = {}
    for value in response.headers.values("Contact"):
        uri, _, params = value.partition(">")
        out[uri.lstrip("<")] = params
    return out


def test_unauthenticated_register_gets_sha256_and_md5_challenges(reg: Harness) -> None:
    response = reg.send(Phone("1001", "alice-secret").register(["<sip:1001@127.0.0.1:5070>"]))
    assert response.status == 401
    challenges = response.headers.get_all("WWW-Authenticate")
    assert [re.search(r"algorithm=([\w-]+)", c).group(1) for c in challenges] == [  # type: ignore[union-attr]
        "SHA-256",
        "MD5",
    ]
    assert len(reg.location) == 0
    assert reg.counts["AUTH_FAILED"] == 0  # a challenge is not a failure


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_register_with_digest_creates_binding_with_expiry_and_date(
    reg: Harness, algorithm: str
) -> None:
    phone = Phone("1001", "alice-secret")
    challenge = reg.send(phone.register(["<sip:1001@127.0.0.1:5070>"]))
    ok = reg.send(
        phone.register(["<sip:1001@127.0.0.1:5070>"], auth=phone.answer(challenge, algorithm))
    )
    assert ok.status == 200
    assert contacts_of(ok) == {"sip:1001@127.0.0.1:5070": ";expires=1800"}
    assert ok.headers.get("Date") == "Fri, 15 Jan 2027 08:00:00 GMT"
    [binding] = reg.location.lookup("sip:1001@voxedge.test", reg.now)
    assert binding.flow == FLOW


def test_wrong_password_gets_403_and_no_binding(reg: Harness) -> None:
    phone = Phone("1001", "wrong")
    challenge = reg.send(phone.register(["<sip:1001@127.0.0.1:5070>"]))
    response = reg.send(phone.register(["<sip:1001@127.0.0.1:5070>"], auth=phone.answer(challenge)))
    assert response.status == 403
    assert len(reg.location) == 0
    assert reg.counts["AUTH_FAILED"] == 1


def test_unknown_user_is_challenged_then_refused(reg: Harness) -> None:
    response = reg.register(Phone("4242", "x"), ["<sip:4242@127.0.0.1:5070>"])
    assert response.status == 403


def test_expired_nonce_gets_stale_challenge(reg: Harness) -> None:
    phone = Phone("1001", "alice-secret")
    challenge = reg.send(phone.register(["<sip:1001@127.0.0.1:5070>"]))
    reg.now += 301
    response = reg.send(phone.register(["<sip:1001@127.0.0.1:5070>"], auth=phone.answer(challenge)))
    assert response.status == 401
    assert all("stale=true" in v for v in response.headers.get_all("WWW-Authenticate"))


def test_replayed_nonce_count_is_refused(reg: Harness) -> None:
    phone = Phone("1001", "alice-secret")
    challenge = reg.send(phone.register(["<sip:1001@127.0.0.1:5070>"]))
    auth = phone.answer(challenge)
    assert reg.send(phone.register(["<sip:1001@127.0.0.1:5070>"], auth=auth)).status == 200
    assert reg.send(phone.register(["<sip:1001@127.0.0.1:5070>"], auth=auth)).status == 403


def test_interval_too_brief_gets_423_with_min_expires(reg: Harness) -> None:
    response = reg.register(
        Phone("1001", "alice-secret"), ["<sip:1001@127.0.0.1:5070>"], expires=30
    )
    assert response.status == 423
    assert response.headers.get("Min-Expires") == "60"
    assert len(reg.location) == 0


def test_expiry_above_maximum_is_clamped(reg: Harness) -> None:
    response = reg.register(
        Phone("1001", "alice-secret"), ["<sip:1001@127.0.0.1:5070>;expires=999999"]
    )
    assert response.status == 200
    assert contacts_of(response)["sip:1001@127.0.0.1:5070"] == ";expires=3600"


def test_multiple_contacts_with_q_values_and_query(reg: Harness) -> None:
    phone = Phone("1001", "alice-secret")
    response = reg.register(
        phone, ["<sip:1001@127.0.0.1:5070>;q=0.5", "<sip:1001@127.0.0.1:5071>;q=1.0"]
    )
    assert response.status == 200
    query = reg.register(phone, None)
    assert query.status == 200
    assert contacts_of(query) == {
        "sip:1001@127.0.0.1:5071": ";expires=1800",
        "sip:1001@127.0.0.1:5070": ";expires=1800;q=0.5",
    }


def test_unregister_one_contact_keeps_the_other(reg: Harness) -> None:
    phone = Phone("1001", "alice-secret")
    reg.register(phone, ["<sip:1001@127.0.0.1:5070>", "<sip:1001@127.0.0.1:5071>"])
    response = reg.register(phone, ["<sip:1001@127.0.0.1:5070>;expires=0"])
    assert list(contacts_of(response)) == ["sip:1001@127.0.0.1:5071"]


def test_wildcard_unregister_removes_all(reg: Harness) -> None:
    phone = Phone("1001", "alice-secret")
    reg.register(phone, ["<sip:1001@127.0.0.1:5070>", "<sip:1001@127.0.0.1:5071>"])
    response = reg.register(phone, ["*"], expires=0)
    assert response.status == 200
    assert response.headers.get("Contact") is None
    assert len(reg.location) == 0


@pytest.mark.parametrize(
    ("contacts", "expires", "reason"),
    [
        (["*"], None, "Wildcard Contact requires Expires: 0"),
        (["*"], 3600, "Wildcard Contact requires Expires: 0"),
        (["*", "<sip:1001@127.0.0.1:5070>"], 0, "Wildcard Contact must be alone"),
        (["<sip:1001@127.0.0.1:5070>;q=2"], None, "Malformed Contact q value"),
        (["<sip:1001@127.0.0.1:5070>;expires=soon"], None, "Malformed Contact expires"),
        (["<sip:1001@127.0.0.1:5070>;expires=4294967296"], None, "Contact expires out of range"),
        (["<tel:+15551234>"], None, "Contact must be a SIP or SIPS URI"),
        (["sip:1001@127.0.0.1?Route=%3Csip:evil%3E"], None, "must be enclosed in <>"),
    ],
)
def test_bad_contacts_get_400_naming_the_fault(
    reg: Harness, contacts: list[str], expires: int | None, reason: str
) -> None:
    response = reg.register(Phone("1001", "alice-secret"), contacts, expires=expires)
    assert response.status == 400
    assert reason in response.reason
    assert len(reg.location) == 0


def test_same_call_id_with_old_cseq_is_refused(reg: Harness) -> None:
    phone = Phone("1001", "alice-secret")
    phone.cseq = 10
    reg.register(phone, ["<sip:1001@127.0.0.1:5070>"])
    phone.cseq -= 5  # an out-of-order REGISTER from the same registration session
    response = reg.register(phone, ["<sip:1001@127.0.0.1:5070>;expires=0"])
    assert response.status == 500
    assert len(reg.location) == 1


def test_new_call_id_replaces_binding_regardless_of_cseq(reg: Harness) -> None:
    reg.register(Phone("1001", "alice-secret", "a@127.0.0.1"), ["<sip:1001@127.0.0.1:5070>"])
    other = Phone("1001", "alice-secret", "b@127.0.0.1")
    response = reg.register(other, ["<sip:1001@127.0.0.1:5070>;expires=120"])
    assert response.status == 200
    [binding] = reg.location.lookup("sip:1001@voxedge.test", reg.now)
    assert binding.call_id == "b@127.0.0.1"


def test_a_phone_removed_from_the_config_loses_its_bindings_at_once(reg: Harness) -> None:
    reg.register(Phone("1001", "alice-secret"), ["<sip:1001@127.0.0.1:5070>"])
    reg.register(Phone("1002", "bob-secret"), ["<sip:1002@127.0.0.1:5071>"])
    assert reg.registrar.prune(reg.config, reg.now) == []  # nothing removed, nothing dropped
    kept = dataclasses.replace(reg.config, phones=[reg.config.phones[1]])
    assert reg.registrar.prune(kept, reg.now) == ["sip:1001@voxedge.test"]
    assert reg.location.lookup("sip:1001@voxedge.test", reg.now) == []
    assert len(reg.location.lookup("sip:1002@voxedge.test", reg.now)) == 1
    moved = dataclasses.replace(kept, edge=dataclasses.replace(kept.edge, domain="other.test"))
    assert reg.registrar.prune(moved, reg.now) == ["sip:1002@voxedge.test"]
    assert len(reg.location) == 0


def test_bindings_expire_on_time(reg: Harness) -> None:
    reg.register(Phone("1001", "alice-secret"), ["<sip:1001@127.0.0.1:5070>;expires=60"])
    assert reg.location.next_deadline() == reg.now + 60
    assert reg.location.handle_timer(reg.now + 59.9) == []
    expired = reg.location.handle_timer(reg.now + 60)
    assert [b.contact for b in expired] == ["sip:1001@127.0.0.1:5070"]
    assert reg.location.lookup("sip:1001@voxedge.test", reg.now + 60) == []


def test_reregister_after_expiry_creates_a_fresh_binding(reg: Harness) -> None:
    phone = Phone("1001", "alice-secret")
    reg.register(phone, ["<sip:1001@127.0.0.1:5070>;expires=60"])
    reg.now += 61
    reg.location.handle_timer(reg.now)
    assert reg.register(phone, ["<sip:1001@127.0.0.1:5070>"]).status == 200
    assert len(reg.location.lookup("sip:1001@voxedge.test", reg.now)) == 1


def test_too_many_contacts_for_one_aor_is_refused(reg: Harness) -> None:
    contacts = [f"<sip:1001@127.0.0.1:{5070 + i}>" for i in range(4)]
    response = reg.register(Phone("1001", "alice-secret"), contacts)
    assert response.status == 403
    assert len(reg.location) == 0


def test_user_cannot_register_another_users_aor(reg: Harness) -> None:
    phone = Phone("1001", "alice-secret")
    challenge = reg.send(phone.register(["<sip:1001@127.0.0.1:5070>"], to_user="1002"))
    response = reg.send(
        phone.register(["<sip:1001@127.0.0.1:5070>"], auth=phone.answer(challenge), to_user="1002")
    )
    assert response.status == 403
    assert len(reg.location) == 0


def test_foreign_domain_gets_404_without_challenge(reg: Harness) -> None:
    request = Phone("1001", "x").register(["<sip:1001@127.0.0.1:5070>"])
    request.headers.set("To", "<sip:1001@elsewhere.example>")
    assert reg.send(request).status == 404


def test_non_sip_aor_gets_400(reg: Harness) -> None:
    request = Phone("1001", "x").register(["<sip:1001@127.0.0.1:5070>"])
    request.headers.set("To", "<tel:+15551234>")
    response = reg.send(request)
    assert (response.status, response.reason) == (400, "AOR must be a SIP or SIPS URI")


def test_unknown_authorization_scheme_is_challenged(reg: Harness) -> None:
    request = Phone("1001", "x").register(
        ["<sip:1001@127.0.0.1:5070>"], auth="NoOneKnowsThisScheme opaque-data=here"
    )
    assert reg.send(request).status == 401


def test_malformed_authorization_gets_400(reg: Harness) -> None:
    request = Phone("1001", "x").register(
        ["<sip:1001@127.0.0.1:5070>"], auth='Digest username="1001, realm='
    )
    response = reg.send(request)
    assert response.status == 400
    assert response.reason.startswith("Malformed Authorization")


def test_failed_auth_burst_blocks_source_for_cooldown(reg: Harness) -> None:
    phone = Phone("1001", "wrong")
    for _ in range(3):
        assert reg.register(phone, ["<sip:1001@127.0.0.1:5070>"]).status == 403
    # Blocked: even a challenge-less request is refused now, with no challenge.
    blocked = reg.send(Phone("1001", "alice-secret").register(["<sip:1001@127.0.0.1:5070>"]))
    assert (blocked.status, blocked.reason) == (403, "Too many failed authentications")
    other = Flow("udp", ("127.0.0.2", 5070), ("127.0.0.1", 8060))
    good = Phone("1001", "alice-secret")
    assert reg.send(good.register(["<sip:1001@127.0.0.1:5070>"]), other).status == 401
    reg.now += 31
    assert reg.register(good, ["<sip:1001@127.0.0.1:5070>"]).status == 200


def test_challenges_alone_never_trip_the_throttle(reg: Harness) -> None:
    phone = Phone("1001", "alice-secret")
    for _ in range(20):
        assert reg.send(phone.register(["<sip:1001@127.0.0.1:5070>"])).status == 401
    assert reg.register(phone, ["<sip:1001@127.0.0.1:5070>"]).status == 200


def test_escaped_contact_header_is_stored_verbatim_not_as_route(reg: Harness) -> None:
    contact = "sip:1001@127.0.0.1:5070?Route=%3Csip:evil.example%3E"
    response = reg.register(Phone("1001", "alice-secret"), [f"<{contact}>"])
    assert response.status == 200
    [binding] = reg.location.lookup("sip:1001@voxedge.test", reg.now)
    assert binding.contact == contact
    assert binding.flow == FLOW  # requests go to the flow, never to a host named in the URI


def test_md5_only_phone_is_challenged_with_md5_alone_and_refuses_sha256(reg: Harness) -> None:
    phone = Phone("1003", "legacy-secret")
    challenge = reg.send(phone.register(["<sip:1003@127.0.0.1:5070>"]))
    [value] = challenge.headers.get_all("WWW-Authenticate")
    assert "algorithm=MD5" in value
    # A SHA-256 answer (computed against a challenge the phone was never offered) fails.
    forged = Response(401, "Unauthorized")
    forged.headers.add("WWW-Authenticate", value.replace("algorithm=MD5", "algorithm=SHA-256"))
    response = reg.send(phone.register(["<sip:1003@127.0.0.1:5070>"], auth=phone.answer(forged)))
    assert response.status == 403
    challenge = reg.send(phone.register(["<sip:1003@127.0.0.1:5070>"]))
    auth = phone.answer(challenge, "MD5")
    assert reg.send(phone.register(["<sip:1003@127.0.0.1:5070>"], auth=auth)).status == 200


def test_throttle_block_is_logged_once(reg: Harness, caplog: pytest.LogCaptureFixture) -> None:
    phone = Phone("1001", "wrong")
    with caplog.at_level("WARNING", logger="voxedge.registrar"):
        for _ in range(3):  # the third failure trips the 3/60s throttle
            assert reg.register(phone, ["<sip:1001@127.0.0.1:5070>"]).status == 403
        for _ in range(5):  # blocked: refused at once, no further log lines
            assert reg.send(phone.register(["<sip:1001@127.0.0.1:5070>"])).status == 403
    warnings = [r for r in caplog.records if "auth throttle" in r.getMessage()]
    assert len(warnings) == 1
    assert "alice-secret" not in caplog.text and "wrong" not in caplog.text  # no secrets logged

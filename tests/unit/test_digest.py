"""Digest authentication core (sip/digest.py): vectors, round trips, replay, parsing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip.digest import (
    AuthResult,
    Credentials,
    DigestAuthenticator,
    DigestError,
    compute_response,
    ha1,
    parse_credentials,
)

SECRET = b"0123456789abcdef-test-secret"
REALM = "edge.example.com"
USER = "alice"
PASSWORD = "wonderland"
URI = "sip:edge.example.com"
T0 = 1_000_000.0

# RFC 7616 §3.9.1
RFC_REALM = "http-auth@example.org"
RFC_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


def lookup(username: str, algorithm: str) -> str | None:
    return ha1(USER, REALM, PASSWORD, algorithm) if username == USER else None


def challenge(auth: DigestAuthenticator, now: float, algorithm: str = "MD5") -> Credentials:
    """The challenge for ``algorithm`` (challenges share the credentials grammar)."""
    for value in auth.challenge_values(now):
        parsed = parse_credentials(value)
        if parsed.algorithm == algorithm:
            return parsed
    raise AssertionError(f"no {algorithm} challenge")


def answer(
    chal: Credentials,
    *,
    method: str = "REGISTER",
    password: str = PASSWORD,
    username: str = USER,
    nc: str | None = "00000001",
    qop: str | None = "auth",
    nonce: str | None = None,
) -> Credentials:
    """What a UAC sends back: an Authorization header value, parsed as the server would."""
    assert chal.realm is not None and chal.nonce is not None
    nonce = chal.nonce if nonce is None else nonce
    cnonce = "0a4f113b"
    digest = compute_response(
        ha1(username, chal.realm, password, chal.algorithm),
        algorithm=chal.algorithm,
        nonce=nonce,
        method=method,
        uri=URI,
        qop=qop,
        nc=nc,
        cnonce=cnonce,
    )
    value = (
        f'Digest username="{username}", realm="{chal.realm}", nonce="{nonce}", '
        f'uri="{URI}", response="{digest}", algorithm={chal.algorithm}, opaque="{chal.opaque}"'
    )
    if qop is not None:
        value += f', qop={qop}, nc={nc}, cnonce="{cnonce}"'
    return parse_credentials(value)


@pytest.fixture
def auth() -> DigestAuthenticator:
    return DigestAuthenticator(SECRET, REALM, nonce_ttl=300.0)


# -- known vectors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ],
)
def test_response_matches_rfc7616_example(algorithm: str, expected: str) -> None:
    stored = ha1("Mufasa", RFC_REALM, "Circle of Life", algorithm)
    response = compute_response(
        stored,
        algorithm=algorithm,
        nonce=RFC_NONCE,
        method="GET",
        uri="/dir/index.html",
        qop="auth",
        nc="00000001",
        cnonce=RFC_CNONCE,
    )
    assert response == expected


def test_rfc7616_example_header_parses() -> None:
    creds = parse_credentials(
        'Digest username="Mufasa",\r\n realm="http-auth@example.org",\r\n'
        ' uri="/dir/index.html", algorithm=SHA-256,'
        ' nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",'
        ' nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth,'
        ' response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",'
        ' opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
    )
    assert creds.scheme == "Digest"
    assert creds.username == "Mufasa"
    assert creds.realm == RFC_REALM
    assert creds.uri == "/dir/index.html"
    assert creds.algorithm == "SHA-256"
    assert creds.nonce == RFC_NONCE
    assert creds.nc == "00000001"
    assert creds.cnonce == RFC_CNONCE
    assert creds.qop == "auth"
    assert creds.opaque == "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"


# -- challenges ------------------------------------------------------------------------------


def test_challenge_offers_sha256_before_md5(auth: DigestAuthenticator) -> None:
    values = auth.challenge_values(T0)
    assert [parse_credentials(v).algorithm for v in values] == ["SHA-256", "MD5"]
    for value in values:
        chal = parse_credentials(value)
        assert chal.scheme == "Digest"
        assert chal.realm == REALM
        assert chal.qop == "auth"
        assert chal.nonce and chal.opaque
        assert "stale" not in chal.params


def test_challenge_marks_stale_when_asked(auth: DigestAuthenticator) -> None:
    for value in auth.challenge_values(T0, stale=True):
        assert parse_credentials(value).params["stale"] == "true"


def test_challenge_quotes_realm_with_specials() -> None:
    odd = DigestAuthenticator(SECRET, 'a "quoted" \\ realm')
    assert parse_credentials(odd.challenge_values(T0)[0]).realm == 'a "quoted" \\ realm'


def test_each_challenge_gets_a_fresh_nonce(auth: DigestAuthenticator) -> None:
    assert challenge(auth, T0).nonce != challenge(auth, T0).nonce


def test_constructor_refuses_weak_secret_and_bad_realm() -> None:
    with pytest.raises(ValueError):
        DigestAuthenticator(b"short", REALM)
    with pytest.raises(ValueError):
        DigestAuthenticator(SECRET, "evil\r\nX-Injected: 1")
    with pytest.raises(ValueError):
        DigestAuthenticator(SECRET, REALM, nonce_ttl=0)
    with pytest.raises(ValueError):
        DigestAuthenticator(SECRET, REALM, max_tracked_nonces=0)


# -- verification ----------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_round_trip_challenge_answer_verifies(auth: DigestAuthenticator, algorithm: str) -> None:
    creds = answer(challenge(auth, T0, algorithm))
    result = auth.verify(creds, "REGISTER", lookup, T0 + 1)
    assert result == AuthResult(ok=True, stale=False, username=USER, reason="ok")


def test_lookup_is_asked_for_the_base_algorithm(auth: DigestAuthenticator) -> None:
    asked: list[tuple[str, str]] = []

    def recording_lookup(username: str, algorithm: str) -> str | None:
        asked.append((username, algorithm))
        return lookup(username, algorithm)

    creds = answer(challenge(auth, T0, "SHA-256"))
    assert auth.verify(creds, "REGISTER", recording_lookup, T0).ok
    assert asked == [(USER, "SHA-256")]


@pytest.mark.parametrize("algorithm", ["MD5-sess", "SHA-256-sess"])
def test_sess_variants_verify(auth: DigestAuthenticator, algorithm: str) -> None:
    chal = challenge(auth, T0, "MD5" if algorithm.startswith("MD5") else "SHA-256")
    base = ha1(USER, REALM, PASSWORD, chal.algorithm)
    assert chal.nonce is not None
    digest = compute_response(
        base,
        algorithm=algorithm,
        nonce=chal.nonce,
        method="INVITE",
        uri=URI,
        qop="auth",
        nc="00000001",
        cnonce="c1",
    )
    creds = Credentials(
        scheme="Digest",
        username=USER,
        realm=REALM,
        nonce=chal.nonce,
        uri=URI,
        response=digest,
        algorithm=algorithm,
        cnonce="c1",
        qop="auth",
        nc="00000001",
    )
    assert auth.verify(creds, "INVITE", lookup, T0).ok


def test_wrong_password_fails(auth: DigestAuthenticator) -> None:
    creds = answer(challenge(auth, T0), password="guess")
    result = auth.verify(creds, "REGISTER", lookup, T0)
    assert (result.ok, result.stale, result.reason) == (False, False, "bad response")


def test_response_for_another_method_fails(auth: DigestAuthenticator) -> None:
    creds = answer(challenge(auth, T0), method="REGISTER")
    assert auth.verify(creds, "INVITE", lookup, T0).reason == "bad response"


def test_unknown_user_fails(auth: DigestAuthenticator) -> None:
    creds = answer(challenge(auth, T0), username="mallory")
    result = auth.verify(creds, "REGISTER", lookup, T0)
    assert (result.ok, result.username, result.reason) == (False, "mallory", "unknown user")


def test_forged_nonce_fails(auth: DigestAuthenticator) -> None:
    genuine = challenge(auth, T0)
    assert genuine.nonce is not None
    tampered = genuine.nonce[:-1] + ("A" if genuine.nonce[-1] != "A" else "B")
    for nonce in (tampered, RFC_NONCE, "x", ""):
        creds = answer(genuine, nonce=nonce)
        result = auth.verify(creds, "REGISTER", lookup, T0)
        assert (result.ok, result.stale, result.reason) == (False, False, "nonce forged")


def test_nonce_from_another_secret_is_forged(auth: DigestAuthenticator) -> None:
    other = DigestAuthenticator(b"another-secret-of-16+", REALM)
    creds = answer(challenge(other, T0))
    assert auth.verify(creds, "REGISTER", lookup, T0).reason == "nonce forged"


def test_realm_mismatch_fails(auth: DigestAuthenticator) -> None:
    other = DigestAuthenticator(SECRET, "other.example.com")
    creds = answer(challenge(other, T0))
    assert auth.verify(creds, "REGISTER", lookup, T0).reason == "realm mismatch"


def test_changed_opaque_fails(auth: DigestAuthenticator) -> None:
    chal = challenge(auth, T0)
    creds = answer(chal)
    bad = Credentials(**{**_fields(creds), "opaque": "0" * 32})
    assert auth.verify(bad, "REGISTER", lookup, T0).reason == "opaque mismatch"


def test_absent_opaque_is_tolerated(auth: DigestAuthenticator) -> None:
    creds = answer(challenge(auth, T0))
    assert auth.verify(Credentials(**{**_fields(creds), "opaque": None}), "REGISTER", lookup, T0).ok


def test_expired_nonce_is_stale(auth: DigestAuthenticator) -> None:
    creds = answer(challenge(auth, T0))
    result = auth.verify(creds, "REGISTER", lookup, T0 + 300.0)
    assert (result.ok, result.stale, result.reason) == (False, True, "stale nonce")


def test_nonce_just_before_expiry_is_accepted(auth: DigestAuthenticator) -> None:
    creds = answer(challenge(auth, T0))
    assert auth.verify(creds, "REGISTER", lookup, T0 + 299.999).ok


def test_expired_nonce_with_wrong_password_is_not_stale(auth: DigestAuthenticator) -> None:
    # RFC 7616 §3.3: stale only tells a client that knows the password to retry.
    creds = answer(challenge(auth, T0), password="guess")
    result = auth.verify(creds, "REGISTER", lookup, T0 + 1000.0)
    assert (result.stale, result.reason) == (False, "bad response")


def test_nonce_count_replay_is_refused(auth: DigestAuthenticator) -> None:
    creds = answer(challenge(auth, T0), nc="00000001")
    assert auth.verify(creds, "REGISTER", lookup, T0).ok
    result = auth.verify(creds, "REGISTER", lookup, T0 + 1)
    assert (result.ok, result.stale, result.reason) == (False, False, "nonce-count replay")


def test_increasing_nonce_count_is_accepted(auth: DigestAuthenticator) -> None:
    chal = challenge(auth, T0)
    for nc in ("00000001", "00000002", "0000000a", "0000000B"):
        assert auth.verify(answer(chal, nc=nc), "REGISTER", lookup, T0).ok
    lower = auth.verify(answer(chal, nc="00000005"), "REGISTER", lookup, T0)
    assert lower.reason == "nonce-count replay"


def test_failed_attempt_does_not_consume_nonce_count(auth: DigestAuthenticator) -> None:
    chal = challenge(auth, T0)
    assert not auth.verify(answer(chal, password="guess"), "REGISTER", lookup, T0).ok
    assert auth.verify(answer(chal), "REGISTER", lookup, T0).ok


def test_qopless_rfc2069_response_verifies(auth: DigestAuthenticator) -> None:
    creds = answer(challenge(auth, T0), qop=None, nc=None)
    assert creds.qop is None and creds.nc is None
    assert auth.verify(creds, "REGISTER", lookup, T0).ok


def test_qopless_nonce_is_single_use(auth: DigestAuthenticator) -> None:
    creds = answer(challenge(auth, T0), qop=None, nc=None)
    assert auth.verify(creds, "REGISTER", lookup, T0).ok
    assert auth.verify(creds, "REGISTER", lookup, T0 + 1).reason == "nonce-count replay"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"scheme": "Basic"}, "not digest"),
        ({"username": None}, "missing parameter username"),
        ({"realm": None}, "missing parameter realm"),
        ({"nonce": None}, "missing parameter nonce"),
        ({"uri": None}, "missing parameter uri"),
        ({"response": None}, "missing parameter response"),
        ({"nc": None}, "missing parameter nc"),
        ({"cnonce": None}, "missing parameter cnonce"),
        ({"nc": "1"}, "bad nonce-count"),
        ({"nc": "0000000g"}, "bad nonce-count"),
        ({"algorithm": "SHA-512-256"}, "unsupported algorithm"),
        ({"algorithm": "AKAv1-MD5"}, "unsupported algorithm"),
        ({"qop": "auth-int"}, "unsupported qop"),
        ({"params": {"userhash": "true"}}, "unsupported userhash"),
    ],
)
def test_unusable_credentials_name_the_fault(
    auth: DigestAuthenticator, changes: dict[str, object], reason: str
) -> None:
    creds = answer(challenge(auth, T0))
    result = auth.verify(Credentials(**{**_fields(creds), **changes}), "REGISTER", lookup, T0)
    assert (result.ok, result.stale, result.reason) == (False, False, reason)


def test_algorithm_token_is_case_insensitive(auth: DigestAuthenticator) -> None:
    creds = answer(challenge(auth, T0, "SHA-256"))
    assert auth.verify(
        Credentials(**{**_fields(creds), "algorithm": "sha-256"}), "REGISTER", lookup, T0
    ).ok


# -- replay table bound and timers -----------------------------------------------------------


def test_replay_table_is_bounded() -> None:
    auth = DigestAuthenticator(SECRET, REALM, nonce_ttl=300.0, max_tracked_nonces=3)
    for i in range(10):
        creds = answer(challenge(auth, T0 + i))
        assert auth.verify(creds, "REGISTER", lookup, T0 + i).ok
        assert auth.tracked_nonces <= 3
    assert auth.tracked_nonces == 3


def test_evicted_nonce_is_stale_not_replayable() -> None:
    auth = DigestAuthenticator(SECRET, REALM, nonce_ttl=300.0, max_tracked_nonces=2)
    first = answer(challenge(auth, T0))
    assert auth.verify(first, "REGISTER", lookup, T0).ok
    for i in (1, 2):
        assert auth.verify(answer(challenge(auth, T0 + i)), "REGISTER", lookup, T0 + i).ok
    # The first nonce fell out of the table; a replay of it must still not pass.
    replay = auth.verify(first, "REGISTER", lookup, T0 + 3)
    assert (replay.ok, replay.stale) == (False, True)
    later = answer(first, nc="00000002")
    assert not auth.verify(later, "REGISTER", lookup, T0 + 3).ok


def test_expired_entries_are_dropped_before_live_ones() -> None:
    auth = DigestAuthenticator(SECRET, REALM, nonce_ttl=10.0, max_tracked_nonces=2)
    assert auth.verify(answer(challenge(auth, T0)), "REGISTER", lookup, T0).ok
    live = challenge(auth, T0 + 8)
    assert auth.verify(answer(live), "REGISTER", lookup, T0 + 8).ok
    # At T0+11 the first entry has expired: making room drops it, not the live one.
    assert auth.verify(answer(challenge(auth, T0 + 11)), "REGISTER", lookup, T0 + 11).ok
    assert auth.verify(answer(live, nc="00000002"), "REGISTER", lookup, T0 + 12).ok


def test_next_deadline_is_earliest_expiry(auth: DigestAuthenticator) -> None:
    assert auth.next_deadline() is None
    assert auth.verify(answer(challenge(auth, T0 + 5)), "REGISTER", lookup, T0 + 6).ok
    assert auth.verify(answer(challenge(auth, T0)), "REGISTER", lookup, T0 + 7).ok
    assert auth.next_deadline() == T0 + 300.0


def test_handle_timer_prunes_expired_nonces(auth: DigestAuthenticator) -> None:
    assert auth.verify(answer(challenge(auth, T0)), "REGISTER", lookup, T0).ok
    assert auth.verify(answer(challenge(auth, T0 + 100)), "REGISTER", lookup, T0 + 100).ok
    auth.handle_timer(T0 + 299)
    assert auth.tracked_nonces == 2
    auth.handle_timer(T0 + 300)
    assert auth.tracked_nonces == 1
    assert auth.next_deadline() == T0 + 400
    auth.handle_timer(T0 + 400)
    assert auth.tracked_nonces == 0
    assert auth.next_deadline() is None


# -- parsing ---------------------------------------------------------------------------------


def test_parse_tolerates_lws_and_case() -> None:
    creds = parse_credentials(
        'digest  USERNAME = "bob" ,Realm="r" ,\tNonce=\r\n  "n",uri="sip:x" ,response="ab"'
    )
    assert creds.scheme == "digest"
    assert (creds.username, creds.realm, creds.nonce, creds.uri, creds.response) == (
        "bob",
        "r",
        "n",
        "sip:x",
        "ab",
    )
    assert creds.algorithm == "MD5"


def test_parse_unescapes_quoted_pairs() -> None:
    creds = parse_credentials(r'Digest username="a\"b\\c", realm="x"')
    assert creds.username == 'a"b\\c'
    assert creds.params == {"username": 'a"b\\c', "realm": "x"}


def test_parse_keeps_utf8_in_quoted_strings() -> None:
    assert parse_credentials('Digest username="jürgen"').username == "jürgen"


def test_parse_records_other_schemes() -> None:
    assert parse_credentials("Basic").scheme == "Basic"
    assert parse_credentials("Bearer token=abc").params == {"token": "abc"}


@pytest.mark.parametrize(
    ("value", "fault"),
    [
        ("", "empty credentials"),
        ("   ", "empty credentials"),
        ('Digest username="alice', "unterminated quoted string"),
        ('Digest username="alice\\', "unterminated quoted string"),
        ("Digest username", "missing '=' after username"),
        ('Digest username "alice"', "missing '=' after username"),
        ("Digest username=", "bad value for username"),
        ("Digest username=sip:a", "expected ',' after username"),
        ('Digest username="a",', "trailing ','"),
        ('Digest username="a",,realm="b"', "expected auth-param name"),
        ('Digest username="a", username="b"', "duplicate parameter username"),
        ('Digest username="a\x00b"', "control character in quoted string"),
        ('Digest username="a\rb"', "control character in quoted string"),
        ('Digest username="a\\\nb"', "bad quoted-pair in quoted string"),
        ('Digest,username="a"', "missing space after auth-scheme"),
        ('"Digest" username="a"', "bad auth-scheme"),
        ("Digest " + "x" * 5000, "credentials too long"),
        ("Digest " + ", ".join(f"p{i}=v" for i in range(40)), "too many auth-params"),
    ],
)
def test_malformed_values_raise_digest_error(value: str, fault: str) -> None:
    with pytest.raises(DigestError) as excinfo:
        parse_credentials(value)
    assert excinfo.value.reason == fault
    assert isinstance(excinfo.value, ValueError)


def test_fault_reason_does_not_echo_long_names() -> None:
    with pytest.raises(DigestError) as excinfo:
        parse_credentials("Digest " + "n" * 1000)
    assert len(excinfo.value.reason) < 64


@given(st.text(max_size=300))
def test_parse_arbitrary_text_raises_only_digest_error(value: str) -> None:
    try:
        parse_credentials(value)
    except DigestError as exc:
        assert exc.reason
        assert "\r" not in exc.reason and "\n" not in exc.reason


_TOKEN_ALPHABET = st.sampled_from("abcXYZ019-.!%*_+`'~")
_PARAM_NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12)


@given(
    st.dictionaries(
        _PARAM_NAMES,
        st.one_of(
            st.text(alphabet=_TOKEN_ALPHABET, min_size=1, max_size=20).map(lambda t: (t, False)),
            st.text(
                alphabet=st.characters(
                    min_codepoint=0x20, max_codepoint=0x2FF, blacklist_characters="\x7f"
                ),
                max_size=20,
            ).map(lambda t: (t, True)),
        ),
        max_size=10,
    )
)
def test_parse_recovers_every_written_param(params: dict[str, tuple[str, bool]]) -> None:
    def render(text: str, quoted: bool) -> str:
        if not quoted:
            return text
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    value = "Digest " + " , ".join(f"{k}={render(*v)}" for k, v in params.items())
    creds = parse_credentials(value.rstrip())
    assert creds.params == {k: v for k, (v, _) in params.items()}


# -- helpers ---------------------------------------------------------------------------------


def _fields(creds: Credentials) -> dict[str, object]:
    return {name: getattr(creds, name) for name in Credentials.__dataclass_fields__}

"""SIP, SIPS and tel URIs (sip/uri.py): RFC 3261 §19.1, §25.1, RFC 3966, RFC 5118."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sip.errors import SipParseError
from sip.uri import AbsoluteUri, SipUri, TelUri, Uri, parse_uri, split_hostport, uri_equal


def sip(text: str) -> SipUri:
    uri = parse_uri(text)
    assert isinstance(uri, SipUri)
    return uri


# --- parsing -----------------------------------------------------------------------------------


def test_full_sip_uri_gives_every_component() -> None:
    uri = sip("sip:alice:secretword@127.0.0.1:5070;transport=TCP;lr?subject=project%20x&a=b")
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == (
        "sip",
        "alice",
        "secretword",
        "127.0.0.1",
        5070,
    )
    assert uri.params == {"transport": "TCP", "lr": None}
    assert uri.transport == "tcp"
    assert uri.headers == {"subject": "project%20x", "a": "b"}


def test_sips_uri_without_user_and_scheme_case_folded() -> None:
    uri = sip("SIPS:Example.COM")
    assert (uri.scheme, uri.user, uri.host, uri.port) == ("sips", None, "example.com", None)


def test_user_part_case_is_kept_host_case_is_folded() -> None:
    uri = sip("sip:ALICE@AtLanTa.CoM")
    assert (uri.user, uri.host) == ("ALICE", "atlanta.com")


def test_escaped_nul_in_user_part_is_kept_and_unescaped_for_the_aor() -> None:
    # RFC 4475 §3.1.1.4: the NUL must not shorten the user name.
    uri = sip("sip:null-%00-null@example.com")
    assert uri.user == "null-%00-null"
    assert uri.aor() == "sip:null-\x00-null@example.com"


def test_semicolon_in_user_part_stays_in_the_user() -> None:
    # RFC 4475 §3.1.1.9: the escaped '@' stays in the user part too.
    uri = sip("sip:user;par=u%40example.net@example.com")
    assert (uri.user, uri.host, uri.params) == ("user;par=u%40example.net", "example.com", {})


def test_escaped_sips_uri_in_user_part_is_not_a_sips_uri() -> None:
    # RFC 4475 §3.1.1.3.
    uri = sip("sip:sips%3Auser%40example.com@example.net")
    assert (uri.scheme, uri.user, uri.host) == ("sip", "sips%3Auser%40example.com", "example.net")
    assert uri.aor() == "sip:sips:user@example.com@example.net"


def test_user_part_full_of_punctuation_from_intmeth() -> None:
    # RFC 4475 §3.1.1.2: every user-unreserved and mark character, and a password.
    uri = sip(
        "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too."
        "(doesn't-it)@example.com"
    )
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert (uri.host, uri.port, uri.params, uri.headers) == ("example.com", None, {}, {})


def test_escaped_parameter_names_and_values_are_kept_as_written() -> None:
    # RFC 4475 §3.1.1.3 Contact: escapes in URI parameters.
    uri = sip("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31")
    assert uri.params == {"%6c%72": None, "n%61me": "v%61lue%25%34%31"}


def test_escaped_headers_in_uri_stay_uri_headers() -> None:
    # RFC 4475 §3.1.2.11 / §3.3.14: ?Route= is a URI header, never a real Route field.
    uri = sip("sip:user@example.com?Route=%3Csip:sip.example.com%3E")
    assert uri.headers == {"Route": "%3Csip:sip.example.com%3E"}
    assert uri.aor() == "sip:user@example.com"


def test_ipv6_reference_with_and_without_port() -> None:
    # RFC 5118 §4.1, §4.3, §4.4.
    assert (sip("sip:[2001:db8::10]").host, sip("sip:[2001:db8::10]").port) == (
        "[2001:db8::10]",
        None,
    )
    ambiguous = sip("sip:[2001:db8::10:5070]")
    assert (ambiguous.host, ambiguous.port) == ("[2001:db8::10:5070]", None)
    unambiguous = sip("sip:user@[2001:DB8::10]:5070")
    assert (unambiguous.host, unambiguous.port) == ("[2001:db8::10]", 5070)


def test_ipv4_embedded_ipv6_with_two_colons_is_valid() -> None:
    # RFC 5118 §4.10 (correct ABNF) and §4.9 (IPv4-mapped).
    assert sip("sip:[2001:db8::192.0.2.1]").host == "[2001:db8::192.0.2.1]"
    assert sip("sip:[::ffff:192.0.2.10]:5060").port == 5060


@pytest.mark.parametrize(
    "text",
    [
        "sip:[2001:db8:::192.0.2.1]",  # RFC 5118 §4.10: three colons, decided 400
        "sip:2001:db8::10",  # RFC 5118 §4.2: no brackets
        "sip:[2001:db8::10",  # missing ']'
        "sip:2001:db8::10]",
        "sip:[2001:db8::g1]",  # bad hex
        "sip:[2001:db8::10]5070",
        "sip:[2001:db8::10]:",
        "sip:[fe80::1%25eth0]",  # zone ids are not SIP syntax
        "sip:[]",
    ],
)
def test_bad_ipv6_reference_is_refused(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_uri(text)


@pytest.mark.parametrize(
    "text",
    [
        "sip:",
        "sip:@127.0.0.1",
        "sip:alice@",
        "sip:al ice@127.0.0.1",
        "sip:alice%4@127.0.0.1",  # '%' must start an escape
        "sip:alice%ZZ@127.0.0.1",
        "sip:alice@127.0.0.1:99999",
        "sip:alice@127.0.0.1:" + "9" * 5000,
        "sip:alice@127.0.0.1:-1",
        "sip:alice@256.0.0.1",
        "sip:alice@\u0661\u0662\u0667.0.0.1",  # non-ASCII digits
        "sip:alice@exa mple.com",
        "sip:alice@-example.com",
        "sip:alice@127.0.0.1;",
        "sip:alice@127.0.0.1;;lr",
        "sip:alice@127.0.0.1;a=b c",
        "sip:alice@127.0.0.1?",
        "sip:alice@127.0.0.1?novalue",
        "sip:alice@127.0.0.1?=x",
        "sip:alice@127.0.0.1?a=<x>",
        "sip:alice:p@ss@127.0.0.1",
        "sip:alice\x00@127.0.0.1",
        "alice@127.0.0.1",
        "1sip:alice@127.0.0.1",
        "",
    ],
)
def test_malformed_sip_uri_is_refused(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_uri(text)


def test_port_with_leading_zeros_is_read() -> None:
    assert sip("sip:a@127.0.0.1:" + "0" * 5000 + "5060").port == 5060
    assert split_hostport("127.0.0.1:0") == ("127.0.0.1", 0)


def test_tel_uri_with_parameters() -> None:
    uri = parse_uri("tel:+1-201-555-0123;ext=1234;phone-context=example.com")
    assert isinstance(uri, TelUri)
    assert uri.number == "+1-201-555-0123"
    assert uri.params == {"ext": "1234", "phone-context": "example.com"}
    assert str(uri) == "tel:+1-201-555-0123;ext=1234;phone-context=example.com"


@pytest.mark.parametrize("text", ["tel:", "tel:+1 555", "tel:abc!", "tel:123;", "tel:+1;a=<"])
def test_malformed_tel_uri_is_refused(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_uri(text)


def test_unknown_scheme_is_kept_for_a_416_answer() -> None:
    # RFC 4475 §3.3.2, §3.3.3.
    uri = parse_uri("nobodyKnowsThisScheme:totallyopaquecontent")
    assert isinstance(uri, AbsoluteUri)
    assert (uri.scheme, uri.rest) == ("nobodyknowsthisscheme", "totallyopaquecontent")
    assert isinstance(parse_uri("soap.beep://192.0.2.103:3002"), AbsoluteUri)


@pytest.mark.parametrize("text", ["http:", "http:a b", "isbn:<x>", 'name:"x"', "urn:a\r\nb"])
def test_unknown_scheme_with_illegal_characters_is_refused(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_uri(text)


# --- serializing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "sip:alice@127.0.0.1",
        "sips:alice:pw@example.com:5061;transport=tcp;lr;maddr=127.0.0.1",
        "sip:127.0.0.1;method=REGISTER?to=sip:bob%40example.com&x=",
        "sip:user;par=u%40example.net@example.com",
        "sip:null-%00-null@example.com",
        "sip:[2001:db8::10]:5070;x=[::1]",
        "sip:cal%6Cer@host5.example.net;%6c%72;n%61me=v%61lue%25%34%31",
        "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too."
        "(doesn't-it)@example.com",
        "tel:+12015550123",
        "tel:7042;phone-context=example.com",
        "urn:service:sos",
    ],
)
def test_canonical_uri_text_round_trips_exactly(text: str) -> None:
    assert str(parse_uri(text)) == text


def test_uri_text_is_normalized_to_lower_case_host_and_param_names() -> None:
    uri = sip("sip:Alice@AtLanTa.CoM;Transport=TCP")
    assert str(uri) == "sip:Alice@atlanta.com;transport=TCP"
    assert uri_equal(parse_uri(str(uri)), uri)


# --- comparison, RFC 3261 §19.1.4 --------------------------------------------------------------

# The RFC's own examples, verbatim.
RFC_EQUAL = [
    ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
    ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
    (
        "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
        "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
    ),
    (
        "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
        "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
    ),
]
RFC_NOT_EQUAL = [
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
    ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
    # "equality is not transitive" example:
    ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),
]


@pytest.mark.parametrize(("a", "b"), RFC_EQUAL)
def test_rfc3261_equal_examples_compare_equal_both_ways(a: str, b: str) -> None:
    assert uri_equal(parse_uri(a), parse_uri(b))
    assert uri_equal(parse_uri(b), parse_uri(a))


@pytest.mark.parametrize(("a", "b"), RFC_NOT_EQUAL)
def test_rfc3261_not_equal_examples_compare_unequal_both_ways(a: str, b: str) -> None:
    assert not uri_equal(parse_uri(a), parse_uri(b))
    assert not uri_equal(parse_uri(b), parse_uri(a))


def test_security_off_equals_the_bare_uri_too() -> None:
    # §19.1.4: carol@chicago.com equals both ;security=on and ;security=off.
    bare = parse_uri("sip:carol@chicago.com")
    assert uri_equal(bare, parse_uri("sip:carol@chicago.com;security=off"))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("sip:alice@atlanta.com", "sips:alice@atlanta.com"),  # SIP and SIPS never equal
        ("sip:atlanta.com", "sip:alice@atlanta.com"),  # user omitted
        ("sip:alice@atlanta.com", "sip:alice:pw@atlanta.com"),  # password omitted
        ("sip:alice:pw@atlanta.com", "sip:alice:PW@atlanta.com"),  # userinfo case-sensitive
        ("sip:alice@atlanta.com", "sip:alice@atlanta.com;user=phone"),
        ("sip:alice@atlanta.com", "sip:alice@atlanta.com;ttl=1"),
        ("sip:alice@atlanta.com", "sip:alice@atlanta.com;method=INVITE"),
        ("sip:alice@atlanta.com", "sip:alice@atlanta.com;maddr=127.0.0.1"),
        ("sip:alice@atlanta.com;lr=1", "sip:alice@atlanta.com;lr=2"),  # both have it
        ("sip:alice@atlanta.com?a=1", "sip:alice@atlanta.com?a=1&b=2"),
        ("sip:alice@atlanta.com?a=x", "sip:alice@atlanta.com?a=X"),
        # §19.1.4: only characters outside the reserved set equal their escapes.
        ("sip:alice;day=tuesday@atlanta.com", "sip:alice%3Bday%3Dtuesday@atlanta.com"),
        ("sip:%25%33%42@atlanta.com", "sip:%3B@atlanta.com"),
        ("sip:null-%00@atlanta.com", "sip:null-%00%00@atlanta.com"),
        ("sip:alice@atlanta.com", "tel:+1555"),
    ],
)
def test_uris_differing_in_a_significant_component_are_unequal(a: str, b: str) -> None:
    assert not uri_equal(parse_uri(a), parse_uri(b))
    assert not uri_equal(parse_uri(b), parse_uri(a))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("sip:%41lice@atlanta.com", "sip:Alice@atlanta.com"),
        ("sip:alice@atlanta.com;%74ransport=tcp", "sip:alice@atlanta.com;transport=TCP"),
        ("sip:alice@atlanta.com;maddr=%31%32%37.0.0.1", "sip:alice@atlanta.com;maddr=127.0.0.1"),
        ("sip:a%3bb@atlanta.com", "sip:a%3Bb@atlanta.com"),  # escape hex case
        ("sip:alice@atlanta.com?SUBJECT=x%20y", "sip:alice@atlanta.com?subject=x%20y"),
        ("sip:alice@[2001:DB8::1]", "sip:alice@[2001:db8::1]"),
        ("tel:+1-201-555-0123", "tel:+12015550123"),
        ("tel:+1555;Ext=A", "tel:+1555;ext=a"),
        ("urn:service:sos", "URN:service:sos"),
    ],
)
def test_uris_equal_after_escapes_case_and_separators_are_normalized(a: str, b: str) -> None:
    assert uri_equal(parse_uri(a), parse_uri(b))
    assert uri_equal(parse_uri(b), parse_uri(a))


# --- fuzzing -----------------------------------------------------------------------------------

_URI_CHARS = st.sampled_from(list("sip:tel@[]%0123456789abcdefABCDEF;=?&.:-_~!*'()+$,/<> \"\x00"))


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(_URI_CHARS, max_size=40).map("".join)))
def test_parse_uri_on_any_text_raises_only_sip_parse_error(text: str) -> None:
    try:
        uri: Uri = parse_uri(text)
    except SipParseError:
        return
    # Whatever parses compares equal to itself and prints as text that parses.
    assert uri_equal(uri, uri)
    assert uri_equal(parse_uri(str(uri)), uri)


@settings(max_examples=300, deadline=None)
@given(
    user=st.text(alphabet="abcXYZ019-_.!~*'()&=+$,;?/", min_size=1, max_size=10),
    host=st.sampled_from(["127.0.0.1", "example.com", "[::1]", "[2001:db8::10]"]),
    port=st.none() | st.integers(0, 65535),
    params=st.dictionaries(
        st.text(alphabet="abcxyz", min_size=1, max_size=5),
        st.none() | st.text(alphabet="abc123-.", min_size=1, max_size=5),
        max_size=3,
    ),
)
def test_built_sip_uri_survives_str_then_parse(
    user: str, host: str, port: int | None, params: dict[str, str | None]
) -> None:
    uri = SipUri("sip", host, user, None, port, params)
    again = parse_uri(str(uri))
    assert again == uri
    assert uri_equal(again, uri)

"""Header fields and their typed views (sip/message.py Headers, sip/headers.py): RFC 3261 §20."""

from __future__ import annotations

import pytest

from sip.errors import SipParseError
from sip.headers import (
    MAX_CSEQ,
    parse_cseq,
    parse_name_addr,
    parse_uint,
    parse_via,
    split_params,
    unquote,
)
from sip.message import Headers, header_key, split_list
from sip.uri import SipUri

# --- Headers -----------------------------------------------------------------------------------


def test_header_key_expands_compact_forms_and_folds_case() -> None:
    assert header_key("v") == header_key("VIA") == "via"
    assert header_key("I") == "call-id"
    assert header_key("X-Custom") == "x-custom"


def test_headers_lookup_is_case_insensitive_and_compact_aware() -> None:
    headers = Headers([("v", "a"), ("Via", "b"), ("X-Thing", "1")])
    assert headers.get("VIA") == "a"
    assert headers.get_all("via") == ["a", "b"]
    assert headers.count("v") == 2
    assert "x-thing" in headers
    assert "Route" not in headers
    assert headers.get("Route") is None
    assert list(headers) == [("Via", "a"), ("Via", "b"), ("X-Thing", "1")]


def test_headers_values_splits_each_field_at_top_level_commas() -> None:
    headers = Headers([("Allow", "INVITE, ACK,BYE"), ("Allow", "OPTIONS")])
    assert headers.values("Allow") == ["INVITE", "ACK", "BYE", "OPTIONS"]
    assert headers.values("Supported") == []


def test_headers_set_replaces_all_fields_in_place_of_the_first() -> None:
    headers = Headers([("X-A", "1"), ("Via", "x"), ("X-B", "2"), ("Via", "y")])
    headers.set("via", "z")
    assert list(headers) == [("X-A", "1"), ("Via", "z"), ("X-B", "2")]
    headers.set("Subject", "new")
    assert list(headers)[-1] == ("Subject", "new")


def test_headers_replace_all_puts_values_where_the_first_field_was() -> None:
    headers = Headers([("X-A", "1"), ("Via", "x"), ("X-B", "2"), ("Via", "y")])
    headers.replace_all("Via", ["p", "q"])
    assert list(headers) == [("X-A", "1"), ("Via", "p"), ("Via", "q"), ("X-B", "2")]
    headers.replace_all("Route", ["<sip:r@127.0.0.1>"])
    assert list(headers)[-1] == ("Route", "<sip:r@127.0.0.1>")


def test_headers_insert_first_remove_copy_and_len() -> None:
    headers = Headers([("Via", "b")])
    headers.insert_first("v", "a")
    clone = headers.copy()
    headers.remove("VIA")
    assert len(headers) == 0
    assert clone.get_all("Via") == ["a", "b"]


@pytest.mark.parametrize(
    ("value", "items"),
    [
        ("a", ["a"]),
        (" a , b ,c ", ["a", "b", "c"]),
        ('"x, y" <sip:a@h>, <sip:b@h>', ['"x, y" <sip:a@h>', "<sip:b@h>"]),
        (r'"x \", y" <sip:a@h>, b', [r'"x \", y" <sip:a@h>', "b"]),
        ("<sip:a@h?x=1,2>;p=1, c", ["<sip:a@h?x=1,2>;p=1", "c"]),
        (";;,,;;,;", [";;", "", ";;", ";"]),
    ],
)
def test_split_list_respects_quotes_escapes_and_angle_brackets(
    value: str, items: list[str]
) -> None:
    assert split_list(value) == items


# --- parameters and quoted strings -------------------------------------------------------------


def test_parameters_with_and_without_values_keep_order_and_lower_case_names() -> None:
    params = split_params(' Tag = abc ; LR ; q=0.5; x="a;b\\"c"', "Contact")
    assert params == {"tag": "abc", "lr": None, "q": "0.5", "x": '"a;b\\"c"'}
    assert list(params) == ["tag", "lr", "q", "x"]


@pytest.mark.parametrize(
    "text",
    ["", "a;;b", "a=", "a b=c", 'a="open', "a=b c", "a=\u00e9", "=v"],
)
def test_malformed_parameters_are_refused(text: str) -> None:
    with pytest.raises(SipParseError):
        split_params(text, "Via")


def test_unquote_resolves_quoted_pairs() -> None:
    assert unquote(r'"J Rosenberg \\\""') == 'J Rosenberg \\"'
    assert unquote('"BEL:\\\x07 NUL:\\\x00"') == "BEL:\x07 NUL:\x00"
    assert unquote('""') == ""


# --- Via ---------------------------------------------------------------------------------------


def test_via_gives_transport_host_port_and_params() -> None:
    via = parse_via("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK74bf9;rport;received=127.0.0.1")
    assert (via.protocol, via.transport, via.host, via.port) == (
        "SIP/2.0",
        "UDP",
        "127.0.0.1",
        5060,
    )
    assert via.branch == "z9hG4bK74bf9"
    assert via.params == {"branch": "z9hG4bK74bf9", "rport": None, "received": "127.0.0.1"}


def test_via_accepts_lws_around_slashes_colon_and_semicolons() -> None:
    # RFC 4475 §3.1.1.1 (after unfolding).
    via = parse_via("SIP  /   2.0 /UDP    127.0.0.1 : 5070  ;  branch  =   z9hG4bK9ikj8")
    assert (via.transport, via.host, via.port, via.branch) == (
        "UDP",
        "127.0.0.1",
        5070,
        "z9hG4bK9ikj8",
    )


def test_via_transport_is_upper_cased_and_unknown_ones_are_kept() -> None:
    assert parse_via("sip/2.0/tcp 127.0.0.1").transport == "TCP"
    assert parse_via("SIP/2.0/UNKNOWN 127.0.0.1").transport == "UNKNOWN"  # RFC 4475 §3.1.1.10


def test_via_with_ipv6_sent_by_and_port() -> None:
    via = parse_via("SIP/2.0/UDP [2001:DB8::9:1]:6050;branch=z9hG4bKas3")
    assert (via.host, via.port) == ("[2001:db8::9:1]", 6050)


@pytest.mark.parametrize(
    "received", ["[2001:db8::9:255]", "2001:db8::9:255", "127.0.0.1", "[::ffff:192.0.2.1]"]
)
def test_via_received_may_be_ipv6_with_or_without_brackets(received: str) -> None:
    # RFC 5118 §4.5: both forms are seen and must be accepted.
    via = parse_via(f"SIP/2.0/UDP 127.0.0.1;received={received};branch=z9hG4bK1")
    assert via.params["received"] == received


def test_via_serializes_back_to_an_equal_via() -> None:
    via = parse_via("SIP/2.0/TLS [::1]:5061;branch=z9hG4bK1;rport")
    assert str(via) == "SIP/2.0/TLS [::1]:5061;branch=z9hG4bK1;rport"
    assert parse_via(str(via)) == via


@pytest.mark.parametrize(
    "value",
    [
        "",
        "SIP/2.0/UDP",
        "SIP/2.0/UDP ;branch=z9hG4bK1",
        "SIP/2.0 127.0.0.1",
        "SIP/2.0/UDP 127.0.0.1:99999",
        "SIP/2.0/UDP 127.0.0.1:" + "9" * 5000,
        "SIP/2.0/UDP 127.0.0.1:port",
        "SIP/2.0/UDP 127.0.0.1;;branch=z9hG4bK1",
        "SIP/2.0/UDP 127.0.0.1;branch=",
        "SIP/2.0/UDP 127.0.0.1;received=2001:db8:::1",
        "SIP/2.0/UDP 127.0.0.1;received=[::g]",
        "SIP/2.0/UDP [::1",
        "SIP/2.0/UDP ::1",
        "SIP/2.0/UDP 127.0.0 .1",
        "SIP/2.0/UDP 300.0.0.1",
    ],
)
def test_malformed_via_is_refused_as_malformed_via(value: str) -> None:
    with pytest.raises(SipParseError, match="Malformed Via"):
        parse_via(value)


# --- name-addr / addr-spec (From, To, Contact, Route) ------------------------------------------


def test_name_addr_with_quoted_display_name_and_escapes() -> None:
    value = r'"J Rosenberg \\\""       <sip:jdrosen@127.0.0.1> ; tag = 98asjd8'
    addr = parse_name_addr(value, "From")
    assert addr.display == r'"J Rosenberg \\\""'
    assert unquote(addr.display) == 'J Rosenberg \\"'
    assert addr.uri == "sip:jdrosen@127.0.0.1"
    assert addr.tag == "98asjd8"


def test_name_addr_with_token_display_name_joins_words_with_one_space() -> None:
    addr = parse_name_addr("token1~` \t token2'+_   <sip:m@127.0.0.1>;tag=x", "From")
    assert addr.display == "token1~` token2'+_"


def test_name_addr_without_space_before_angle_bracket_is_accepted() -> None:
    # RFC 4475 §3.1.1.6: a known grammar bug that elements accept.
    addr = parse_name_addr("caller<sip:caller@127.0.0.1>;tag=323", "From")
    assert (addr.display, addr.uri, addr.tag) == ("caller", "sip:caller@127.0.0.1", "323")


def test_name_addr_uri_parameters_stay_in_the_uri() -> None:
    # RFC 4475 §3.3.13: inside <> the parameter belongs to the URI.
    addr = parse_name_addr("<sip:+19725552222@127.0.0.1;unknownparam>;expires=60", "Contact")
    assert addr.uri == "sip:+19725552222@127.0.0.1;unknownparam"
    assert addr.params == {"expires": "60"}
    uri = addr.parsed_uri()
    assert isinstance(uri, SipUri)
    assert uri.params == {"unknownparam": None}


def test_addr_spec_parameters_are_header_parameters() -> None:
    # RFC 3261 §20.10, RFC 4475 §3.3.12: without <> every ';' param is a header param.
    addr = parse_name_addr("sip:+19725552222@127.0.0.1;unknownparam;tag=5", "Contact")
    assert addr.uri == "sip:+19725552222@127.0.0.1"
    assert addr.params == {"unknownparam": None, "tag": "5"}
    assert addr.display is None


def test_addr_spec_with_lws_before_parameters() -> None:
    addr = parse_name_addr(" sip:vivekg@127.0.0.1 ;   tag    = 1918181833n", "To")
    assert (addr.uri, addr.tag) == ("sip:vivekg@127.0.0.1", "1918181833n")


def test_name_addr_with_ipv6_uri_and_valueless_params() -> None:
    addr = parse_name_addr('"v6" <sip:user@[2001:db8::10]:5070>;lr;x', "Route")
    assert addr.uri == "sip:user@[2001:db8::10]:5070"
    assert addr.params == {"lr": None, "x": None}


def test_name_addr_serializes_in_angle_brackets() -> None:
    addr = parse_name_addr("sip:a@127.0.0.1;tag=1", "To")
    assert str(addr) == "<sip:a@127.0.0.1>;tag=1"
    assert parse_name_addr(str(addr), "To") == addr


def test_name_addr_display_name_keeps_quoted_control_characters() -> None:
    # RFC 4475 §3.1.1.2: quoted-pairs of NUL, BEL and DEL in a display name.
    addr = parse_name_addr('"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" <sip:a@127.0.0.1>', "To")
    assert addr.display is not None
    assert unquote(addr.display) == "BEL:\x07 NUL:\x00 DEL:\x7f"


def test_non_sip_uri_in_name_addr_parses() -> None:
    # RFC 4475 §3.3.4: the parser accepts other schemes; the application decides.
    assert parse_name_addr("<http://example.com/a>", "From").uri == "http://example.com/a"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ('"Mr J. User <sip:j.user@127.0.0.1>', "Unterminated quoted string in To"),
        ('"a" sip:a@127.0.0.1', "Malformed To"),
        ("<sip:a@127.0.0.1", "missing '>'"),
        ("Watson, Thomas <sip:t@127.0.0.1>", "display name"),
        ('Bob "B" <sip:b@127.0.0.1>', "display name"),
        ("<sip:a@127.0.0.1> junk", "Malformed To"),
        ("< sip:t.watson@127.0.0.1 >", "To URI"),  # RFC 4475 §3.1.2.14
        ("<sip:bob @127.0.0.1>", "To URI"),
        ("<>", "To URI"),
        ("", "To URI"),
        ("sip:user@127.0.0.1?Route=%3Csip:127.0.0.1%3E", "enclosed in <>"),
        ("sip:a@127.0.0.1, sip:b@127.0.0.1", "enclosed in <>"),
        ("sip:bob @127.0.0.1", "Malformed To URI"),
        ("<sip:a@127.0.0.1>;", "To parameter"),
        ("<sip:[::1>", "To URI"),
        ("<sip:a@127.0.0.1>;tag=a b", "To parameter"),
    ],
)
def test_malformed_name_addr_is_refused_naming_the_header(value: str, reason: str) -> None:
    with pytest.raises(SipParseError, match=reason):
        parse_name_addr(value, "To")


def test_valueless_tag_is_legal_syntax() -> None:
    # generic-param allows it; whether a dialog accepts it is the dialog layer's call.
    assert parse_name_addr("<sip:a@127.0.0.1>;tag", "To").params == {"tag": None}


def test_contact_wildcard_is_not_a_name_addr() -> None:
    # '*' is handled by the registrar (RFC 3261 §10.3 step 6), never as an address.
    with pytest.raises(SipParseError):
        parse_name_addr("*", "Contact")


# --- CSeq and unsigned integers ----------------------------------------------------------------


def test_cseq_gives_number_and_method_with_leading_zeros() -> None:
    assert parse_cseq("0009 INVITE") == (9, "INVITE")
    assert parse_cseq(" 1  \t ACK ") == (1, "ACK")
    assert parse_cseq(f"{MAX_CSEQ} BYE") == (2**32 - 1, "BYE")
    assert parse_cseq("0" * 5000 + "7 BYE") == (7, "BYE")


def test_cseq_keeps_the_method_case() -> None:
    assert parse_cseq("1 invite") == (1, "invite")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("abc INVITE", "Malformed CSeq"),
        ("-1 INVITE", "Malformed CSeq"),
        ("1", "Malformed CSeq"),
        ("INVITE", "Malformed CSeq"),
        ("1 INVITE extra", "Malformed CSeq"),
        ("1 INV@TE", "Malformed CSeq"),
        ("\u0661 INVITE", "Malformed CSeq"),
        ("4294967296 INVITE", "CSeq out of range"),
        ("9" * 5000 + " INVITE", "CSeq out of range"),
    ],
)
def test_bad_cseq_is_refused(value: str, reason: str) -> None:
    with pytest.raises(SipParseError, match=reason):
        parse_cseq(value)


def test_uint_within_range_with_leading_zeros() -> None:
    assert parse_uint(" 0068 ", "Max-Forwards", 255) == 68
    assert parse_uint("255", "Max-Forwards", 255) == 255
    assert parse_uint("4294967295", "Expires", 2**32 - 1) == 2**32 - 1


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("256", "Max-Forwards out of range"),
        ("9" * 5000, "Max-Forwards out of range"),
        ("-1", "Malformed Max-Forwards"),
        ("seventy", "Malformed Max-Forwards"),
        ("", "Malformed Max-Forwards"),
        ("1 2", "Malformed Max-Forwards"),
    ],
)
def test_bad_uint_is_refused_naming_the_field(value: str, reason: str) -> None:
    with pytest.raises(SipParseError, match=reason):
        parse_uint(value, "Max-Forwards", 255)

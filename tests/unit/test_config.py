"""The edge configuration snapshot and its TOML loader (edge/config.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.config import (
    ConfigError,
    EdgeConfig,
    EdgeSettings,
    HostPort,
    Phone,
    PhoneType,
    Rate,
    load_config,
    parse_config,
    parse_host_port,
    parse_rate,
)
from sip import digest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "standalone.toml"

EDGE = """\
[edge]
name = "edge-1"
domain = "voxedge.test"
advertise = "127.0.0.1"
data_dir = "var/edge-1"
"""

ALICE = """
[[phones]]
name = "alice"
type = "generic_sip"
extension = "1001"
password = "alice-secret"
"""


def parse(text: str, base_dir: Path = Path("/etc/voxedge")) -> EdgeConfig:
    return parse_config(text, base_dir)


def error_of(text: str, base_dir: Path = Path("/etc/voxedge")) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, base_dir)
    return str(caught.value)


# ---------------------------------------------------------------------------- the example


def test_example_config_loads_the_demo_edge() -> None:
    config = load_config(EXAMPLE)

    assert config.edge.name == "edge-1"
    assert config.edge.domain == "voxedge.test"
    assert config.edge.advertise == "127.0.0.1"
    assert config.edge.data_dir.resolve() == EXAMPLE.parents[1] / "var" / "edge-1"
    phones = config.phones_listener
    assert phones is not None
    assert phones.udp == phones.tcp == HostPort("127.0.0.1", 8060)
    assert phones.tls == HostPort("127.0.0.1", 8061)
    assert phones.tls_self_signed
    assert phones.tls_cert is not None and phones.tls_key is not None
    assert phones.tls_cert.resolve() == EXAMPLE.parents[1] / "var/edge-1/tls/cert.pem"
    assert phones.tls_key.resolve() == EXAMPLE.parents[1] / "var/edge-1/tls/key.pem"
    assert phones.max_registration_rate is None
    assert config.trunks_listener is not None
    assert config.trunks_listener.udp == HostPort("127.0.0.1", 5060)
    assert [(p.name, p.extension, p.type) for p in config.phones] == [
        ("alice", "1001", PhoneType.GENERIC_SIP),
        ("bob", "1002", PhoneType.GENERIC_SIP),
    ]


def test_defaults_apply_when_optional_edge_keys_are_absent() -> None:
    settings = parse(EDGE).edge

    assert (settings.min_expires, settings.default_expires, settings.max_expires) == (
        60,
        3600,
        3600,
    )
    assert settings.auth_failures == Rate(10, 60.0)
    assert (settings.t1, settings.t2, settings.t4) == (0.5, 4.0, 5.0)
    assert settings.nonce_ttl == 300.0
    assert settings.max_connections == 1024


def test_relative_paths_are_relative_to_the_config_files_folder(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "edge.toml"
    path.write_text(EDGE)

    assert load_config(path).edge.data_dir == tmp_path / "conf" / "var" / "edge-1"


def test_absolute_paths_stay_as_written() -> None:
    text = EDGE.replace('"var/edge-1"', '"/srv/edge"')

    assert parse(text).edge.data_dir == Path("/srv/edge")


def test_phone_by_extension_finds_the_phone_or_none() -> None:
    config = load_config(EXAMPLE)

    bob = config.phone_by_extension("1002")
    assert bob is not None and bob.name == "bob"
    assert config.phone_by_extension("1003") is None


# ---------------------------------------------------------------------------- secrets


def test_phone_keeps_ha1_per_algorithm_and_no_password() -> None:
    alice = parse(EDGE + ALICE).phones[0]

    assert dict(alice.ha1) == {
        algorithm: digest.ha1("1001", "voxedge.test", "alice-secret", algorithm)
        for algorithm in ("MD5", "SHA-256")
    }
    assert not hasattr(alice, "password")
    assert "alice-secret" not in repr(parse(EDGE + ALICE))
    assert alice.ha1["MD5"] not in repr(alice)


# ---------------------------------------------------------------------------- immutability


def test_snapshot_cannot_be_changed_in_place() -> None:
    config = parse(EDGE + ALICE)
    alice = config.phones[0]

    with pytest.raises(dataclasses.FrozenInstanceError):
        config.phones = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.edge.domain = "evil.test"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        alice.extension = "9999"  # type: ignore[misc]
    with pytest.raises(TypeError):
        alice.ha1["MD5"] = "0" * 32  # type: ignore[index]
    assert isinstance(config.phones, tuple)
    assert hash(config) == hash(parse(EDGE + ALICE))


def test_phone_copies_the_ha1_mapping_it_is_given() -> None:
    ha1 = {"MD5": "a" * 32}
    phone = Phone("alice", PhoneType.GENERIC_SIP, "1001", ha1)
    ha1["MD5"] = "b" * 32

    assert phone.ha1["MD5"] == "a" * 32


def test_snapshot_built_directly_rejects_duplicate_extensions() -> None:
    settings = EdgeSettings("e", "voxedge.test", "127.0.0.1", Path("var"))
    phone = Phone("alice", PhoneType.GENERIC_SIP, "1001", {})

    with pytest.raises(ValueError, match="duplicate extension"):
        EdgeConfig(settings, phones=(phone, dataclasses.replace(phone, name="bob")))


# ---------------------------------------------------------------------------- TOML syntax


def test_toml_syntax_error_names_line_and_column() -> None:
    message = error_of(EDGE + "min_expires = = 60\n")

    assert message.startswith("line 6, column 15: ")


def test_toml_error_at_end_of_document_names_last_line() -> None:
    assert error_of('[edge]\nname = "a').startswith("line 2, column 10: ")


def test_load_config_prefixes_the_file_path(tmp_path: Path) -> None:
    path = tmp_path / "edge.toml"
    path.write_text("[edge\n")

    with pytest.raises(ConfigError, match=r"edge\.toml: line 1, column 6: "):
        load_config(path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: cannot read"):
        load_config(tmp_path / "nope.toml")


# ---------------------------------------------------------------------------- unknown keys


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ("[edgy]\n", "edgy"),
        ("[listen.phones]\nudpp = '127.0.0.1:8060'\n", "listen.phones.udpp"),
        ("[listen.carriers]\nudp = '127.0.0.1:5060'\n", "listen.carriers"),
        (ALICE + "secret = 'x'\n", "phones[0].secret"),
    ],
)
def test_unknown_key_is_named(extra: str, field: str) -> None:
    assert error_of(EDGE + extra) == f"{field}: unknown key"


def test_unknown_key_in_edge_is_named() -> None:
    assert error_of(EDGE + "nmae = 'x'\n") == "edge.nmae: unknown key"


# ---------------------------------------------------------------------------- required & types


@pytest.mark.parametrize("key", ["name", "domain", "advertise", "data_dir"])
def test_missing_edge_key_is_required(key: str) -> None:
    text = "\n".join(line for line in EDGE.splitlines() if not line.startswith(key))

    assert error_of(text) == f"edge.{key}: required"


def test_missing_edge_table_is_required() -> None:
    assert error_of(ALICE) == "edge: required"


@pytest.mark.parametrize("key", ["name", "type", "extension", "password"])
def test_missing_phone_key_is_required(key: str) -> None:
    phone = "\n".join(line for line in ALICE.splitlines() if not line.startswith(key))

    assert error_of(EDGE + phone) == f"phones[0].{key}: required"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('min_expires = "60"', "edge.min_expires: expected an integer, got string"),
        ("max_connections = true", "edge.max_connections: expected an integer, got boolean"),
        ("t1 = [0.5]", "edge.t1: expected a number of seconds, got array"),
        ("auth_failures = 10", "edge.auth_failures: expected a string, got integer"),
    ],
)
def test_wrong_type_is_named(line: str, message: str) -> None:
    assert error_of(EDGE + line + "\n") == message


def test_name_of_wrong_type_is_named() -> None:
    assert error_of(EDGE.replace('"edge-1"', "1")) == "edge.name: expected a string, got integer"


def test_phones_must_be_an_array_of_tables() -> None:
    message = error_of(EDGE + "[phones]\nname = 'alice'\n")

    assert message.startswith("phones: expected an array of tables")


# ---------------------------------------------------------------------------- phones


def test_duplicate_extension_names_both_phones() -> None:
    def phone(name: str, extension: str) -> str:
        return ALICE.replace('"alice"', f'"{name}"').replace('"1001"', f'"{extension}"')

    text = EDGE + phone("alice", "1001") + phone("bob", "1002") + phone("carol", "1001")

    assert error_of(text) == 'phones[2].extension: duplicate extension "1001" (also phones[0])'


def test_duplicate_name_names_both_phones() -> None:
    text = EDGE + ALICE + ALICE.replace('"1001"', '"1002"')

    assert error_of(text) == 'phones[1].name: duplicate name "alice" (also phones[0])'


@pytest.mark.parametrize("extension", ["", "10 01", "1001@voxedge.test", "1" * 33, "10%41", "é"])
def test_bad_extension_is_refused(extension: str) -> None:
    message = error_of(EDGE + ALICE.replace('"1001"', f'"{extension}"'))

    assert message.startswith("phones[0].extension: ")


@pytest.mark.parametrize("extension", ["+15551234567", "1" * 32, "alice", "ops_desk-2"])
def test_good_extension_is_accepted(extension: str) -> None:
    assert parse(EDGE + ALICE.replace('"1001"', f'"{extension}"')).phones[0].extension == extension


def test_media_ports_and_timeout_default_and_parse() -> None:
    default = parse(EDGE).edge
    assert (default.media_ports, default.media_timeout) == ((20000, 29999), 60.0)
    custom = parse(EDGE + 'media_ports = "30000-30099"\nmedia_timeout = 20\n').edge
    assert (custom.media_ports, custom.media_timeout) == ((30000, 30099), 20.0)


@pytest.mark.parametrize("value", ["20000", "30000-20000", "0-10", "20001-20001", "a-b"])
def test_bad_media_ports_are_refused_naming_the_field(value: str) -> None:
    message = error_of(EDGE + f'media_ports = "{value}"\n')

    assert message.startswith("edge.media_ports: ")


def test_digest_algorithms_default_to_sha256_then_md5() -> None:
    assert tuple(parse(EDGE + ALICE).phones[0].ha1) == ("SHA-256", "MD5")


def test_digest_algorithms_limit_what_a_phone_may_use() -> None:
    phone = parse(EDGE + ALICE + 'digest_algorithms = ["MD5"]\n').phones[0]
    assert tuple(phone.ha1) == ("MD5",)


@pytest.mark.parametrize("value", ["[]", '["SHA-512"]', '"MD5"', '["MD5", "MD5"]', "[1]"])
def test_bad_digest_algorithms_are_refused(value: str) -> None:
    message = error_of(EDGE + ALICE + f"digest_algorithms = {value}\n")

    assert message.startswith("phones[0].digest_algorithms: expected a non-empty list")


@pytest.mark.parametrize("kind", ["managed", "webrtc", "remote_number"])
def test_phone_types_not_yet_supported_are_refused_clearly(kind: str) -> None:
    message = error_of(EDGE + ALICE.replace('"generic_sip"', f'"{kind}"'))

    assert message == f'phones[0].type: "{kind}" phones are not supported yet (use generic_sip)'


def test_unknown_phone_type_is_refused() -> None:
    message = error_of(EDGE + ALICE.replace('"generic_sip"', '"fax"'))

    assert message.startswith('phones[0].type: unknown phone type "fax"')


# ---------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ("min_expires = 600\ndefault_expires = 300", "edge.min_expires: 600 is above"),
        ("default_expires = 7200", "edge.default_expires: 7200 is above max_expires (3600)"),
        ("t1 = 5.0", "edge.t2: 4 is below t1 (5)"),
        ("t1 = 0", "edge.t1: must be more than 0 seconds"),
        ("nonce_ttl = -1", "edge.nonce_ttl: must be more than 0 seconds"),
        ("t4 = nan", "edge.t4: must be more than 0 seconds"),
        ("tcp_idle_timeout = inf", "edge.tcp_idle_timeout: must be more than 0 seconds"),
        ("min_expires = 0", "edge.min_expires: must be from 1 to"),
        ("max_connections = 0", "edge.max_connections: must be from 1 to"),
    ],
)
def test_out_of_range_numbers_are_named(lines: str, message: str) -> None:
    assert error_of(EDGE + lines + "\n").startswith(message)


def test_expiry_bounds_may_be_equal_and_cooldown_may_be_zero() -> None:
    settings = parse(EDGE + "min_expires = 60\ndefault_expires = 60\nauth_cooldown = 0\n").edge

    assert settings.min_expires == settings.default_expires == 60
    assert settings.auth_cooldown == 0.0


def test_integer_seconds_are_accepted_as_floats() -> None:
    assert parse(EDGE + "t2 = 8\n").edge.t2 == 8.0


# ---------------------------------------------------------------------------- listeners


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8060", HostPort("127.0.0.1", 8060)),
        ("0.0.0.0:0", HostPort("0.0.0.0", 0)),
        ("[::1]:5060", HostPort("::1", 5060)),
        ("LOCALHOST:65535", HostPort("localhost", 65535)),
    ],
)
def test_host_port_accepts_literals_and_localhost(text: str, expected: HostPort) -> None:
    assert parse_host_port(text) == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("8060", 'expected "host:port"'),
        (":8060", 'expected "host:port"'),
        ("pbx.example.com:5060", "names are not resolved"),
        ("::1:5060", "needs brackets"),
        ("[::1]5060", 'expected "[IPv6]:port"'),
        ("[127.0.0.1]:5060", "is not an IPv6 address"),
        ("127.0.0.1:65536", "port must be a number from 0 to 65535"),
        ("127.0.0.1:-1", "port must be a number"),
        ("127.0.0.1:", "port must be a number"),
        ("256.0.0.1:5060", "names are not resolved"),
    ],
)
def test_bad_listen_address_is_named(value: str, fragment: str) -> None:
    message = error_of(EDGE + f"[listen.phones]\nudp = '{value}'\n")

    assert message.startswith("listen.phones.udp: ")
    assert fragment in message


def test_listener_needs_a_transport() -> None:
    text = EDGE + "[listen.trunks]\nmax_call_rate = '5/1s'\n"

    assert error_of(text) == "listen.trunks: no transport given (udp, tcp or tls)"


def test_tls_without_certificate_is_refused() -> None:
    message = error_of(EDGE + "[listen.phones]\ntls = '127.0.0.1:8061'\n")

    assert message == "listen.phones.tls_cert: required when tls is set"


def test_tls_without_key_is_refused() -> None:
    text = EDGE + "[listen.phones]\ntls = '127.0.0.1:8061'\ntls_cert = 'c.pem'\n"

    assert error_of(text) == "listen.phones.tls_key: required when tls is set"


def test_certificate_without_tls_is_refused() -> None:
    text = EDGE + "[listen.phones]\nudp = '127.0.0.1:8060'\ntls_cert = 'c.pem'\n"

    assert error_of(text) == "listen.phones.tls_cert: given but tls is not set"


def test_missing_certificate_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "key.pem").write_text("key")
    text = EDGE + (
        "[listen.phones]\ntls = '127.0.0.1:8061'\ntls_cert = 'cert.pem'\ntls_key = 'key.pem'\n"
    )

    message = error_of(text, tmp_path)

    assert message.startswith(f"listen.phones.tls_cert: file not found: {tmp_path / 'cert.pem'}")


def test_existing_certificate_files_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("cert")
    (tmp_path / "key.pem").write_text("key")
    text = EDGE + (
        "[listen.phones]\ntls = '127.0.0.1:8061'\ntls_cert = 'cert.pem'\ntls_key = 'key.pem'\n"
    )

    listener = parse(text, tmp_path).phones_listener

    assert listener is not None
    assert listener.tls_cert == tmp_path / "cert.pem"
    assert not listener.tls_self_signed


def test_self_signed_tls_allows_missing_files(tmp_path: Path) -> None:
    text = EDGE + (
        "[listen.phones]\ntls = '127.0.0.1:8061'\ntls_cert = 'tls/cert.pem'\n"
        "tls_key = 'tls/key.pem'\ntls_self_signed = true\n"
    )

    listener = parse(text, tmp_path).phones_listener

    assert listener is not None and listener.tls_self_signed
    assert listener.tls_key == tmp_path / "tls" / "key.pem"


def test_two_listeners_on_one_socket_are_refused() -> None:
    text = EDGE + (
        "[listen.phones]\ntcp = '127.0.0.1:5060'\n[listen.trunks]\ntls = '127.0.0.1:5060'\n"
        "tls_cert = 'c.pem'\ntls_key = 'k.pem'\ntls_self_signed = true\n"
    )

    message = error_of(text)

    assert message == "listen.trunks.tls: 127.0.0.1:5060 is already used by listen.phones.tcp"


def test_udp_and_tcp_may_share_a_port_and_port_zero_never_clashes() -> None:
    text = EDGE + (
        "[listen.phones]\nudp = '127.0.0.1:0'\ntcp = '127.0.0.1:0'\n"
        "[listen.trunks]\nudp = '127.0.0.1:0'\ntcp = '127.0.0.1:5060'\n"
    )

    assert parse(text).trunks_listener is not None


def test_listener_rates_are_parsed() -> None:
    text = EDGE + (
        "[listen.phones]\nudp = '127.0.0.1:8060'\n"
        "max_registration_rate = '40/5s'\nmax_call_rate = '10/1s'\n"
    )

    listener = parse(text).phones_listener

    assert listener is not None
    assert listener.max_registration_rate == Rate(40, 5.0)
    assert listener.max_call_rate == Rate(10, 1.0)


def test_bad_listener_rate_is_named() -> None:
    text = EDGE + "[listen.phones]\nudp = '127.0.0.1:8060'\nmax_registration_rate = '40 per 5s'\n"

    assert error_of(text).startswith("listen.phones.max_registration_rate: expected a rate")


# ---------------------------------------------------------------------------- rates


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("40/5s", Rate(40, 5.0)),
        ("10/60s", Rate(10, 60.0)),
        ("100/1m", Rate(100, 60.0)),
        ("5/500ms", Rate(5, 0.5)),
        ("3/h", Rate(3, 3600.0)),
        ("1/0.5s", Rate(1, 0.5)),
    ],
)
def test_parse_rate_accepts_count_per_window(text: str, expected: Rate) -> None:
    assert parse_rate(text) == expected


@pytest.mark.parametrize(
    "text", ["", "40", "40/", "40/5", "40/5x", "/5s", "0/5s", "40/0s", "-1/5s", "4.5/5s", "40/5 s"]
)
def test_parse_rate_refuses_malformed_text(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_rate(text)


def test_auth_failures_rate_is_read_from_edge_table() -> None:
    assert parse(EDGE + "auth_failures = '5/30s'\n").edge.auth_failures == Rate(5, 30.0)


@given(st.integers(1, 10**6), st.integers(1, 10**6))
def test_rate_text_round_trips(count: int, window_ms: int) -> None:
    rate = Rate(count, window_ms / 1000)

    assert parse_rate(str(rate)) == rate


@given(st.ip_addresses(), st.integers(0, 65535))
def test_host_port_text_round_trips(address: object, port: int) -> None:
    host_port = HostPort(str(address), port)

    assert parse_host_port(str(host_port)) == host_port

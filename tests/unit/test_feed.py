"""edge.feed: the control plane's ConfigSnapshot/ConfigDelta → the edge's EdgeConfig."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import (
    EdgeConfig,
    EdgeSettings,
    HostPort,
    Listener,
    Phone,
    PhoneType,
    Rate,
    local_defaults,
)
from edge.feed import FeedError, apply_delta, apply_update, build_edge_config
from protos.voxedge.v1 import edge_pb2
from sip import digest

REALM = "acme.example"
MD5 = digest.ha1("1001", REALM, "pw", "MD5")
SHA = digest.ha1("1001", REALM, "pw", "SHA-256")


def _local() -> EdgeConfig:
    return local_defaults(Path("/var/lib/voxedge"))


def _phone(
    ident: str,
    extension: str,
    *,
    kind: int = edge_pb2.PHONE_TYPE_GENERIC_SIP,
    secrets: tuple[tuple[str, str], ...] = (("SHA-256", SHA), ("MD5", MD5)),
    name: str = "",
) -> edge_pb2.Phone:
    return edge_pb2.Phone(
        id=ident,
        name=name,
        type=kind,  # type: ignore[arg-type]
        extension=extension,
        digest=[edge_pb2.DigestSecret(algorithm=a, ha1=h) for a, h in secrets],
    )


def _snapshot(*phones: edge_pb2.Phone, **settings: object) -> edge_pb2.ConfigSnapshot:
    fields: dict[str, object] = {"name": "edge-1", "domain": REALM, **settings}
    edge = edge_pb2.EdgeSettings(**fields)  # type: ignore[arg-type]
    return edge_pb2.ConfigSnapshot(edge=edge, phones=phones)


def test_snapshot_maps_every_setting_onto_the_local_config() -> None:
    snapshot = _snapshot(
        _phone("p1", "1001", name="Alice"),
        min_expires=30,
        max_expires=7200,
        default_expires=600,
        media_ports="30000-30999",
        media_timeout=20.5,
        no_answer_timeout=45.0,
        max_registration_rate="40/5s",
        max_call_rate="10/1s",
        site_id="site-1",
    )
    local = _local()
    config = build_edge_config(snapshot, local)
    edge = config.edge
    assert (edge.name, edge.domain) == ("edge-1", REALM)
    assert (edge.min_expires, edge.max_expires, edge.default_expires) == (30, 7200, 600)
    assert edge.media_ports == (30000, 30999)
    assert (edge.media_timeout, edge.no_answer_timeout) == (20.5, 45.0)
    # Local-only settings stay as they were.
    assert (edge.advertise, edge.data_dir, edge.media_address) == (
        "127.0.0.1",
        Path("/var/lib/voxedge"),
        "127.0.0.1",
    )
    assert (edge.t1, edge.nonce_ttl) == (local.edge.t1, local.edge.nonce_ttl)
    phones = config.phones_listener
    assert phones is not None
    assert (phones.udp, phones.tcp) == (HostPort("127.0.0.1", 8060), HostPort("127.0.0.1", 8060))
    assert phones.max_registration_rate == Rate(40, 5.0)
    assert phones.max_call_rate == Rate(10, 1.0)
    assert config.trunks_listener == local.trunks_listener
    [phone] = config.phones
    assert (phone.name, phone.type, phone.extension) == ("Alice", PhoneType.GENERIC_SIP, "1001")
    assert list(phone.ha1.items()) == [("SHA-256", SHA), ("MD5", MD5)]


def test_unset_settings_keep_the_local_values() -> None:
    settings = EdgeSettings(
        name="local",
        domain="local.example",
        advertise="10.0.0.1",
        data_dir=Path("/d"),
        min_expires=10,
        max_expires=100,
        default_expires=50,
        media_ports=(40000, 40099),
        media_timeout=9.0,
        no_answer_timeout=8.0,
    )
    listener = Listener(udp=HostPort("10.0.0.1", 0), max_registration_rate=Rate(1, 1.0))
    local = EdgeConfig(settings, listener, None)
    config = build_edge_config(edge_pb2.ConfigSnapshot(), local)
    assert config.edge == settings
    assert config.phones_listener is listener
    assert config.trunks_listener is None
    assert config.phones == ()


def test_phone_kinds_webrtc_managed_remote_and_without_secrets() -> None:
    snapshot = _snapshot(
        _phone("p1", "1001", kind=edge_pb2.PHONE_TYPE_WEBRTC),
        _phone("p2", "1002", kind=edge_pb2.PHONE_TYPE_MANAGED, secrets=()),
        _phone("p3", "1003", kind=edge_pb2.PHONE_TYPE_REMOTE_NUMBER),
        _phone("p4", "1004", secrets=(("MD5", MD5.upper()),)),
    )
    config = build_edge_config(snapshot, _local())
    assert [(p.extension, p.type) for p in config.phones] == [
        ("1001", PhoneType.WEBRTC),
        ("1004", PhoneType.GENERIC_SIP),
    ]
    assert config.phones[0].name == "1001"  # no name: the extension
    assert dict(config.phones[1].ha1) == {"MD5": MD5}  # hex normalised to lower case


def test_delta_upserts_deletes_and_replaces_settings() -> None:
    base = _snapshot(_phone("p1", "1001"), _phone("p2", "1002"))
    base.trunks.add(id="t1", name="carrier")
    delta = edge_pb2.ConfigDelta(
        edge=edge_pb2.EdgeSettings(name="renamed", domain="new.example"),
        upsert_phones=[_phone("p2", "2002"), _phone("p3", "1003")],
        delete_phones=["p1", "no-such-phone"],
        upsert_dids=[edge_pb2.Did(id="d1", number="+15550100", target_extension="1003")],
        delete_trunks=["t1"],
    )
    result = apply_delta(base, delta)
    assert [(p.id, p.extension) for p in result.phones] == [("p2", "2002"), ("p3", "1003")]
    assert (result.edge.name, result.edge.domain) == ("renamed", "new.example")
    assert list(result.trunks) == []
    assert [d.number for d in result.dids] == ["+15550100"]
    # The base is untouched (the edge keeps it when an update is refused).
    assert [p.id for p in base.phones] == ["p1", "p2"] and base.edge.name == "edge-1"
    config = build_edge_config(result, _local())
    assert [p.extension for p in config.phones] == ["2002", "1003"]
    assert config.edge.domain == "new.example"


def test_delta_without_edge_keeps_settings_and_unknown_delete_is_ignored() -> None:
    base = _snapshot(_phone("p1", "1001"), media_ports="30000-30999")
    result = apply_delta(base, edge_pb2.ConfigDelta(delete_phones=["nope"]))
    assert result == base


def test_update_snapshot_replaces_and_delta_needs_a_base() -> None:
    first = edge_pb2.ConfigUpdate(version=3, snapshot=_snapshot(_phone("p1", "1001")))
    snapshot = apply_update(None, first)
    assert [p.id for p in snapshot.phones] == ["p1"]
    replaced = apply_update(snapshot, edge_pb2.ConfigUpdate(version=4, snapshot=_snapshot()))
    assert list(replaced.phones) == []
    delta = edge_pb2.ConfigUpdate(version=5, delta=edge_pb2.ConfigDelta(delete_phones=["p1"]))
    assert list(apply_update(snapshot, delta).phones) == []
    with pytest.raises(FeedError, match=r"^delta: no snapshot"):
        apply_update(None, delta)
    with pytest.raises(FeedError, match=r"^change:"):
        apply_update(snapshot, edge_pb2.ConfigUpdate(version=6))


@pytest.mark.parametrize(
    ("snapshot", "message"),
    [
        (_snapshot(max_registration_rate="40 per 5s"), r"^edge\.max_registration_rate: "),
        (_snapshot(max_call_rate="0/5s"), r"^edge\.max_call_rate: "),
        (_snapshot(media_ports="30001-30000"), r"^edge\.media_ports: "),
        (_snapshot(media_ports="ports"), r"^edge\.media_ports: "),
        (_snapshot(media_timeout=-1.0), r"^edge\.media_timeout: "),
        (_snapshot(no_answer_timeout=float("nan")), r"^edge\.no_answer_timeout: "),
        (_snapshot(min_expires=4000), r"^edge\.min_expires: 4000 is above default_expires"),
        (_snapshot(domain="bad domain"), r"^edge\.domain: "),
        (
            _snapshot(_phone("p1", "1001"), _phone("p2", "1001")),
            r'^phones\[1\]\.extension: duplicate extension "1001" \(also phones\[0\]\)',
        ),
        (_snapshot(_phone("p1", "1001"), _phone("p2", "")), r"^phones\[1\]\.extension: "),
        (_snapshot(_phone("p1", "10 01")), r"^phones\[0\]\.extension: "),
        (
            _snapshot(_phone("p1", "1001", secrets=(("SHA-512", SHA),))),
            r'^phones\[0\]\.digest\[0\]\.algorithm: unknown "SHA-512"',
        ),
        (
            _snapshot(_phone("p1", "1001", secrets=(("MD5", MD5), ("SHA-256", MD5)))),
            r"^phones\[0\]\.digest\[1\]\.ha1: expected 64 hex digits for SHA-256$",
        ),
        (
            _snapshot(_phone("p1", "1001", secrets=(("MD5", "z" * 32),))),
            r"^phones\[0\]\.digest\[0\]\.ha1: expected 32 hex digits",
        ),
        (
            _snapshot(_phone("p1", "1001", secrets=(("MD5", MD5), ("MD5", MD5)))),
            r"^phones\[0\]\.digest\[1\]\.algorithm: .* twice",
        ),
        (
            _snapshot(_phone("p1", "1001", kind=edge_pb2.PHONE_TYPE_UNSPECIFIED)),
            r"^phones\[0\]\.type: unknown",
        ),
    ],
)
def test_invalid_values_are_refused_naming_the_field(
    snapshot: edge_pb2.ConfigSnapshot, message: str
) -> None:
    with pytest.raises(FeedError, match=message) as caught:
        build_edge_config(apply_update(None, edge_pb2.ConfigUpdate(snapshot=snapshot)), _local())
    # An HA1 is never echoed in the message.
    assert MD5 not in str(caught.value) and SHA not in str(caught.value)


def test_duplicate_or_missing_ids_are_refused() -> None:
    snapshot = _snapshot(_phone("p1", "1001"), _phone("p1", "1002"))
    with pytest.raises(FeedError, match=r'^phones\[1\]\.id: duplicate id "p1"'):
        apply_update(None, edge_pb2.ConfigUpdate(snapshot=snapshot))
    with pytest.raises(FeedError, match=r"^upsert_phones\[0\]\.id: "):
        apply_delta(_snapshot(), edge_pb2.ConfigDelta(upsert_phones=[_phone("", "1001")]))


def test_a_delta_that_makes_a_duplicate_extension_is_refused_whole() -> None:
    base = _snapshot(_phone("p1", "1001"))
    result = apply_delta(base, edge_pb2.ConfigDelta(upsert_phones=[_phone("p2", "1001")]))
    with pytest.raises(FeedError, match=r"^phones\[1\]\.extension: duplicate"):
        build_edge_config(result, _local())


def test_local_listeners_are_unchanged_and_phones_replace_local_ones() -> None:
    local = _local()
    local = EdgeConfig(
        local.edge,
        local.phones_listener,
        local.trunks_listener,
        (Phone("old", PhoneType.GENERIC_SIP, "9999", {"MD5": MD5}),),
    )
    config = build_edge_config(_snapshot(_phone("p1", "1001")), local)
    assert config.phones_listener is local.phones_listener
    assert config.trunks_listener is local.trunks_listener
    assert [p.extension for p in config.phones] == ["1001"]
    assert config.phone_by_extension("9999") is None

"""The configuration feed's pure parts: snapshots from rows, deltas between snapshots, the
per-stream update decision; and the store's consistent org_config read (SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio
import datetime
import itertools
from typing import Any

import pytest

from controlplane.edge_service import (
    ConfigFeed,
    Loaded,
    Sent,
    SiteView,
    apply_delta,
    delta_between,
    host_port,
    index_of,
    next_update,
    settings_of,
    site_snapshot,
    snapshot_of,
)
from controlplane.models import (
    Did,
    Edge,
    NumberPlan,
    Organisation,
    OutboundRoute,
    Phone,
    PhoneKind,
    Site,
    Trunk,
    TrunkTransport,
)
from controlplane.passwords import digest_ha1
from controlplane.store import OrgConfig, Store
from protos.voxedge.v1 import edge_pb2

DOMAIN = "acme.voxedge.test"
SITE_A, SITE_B = "site-a", "site-b"


def _org(version: int = 7) -> Organisation:
    return Organisation(id="org", name="acme", sip_domain=DOMAIN, config_version=version)


def _edge(site_id: str = SITE_A, **settings: Any) -> Edge:
    return Edge(
        id=f"edge-{site_id}",
        org_id="org",
        site_id=site_id,
        name=f"edge {site_id}",
        settings=settings,
        certificate_sha256="f" * 64,
    )


def _phone(extension: str, site_id: str | None = None, **fields: Any) -> Phone:
    username = f"u{extension}"
    values: dict[str, Any] = {
        "id": f"p{extension}",
        "org_id": "org",
        "site_id": site_id,
        "kind": PhoneKind.GENERIC_SIP,
        "extension": extension,
        "display_name": "",
        "sip_username": username,
        "ha1_md5": digest_ha1(username, DOMAIN, "pw"),
        "ha1_sha256": digest_ha1(username, DOMAIN, "pw", "SHA-256"),
    }
    values.update(fields)
    return Phone(**values)


def _trunk(name: str, site_id: str | None = None, **fields: Any) -> Trunk:
    values: dict[str, Any] = {
        "id": f"t-{name}",
        "org_id": "org",
        "site_id": site_id,
        "name": name,
        "host": "192.0.2.10",
        "port": 5060,
        "transport": TrunkTransport.UDP,
        "allowed_sources": ["192.0.2.0/24"],
        "auth_username": None,
        "auth_ha1_md5": None,
        "auth_ha1_sha256": None,
        "enabled": True,
        "codecs": [],
    }
    values.update(fields)
    return Trunk(**values)


def _config(
    *,
    version: int = 7,
    edges: list[Edge] | None = None,
    phones: list[Phone] | None = None,
    trunks: list[Trunk] | None = None,
    dids: list[Did] | None = None,
    plans: list[NumberPlan] | None = None,
    routes: list[OutboundRoute] | None = None,
) -> OrgConfig:
    return OrgConfig(
        version=version,
        organisation=_org(version),
        edges=edges if edges is not None else [_edge()],
        phones=phones if phones is not None else [_phone("1001")],
        trunks=trunks or [],
        dids=dids or [],
        number_plans=plans or [],
        outbound_routes=routes or [],
    )


# -- snapshots --------------------------------------------------------------------------------


def test_edge_settings_come_from_the_organisation_edge_row_and_its_settings_json() -> None:
    edge = _edge(
        min_expires=60,
        max_expires=3600,
        default_expires=600,
        media_ports="20000-20999",
        media_timeout=30,
        no_answer_timeout=45.5,
        max_registration_rate="40/5s",
        max_call_rate="10/1s",
    )
    settings = settings_of(_org(), edge)
    assert settings == edge_pb2.EdgeSettings(
        name="edge site-a",
        domain=DOMAIN,
        site_id=SITE_A,
        min_expires=60,
        max_expires=3600,
        default_expires=600,
        media_ports="20000-20999",
        media_timeout=30.0,
        no_answer_timeout=45.5,
        max_registration_rate="40/5s",
        max_call_rate="10/1s",
    )


def test_absent_or_ill_typed_settings_stay_zero_meaning_the_edge_default() -> None:
    assert settings_of(_org(), _edge()) == edge_pb2.EdgeSettings(
        name="edge site-a", domain=DOMAIN, site_id=SITE_A
    )
    odd = _edge(
        min_expires=-1,
        max_expires=2**32,
        default_expires=True,
        media_ports=20000,
        media_timeout=float("nan"),
        no_answer_timeout="30",
        max_call_rate=None,
    )
    assert settings_of(_org(), odd) == edge_pb2.EdgeSettings(
        name="edge site-a", domain=DOMAIN, site_id=SITE_A
    )


def test_trunk_fields_digest_order_and_outbound_proxy() -> None:
    trunk = _trunk(
        "carrier",
        host="2001:db8::5",
        port=5061,
        transport=TrunkTransport.TLS,
        allowed_sources=["198.51.100.0/24", "2001:db8::/32"],
        auth_username="acct42",
        auth_ha1_md5="a" * 32,
        auth_ha1_sha256="b" * 64,
        codecs=["PCMU", "PCMA"],
    )
    config = _config(trunks=[trunk])
    [fed] = snapshot_of(config.for_edge(_edge())).trunks
    assert fed == edge_pb2.Trunk(
        id="t-carrier",
        name="carrier",
        allow_cidrs=["198.51.100.0/24", "2001:db8::/32"],
        digest_username="acct42",
        digest=[
            edge_pb2.DigestSecret(algorithm="SHA-256", ha1="b" * 64),
            edge_pb2.DigestSecret(algorithm="MD5", ha1="a" * 32),
        ],
        outbound_proxy="[2001:db8::5]:5061",
        transport="tls",
        codecs=["PCMU", "PCMA"],
    )
    assert host_port("192.0.2.1", 5060) == "192.0.2.1:5060"
    assert host_port("[2001:db8::1]", 5060) == "[2001:db8::1]:5060"


def test_dids_plans_and_routes() -> None:
    phone = _phone("1001", SITE_B)  # another site's phone: not fed, but still a DID target
    dids = [
        Did(id="d1", org_id="org", number="+15550001", trunk_id="t-c", phone_id=phone.id),
        Did(id="d2", org_id="org", number="+15550002", trunk_id=None, phone_id=None),
    ]
    plan = NumberPlan(
        id="n1",
        org_id="org",
        name="national",
        pattern=r"^0(\d{9})$",
        replacement=r"+33\1",
        classification="national",
        priority=10,
    )
    route = OutboundRoute(
        id="r1",
        org_id="org",
        name="default",
        classifications=["national", "mobile"],
        trunk_ids=["t-c", "t-d"],
        priority=20,
        enabled=True,
    )
    config = _config(phones=[phone], dids=dids, plans=[plan], routes=[route])
    snapshot = snapshot_of(config.for_edge(_edge(SITE_A)))
    assert list(snapshot.phones) == []
    assert list(snapshot.dids) == [
        edge_pb2.Did(id="d1", number="+15550001", target_extension="1001", trunk_id="t-c"),
        edge_pb2.Did(id="d2", number="+15550002"),
    ]
    assert list(snapshot.number_plans) == [
        edge_pb2.NumberPlan(
            id="n1",
            name="national",
            match=r"^0(\d{9})$",
            replace=r"+33\1",
            classification="national",
            priority=10,
        )
    ]
    assert list(snapshot.outbound_routes) == [
        edge_pb2.OutboundRoute(
            id="r1",
            name="default",
            classifications=["national", "mobile"],
            trunk_ids=["t-c", "t-d"],
            priority=20,
        )
    ]


def test_phones_and_trunks_are_scoped_to_the_edges_site_or_none() -> None:
    config = _config(
        phones=[_phone("1001", SITE_A), _phone("1002", SITE_B), _phone("1003", None)],
        trunks=[_trunk("a", SITE_A), _trunk("b", SITE_B), _trunk("any", None)],
    )
    for site, phones, trunks in (
        (SITE_A, ["1001", "1003"], ["a", "any"]),
        (SITE_B, ["1002", "1003"], ["b", "any"]),
    ):
        edge = _edge(site)
        snapshot = snapshot_of(config.for_edge(edge))
        assert [p.extension for p in snapshot.phones] == phones
        assert [t.name for t in snapshot.trunks] == trunks
        assert [p.site_id for p in snapshot.phones] == [site, ""]
        # The shared per-site snapshot plus the edge's own settings is the same thing.
        shared = site_snapshot(config, site)
        shared.edge.CopyFrom(settings_of(config.organisation, edge))
        assert shared == snapshot


# -- deltas -----------------------------------------------------------------------------------


def _index(config: OrgConfig, edge: Edge | None = None) -> Any:
    return index_of(snapshot_of(config.for_edge(edge or _edge())))


def test_delta_has_only_changed_and_new_rows_and_deleted_ids() -> None:
    old = _config(phones=[_phone("1001"), _phone("1002"), _phone("1003")])
    new = _config(
        version=8,
        phones=[
            _phone("1001"),
            _phone("1002", display_name="Reception"),
            _phone("1004"),
        ],
        trunks=[_trunk("carrier")],
    )
    delta = delta_between(_index(old), _index(new))
    assert [p.extension for p in delta.upsert_phones] == ["1002", "1004"]
    assert delta.upsert_phones[0].name == "Reception"
    assert list(delta.delete_phones) == ["p1003"]
    assert [t.name for t in delta.upsert_trunks] == ["carrier"]
    assert not delta.HasField("edge")
    assert apply_delta(_index(old), delta) == _index(new)


def test_delta_sets_edge_only_when_the_settings_changed() -> None:
    config = _config()
    same = delta_between(_index(config), _index(config))
    assert same == edge_pb2.ConfigDelta()
    changed = delta_between(_index(config), _index(config, _edge(max_expires=900)))
    assert changed.HasField("edge") and changed.edge.max_expires == 900
    assert list(changed.upsert_phones) == []


def test_delta_deletes_every_kind() -> None:
    full = _config(
        trunks=[_trunk("c")],
        dids=[Did(id="d1", org_id="org", number="+1555", trunk_id=None, phone_id=None)],
        plans=[
            NumberPlan(
                id="n1",
                org_id="org",
                name="n",
                pattern="x",
                replacement="",
                classification="c",
                priority=1,
            )
        ],
        routes=[
            OutboundRoute(
                id="r1",
                org_id="org",
                name="r",
                classifications=[],
                trunk_ids=[],
                priority=1,
                enabled=True,
            )
        ],
    )
    empty = _config(phones=[])
    delta = delta_between(_index(full), _index(empty))
    assert (
        list(delta.delete_phones),
        list(delta.delete_trunks),
        list(delta.delete_dids),
        list(delta.delete_number_plans),
        list(delta.delete_outbound_routes),
    ) == (["p1001"], ["t-c"], ["d1"], ["n1"], ["r1"])
    assert apply_delta(_index(full), delta) == _index(empty)


# -- the per-stream decision ------------------------------------------------------------------


def _loaded(config: OrgConfig) -> Loaded:
    return Loaded(config, itertools.count(1))


def test_first_update_is_nothing_when_resuming_else_a_snapshot() -> None:
    loaded = _loaded(_config(version=7))
    edge = loaded.edges["edge-site-a"]
    update, sent = next_update(None, 7, loaded, edge)
    assert update is None and sent.version == 7
    for from_version in (0, 3, 9):  # older, or newer than we have (a restored database)
        update, sent = next_update(None, from_version, loaded, edge)
        assert update is not None and update.WhichOneof("change") == "snapshot"
        assert update.version == 7
        assert update.snapshot.edge.name == "edge site-a"
        assert [p.extension for p in update.snapshot.phones] == ["1001"]


def test_later_updates_are_deltas_even_empty_and_nothing_without_a_new_version() -> None:
    first = _loaded(_config(version=7))
    edge = first.edges["edge-site-a"]
    _, sent = next_update(None, 0, first, edge)

    same = _loaded(_config(version=7))  # a wake-up without a write (revocation check)
    update, kept = next_update(sent, 0, same, same.edges["edge-site-a"])
    assert update is None and kept is sent

    unrelated = _loaded(_config(version=8))  # a write this edge does not see
    update, sent = next_update(sent, 0, unrelated, unrelated.edges["edge-site-a"])
    assert update is not None and update.version == 8
    assert update.WhichOneof("change") == "delta" and update.delta == edge_pb2.ConfigDelta()

    grown = _loaded(
        _config(version=9, phones=[_phone("1001"), _phone("1002")], edges=[_edge(max_expires=60)])
    )
    update, sent = next_update(sent, 0, grown, grown.edges["edge-site-a"])
    assert update is not None and update.version == 9
    assert [p.extension for p in update.delta.upsert_phones] == ["1002"]
    assert update.delta.edge.max_expires == 60

    restored = _loaded(_config(version=4))  # versions went back: start over
    update, sent = next_update(sent, 0, restored, restored.edges["edge-site-a"])
    assert update is not None and update.WhichOneof("change") == "snapshot"


def test_one_view_per_site_and_one_delta_per_older_view() -> None:
    loaded = _loaded(_config(edges=[_edge(SITE_A), _edge(SITE_B)]))
    view = loaded.view(SITE_A)
    assert loaded.view(SITE_A) is view and loaded.views_built == 1
    assert loaded.view(SITE_B) is not view and loaded.views_built == 2
    newer = _loaded(_config(version=8, phones=[_phone("1001"), _phone("1002")]))
    newer_view: SiteView = newer.view(SITE_A)
    assert newer_view.delta_since(view) is newer_view.delta_since(view)
    sent = Sent(7, view, settings_of(loaded.config.organisation, loaded.edges["edge-site-a"]))
    update, _ = next_update(sent, 0, newer, newer.edges["edge-site-a"])
    assert update is not None and [p.extension for p in update.delta.upsert_phones] == ["1002"]


# -- the store's read -------------------------------------------------------------------------


async def test_org_config_reads_every_fed_row_at_one_version(store: Store) -> None:
    org = await store.create_organisation("acme", DOMAIN)
    async with store.write(org.id) as session:
        site = Site(org_id=org.id, name="HQ")
        other = Site(org_id=org.id, name="Branch")
        session.add_all([site, other])
        await session.flush()
        edge = Edge(org_id=org.id, site_id=site.id, name="edge-1", settings={"max_expires": 900})
        session.add(edge)
        mine = _phone("1001", site.id, id=None, org_id=org.id)
        theirs = _phone("1002", other.id, id=None, org_id=org.id)
        session.add_all([mine, theirs])
        on = _trunk("on", id=None, org_id=org.id, codecs=["PCMA"])
        off = _trunk("off", id=None, org_id=org.id, enabled=False)
        session.add_all([on, off])
        await session.flush()
        session.add(Did(org_id=org.id, number="+15550001", trunk_id=on.id, phone_id=theirs.id))
        session.add(
            NumberPlan(
                org_id=org.id,
                name="all",
                pattern=".*",
                replacement="",
                classification="any",
            )
        )
        session.add_all(
            [
                OutboundRoute(org_id=org.id, name="r-on", trunk_ids=[on.id], enabled=True),
                OutboundRoute(org_id=org.id, name="r-off", enabled=False),
            ]
        )
    config = await store.org_config(org.id)
    assert config.version == 1 == await store.config_version(org.id)
    assert [e.name for e in config.edges] == ["edge-1"]
    assert [t.name for t in config.trunks] == ["on"]
    assert [r.name for r in config.outbound_routes] == ["r-on"]

    edge_config = await store.edge_config(org.id, edge.id)
    snapshot = snapshot_of(edge_config)
    assert snapshot.edge.max_expires == 900
    assert [p.extension for p in snapshot.phones] == ["1001"]
    assert [(t.name, list(t.codecs)) for t in snapshot.trunks] == [("on", ["PCMA"])]
    assert [(d.number, d.target_extension) for d in snapshot.dids] == [("+15550001", "1002")]
    assert [p.replace for p in snapshot.number_plans] == [""]
    assert [r.name for r in snapshot.outbound_routes] == ["r-on"]


async def test_revoke_edge_wakes_the_organisations_watchers(store: Store) -> None:
    org = await store.create_organisation("acme", DOMAIN)
    async with store.write(org.id) as session:
        site = Site(org_id=org.id, name="HQ")
        session.add(site)
        await session.flush()
        edge = Edge(org_id=org.id, site_id=site.id, name="edge-1")
        session.add(edge)
    woken = store.config_changes.waiter(org.id)
    await store.revoke_edge(org.id, edge.id, datetime.datetime.now(datetime.UTC))
    assert woken.is_set()
    assert await store.config_version(org.id) == 1  # not a configuration write


@pytest.mark.parametrize("site", [SITE_A, SITE_B])
def test_site_snapshot_has_no_edge_settings(site: str) -> None:
    assert not site_snapshot(_config(), site).HasField("edge")


# -- the shared feed --------------------------------------------------------------------------


async def test_feed_shares_one_read_per_wake_and_rechecks_once(store: Store) -> None:
    org = await store.create_organisation("acme", DOMAIN)
    async with store.write(org.id) as session:
        site = Site(org_id=org.id, name="HQ")
        session.add(site)
        await session.flush()
        session.add(Edge(org_id=org.id, site_id=site.id, name="edge-1"))
    tasks: list[asyncio.Task[Any]] = []
    feed = ConfigFeed(store, 30.0, tasks.append)
    for _ in range(10):
        feed.attach(org.id)
    results = await asyncio.gather(*(feed.current(org.id) for _ in range(10)))
    assert feed.loads == 1
    assert len({id(loaded) for _, loaded in results}) == 1
    token = results[0][0]

    # A stream whose wait timed out while the shared read is fresh wakes nobody ...
    feed.recheck(org.id, token)
    assert not token.is_set()
    # ... and once the read is old, it wakes every watcher for one new read.
    stale = ConfigFeed(store, 0.0, tasks.append)
    stale.attach(org.id)
    token, before = await stale.current(org.id)
    view = before.view(site.id)
    stale.recheck(org.id, token)
    assert token.is_set()
    reread = await asyncio.gather(*(stale.current(org.id) for _ in range(5)))
    assert stale.loads == 2
    # Same version: the views already built are kept.
    after = reread[0][1]
    assert after is not before and after.view(site.id) is view and after.views_built == 0

    for _ in range(10):
        feed.detach(org.id)
    assert feed.loaded(org.id) is None  # the last watcher gone: nothing kept

"""A real ``voxedge-edge`` process paired with the control plane's EdgeService (run in this
test process on a SQLite store): pairing, phones fed over WatchConfig, survivability on the
cached snapshot, revocation, and CDRs from the outbox stored exactly once."""

from __future__ import annotations

import asyncio
import datetime
import sqlite3
import stat
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from benchmarks.sipp.users import PhoneUser, write_sipp_csv
from controlplane.ca import CertificateAuthority
from controlplane.edge_service import EdgeServer, serve_edges
from controlplane.models import Cdr, Edge, EdgeStatus, Organisation, Phone, PhoneKind, Site
from controlplane.passwords import digest_ha1
from controlplane.store import Store, sqlite_url
from edge.config_cache import ConfigCache
from edge.outbox import Outbox
from edge.uplink import Backoff
from tests.integration.edgeproc import PairedEdgeProcess
from tests.integration.sip_client import register
from tests.integration.sipp import (
    SippResult,
    free_media_port,
    free_port,
    register_phone,
    run_sipp,
    sipp_path,
    start_sipp,
)

pytestmark = pytest.mark.integration

SCENARIOS = Path(__file__).resolve().parents[2] / "benchmarks" / "sipp"
DOMAIN = "voxedge.test"  # the SIP domain sip_client registers in
WAIT = 5.0
LOCAL_TOML = """\
[edge]
name = "local-name"
domain = "placeholder.invalid"
advertise = "127.0.0.1"
data_dir = "not-used"

[listen.phones]
udp = "127.0.0.1:0"
tcp = "127.0.0.1:0"

[listen.trunks]
udp = "127.0.0.1:0"
"""


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass
class Plant:
    tmp: Path
    store: Store
    ca: CertificateAuthority
    server: EdgeServer | None
    org: Organisation
    edge: Edge
    phone: Phone
    port: int = 0
    pairing_port: int = 0

    @property
    def ca_file(self) -> Path:
        return self.tmp / "controlplane-ca.pem"

    @property
    def data_dir(self) -> Path:
        return self.tmp / "edge-data"

    async def serve(self) -> None:
        """Start (or restart, on the same ports) the EdgeService."""
        self.server = await serve_edges(
            self.store,
            self.ca,
            "127.0.0.1",
            self.port,
            pairing_port=self.pairing_port,
            server_credentials=self.ca.server_certificate(["127.0.0.1"], utcnow()),
        )
        self.port, self.pairing_port = self.server.port, self.server.pairing_port

    async def stop_serving(self) -> None:
        if self.server is not None:
            await self.server.stop(None)
            self.server = None

    def edge_args(self, token: str | None = None) -> list[str]:
        args = [
            *("--controlplane", f"127.0.0.1:{self.port}"),
            *("--pairing-port", str(self.pairing_port)),
            *("--data-dir", str(self.data_dir)),
            *("--config", str(self.tmp / "local.toml")),
        ]
        if token is not None:
            # "=": a URL-safe token may begin with "-".
            args += [f"--pairing-token={token}", "--controlplane-ca", str(self.ca_file)]
        return args

    async def start_edge(self, token: str | None = None) -> PairedEdgeProcess:
        edge = PairedEdgeProcess(self.tmp / "edge", self.edge_args(token))
        return await asyncio.to_thread(edge.start)

    async def set_password(self, extension: str, password: str) -> None:
        async with self.store.write(self.org.id) as session:
            phone = await session.scalar(
                select(Phone).where(Phone.org_id == self.org.id, Phone.extension == extension)
            )
            assert phone is not None
            phone.ha1_md5 = digest_ha1(extension, DOMAIN, password)
            phone.ha1_sha256 = digest_ha1(extension, DOMAIN, password, "SHA-256")

    async def add_phone(self, extension: str, password: str) -> None:
        async with self.store.write(self.org.id) as session:
            session.add(_phone(self.org, extension, password))

    async def delete_phone(self, extension: str) -> None:
        async with self.store.write(self.org.id) as session:
            phone = await session.scalar(
                select(Phone).where(Phone.org_id == self.org.id, Phone.extension == extension)
            )
            assert phone is not None
            await session.delete(phone)


def _phone(org: Organisation, extension: str, password: str) -> Phone:
    # The edge authenticates the extension as the digest username (edge.config.Phone).
    return Phone(
        org_id=org.id,
        kind=PhoneKind.GENERIC_SIP,
        extension=extension,
        sip_username=extension,
        ha1_md5=digest_ha1(extension, DOMAIN, password),
        ha1_sha256=digest_ha1(extension, DOMAIN, password, "SHA-256"),
    )


@pytest.fixture
async def plant(tmp_path: Path) -> AsyncIterator[Plant]:
    store = Store(sqlite_url(tmp_path / "controlplane.sqlite"))
    await store.migrate()
    ca = CertificateAuthority.create("test", utcnow())
    (tmp_path / "controlplane-ca.pem").write_bytes(ca.certificate_pem)
    (tmp_path / "local.toml").write_text(LOCAL_TOML)
    org = await store.create_organisation("acme", DOMAIN)
    async with store.write(org.id) as session:
        site = Site(org_id=org.id, name="HQ")
        session.add(site)
        await session.flush()
        edge = Edge(org_id=org.id, site_id=site.id, name="edge-1")
        phone = _phone(org, "1001", "first-secret")
        session.add_all([edge, phone])
    plant = Plant(tmp_path, store, ca, None, org, edge, phone)
    await plant.serve()
    try:
        yield plant
    finally:
        await plant.stop_serving()
        await store.close()


async def _status(port: int, user: str, password: str) -> int:
    return (await asyncio.to_thread(register, port, user, password)).status


async def _until_status(
    port: int, user: str, password: str, expected: int, timeout: float = 1.0
) -> float:
    """Seconds until REGISTER gets ``expected`` (asserts it does within ``timeout``)."""
    start = time.monotonic()
    while True:
        status = await _status(port, user, password)
        elapsed = time.monotonic() - start
        if status == expected:
            return elapsed
        assert elapsed < timeout, f"REGISTER {user}: {status}, wanted {expected}"
        await asyncio.sleep(0.05)


async def _until(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def _logged(edge: PairedEdgeProcess, text: str, after: int = 0) -> bool:
    return await asyncio.to_thread(edge.wait_for_log, text, WAIT, after)


async def _stop(edge: PairedEdgeProcess) -> int | None:
    return await asyncio.to_thread(edge.stop)


async def _token(plant: Plant) -> str:
    return await plant.store.issue_pairing_token(plant.org.id, plant.edge.id, utcnow())


def _cdr(call_id: str) -> dict[str, object]:
    return {
        "call_id": call_id,
        "from_uri": f"sip:1001@{DOMAIN}",
        "to_uri": f"sip:1002@{DOMAIN}",
        "started": 1_700_000_000.0,
        "answered": 1_700_000_002.0,
        "ended": 1_700_000_060.0,
        "end_cause": "normal",
    }


async def test_edge_pairs_and_follows_the_phones_in_the_store(plant: Plant) -> None:
    edge = await plant.start_edge(await _token(plant))
    try:
        assert edge.ready, edge.log()
        key = plant.data_dir / "edge.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert (plant.data_dir / "edge.crt").read_bytes().startswith(b"-----BEGIN CERTIFICATE")
        assert (plant.data_dir / "controlplane-ca.pem").read_bytes() == plant.ca.certificate_pem
        port = edge.port("udp")
        assert await _until_status(port, "1001", "first-secret", 200) < 1.0

        await plant.set_password("1001", "second-secret")
        assert await _until_status(port, "1001", "second-secret", 200) < 1.0
        assert await _status(port, "1001", "first-secret") == 403

        await plant.add_phone("1002", "bob-secret")
        assert await _until_status(port, "1002", "bob-secret", 200) < 1.0
        await plant.delete_phone("1002")
        assert await _until_status(port, "1002", "bob-secret", 403) < 1.0

        # The edge reports its status: online at the store's version, with a registration.
        version = await plant.store.config_version(plant.org.id)

        async def reported() -> Edge:
            return await plant.store.get(plant.org.id, Edge, plant.edge.id)

        deadline = time.monotonic() + WAIT
        row = await reported()
        while (row.status, row.config_version) != (EdgeStatus.ONLINE, version):
            assert time.monotonic() < deadline, (row.status, row.config_version, version)
            await asyncio.sleep(0.1)
            row = await reported()
        log = edge.log()
        for secret in ("first-secret", "second-secret", key.read_text().splitlines()[1]):
            assert secret not in log
        for ha1 in (plant.phone.ha1_md5, plant.phone.ha1_sha256):
            assert ha1 is not None and ha1 not in log
    finally:
        assert await _stop(edge) == 0


async def test_cdr_in_the_outbox_is_stored_once_even_when_sent_again(plant: Plant) -> None:
    edge = await plant.start_edge(await _token(plant))
    try:
        assert edge.ready, edge.log()
        key = f"cdr:{plant.edge.id}:call-1"
        payload = _cdr("call-1")
        cache = plant.data_dir / "cache.sqlite"
        with Outbox(cache) as outbox:
            outbox.put("cdr", key, payload, time.time())
            await _until(lambda: outbox.counts()["pending"] == 0)

        # The acknowledgement "was lost": the edge sends the same key again.
        with sqlite3.connect(cache) as db:
            db.execute("UPDATE outbox SET delivered = NULL WHERE key = ?", (key,))
        with Outbox(cache) as outbox:
            await _until(lambda: outbox.counts()["pending"] == 0)
        # Sent twice (the log line follows the commit), stored once.
        await _until(lambda: edge.log().count("outbox: 1 items delivered") == 2)
        async with plant.store.read() as session:
            count = await session.scalar(select(func.count()).select_from(Cdr))
            cdr = await session.scalar(select(Cdr))
        assert count == 1
        assert cdr is not None and (cdr.call_id, cdr.edge_id) == ("call-1", plant.edge.id)
    finally:
        assert await _stop(edge) == 0


async def test_edge_serves_its_cache_offline_and_resumes_without_pairing(plant: Plant) -> None:
    edge = await plant.start_edge(await _token(plant))
    assert edge.ready, edge.log()
    certificate = (plant.data_dir / "edge.crt").read_bytes()
    version = await plant.store.config_version(plant.org.id)
    assert await _stop(edge) == 0

    # Control plane gone: a restarted edge serves the cached phones at once.
    await plant.stop_serving()
    offset = len(edge.log())
    edge = await plant.start_edge()
    try:
        assert edge.ready, edge.log()[offset:]
        assert await _until_status(edge.port("udp"), "1001", "first-secret", 200) < 1.0
        assert f"serving cached config version {version}" in edge.log()[offset:]
        # A call record made meanwhile waits in the outbox; sending it fails and is counted.
        with Outbox(plant.data_dir / "cache.sqlite") as outbox:
            outbox.put("cdr", f"cdr:{plant.edge.id}:offline", _cdr("offline"), time.time())
            await _until(lambda: outbox.pending(1)[0].attempts >= 1)
    finally:
        edge.kill()  # a crash this time

    # Changes made while the edge was away arrive once it is back, from its version on.
    await plant.add_phone("1002", "bob-secret")
    await plant.serve()
    offset = len(edge.log())
    edge = await plant.start_edge()
    try:
        assert edge.ready, edge.log()[offset:]
        port = edge.port("udp")
        assert await _until_status(port, "1001", "first-secret", 200) < 1.0
        assert await _until_status(port, "1002", "bob-secret", 200, timeout=WAIT) < WAIT
        log = edge.log()[offset:]
        assert f"from version {version}" in log
        assert "paired" not in log
        assert (plant.data_dir / "edge.crt").read_bytes() == certificate
        with Outbox(plant.data_dir / "cache.sqlite") as outbox:
            await _until(lambda: outbox.counts()["pending"] == 0)
        async with plant.store.read() as session:
            assert [c.call_id for c in await session.scalars(select(Cdr))] == ["offline"]
    finally:
        assert await _stop(edge) == 0


async def test_revoked_edge_keeps_serving_its_cache_and_logs_the_refusal(plant: Plant) -> None:
    edge = await plant.start_edge(await _token(plant))
    try:
        assert edge.ready, edge.log()
        # Revoked while connected: the control plane ends the watch, the edge serves on.
        await plant.store.revoke_edge(plant.org.id, plant.edge.id, utcnow())
        assert await _logged(edge, "control plane refused this edge (PERMISSION_DENIED")
        assert await _until_status(edge.port("udp"), "1001", "first-secret", 200) < 1.0
    finally:
        assert await _stop(edge) == 0
    # Restarted revoked: refused at once, and the cached phones are still served.
    offset = len(edge.log())
    edge = await plant.start_edge()
    try:
        assert edge.ready, edge.log()[offset:]
        assert await _logged(
            edge, "control plane refused this edge (PERMISSION_DENIED", after=offset
        )
        assert "revoked" in edge.log()[offset:]
        assert await _until_status(edge.port("udp"), "1001", "first-secret", 200) < 1.0
    finally:
        assert await _stop(edge) == 0


async def test_refused_pairing_exits_2_with_the_servers_reason(plant: Plant) -> None:
    edge = PairedEdgeProcess(plant.tmp / "edge", plant.edge_args("not-a-real-token"))
    await asyncio.to_thread(edge.start)
    try:
        assert await asyncio.to_thread(edge.wait, WAIT) == 2
        assert "pairing refused: pairing token refused: UNKNOWN" in edge.log()
        assert not (plant.data_dir / "edge.crt").exists()
    finally:
        await _stop(edge)


async def test_a_bare_token_without_a_ca_file_is_refused(plant: Plant) -> None:
    """Nothing to trust the pairing port with: no pin in the token, no --controlplane-ca."""
    token = await _token(plant)
    edge = PairedEdgeProcess(plant.tmp / "edge", [*plant.edge_args(), f"--pairing-token={token}"])
    await asyncio.to_thread(edge.start)
    try:
        assert await asyncio.to_thread(edge.wait, WAIT) == 2
        assert "the token carries no CA pin" in edge.log()
    finally:
        await _stop(edge)


async def test_a_join_token_whose_pin_is_not_the_servers_ca_is_refused(plant: Plant) -> None:
    rogue = CertificateAuthority.create("rogue", utcnow())
    token = f"{await _token(plant)}.{rogue.pin}"
    edge = PairedEdgeProcess(plant.tmp / "edge", [*plant.edge_args(), f"--pairing-token={token}"])
    await asyncio.to_thread(edge.start)
    try:
        assert await asyncio.to_thread(edge.wait, WAIT) == 2
        assert "matches the join token's pin" in edge.log()
        assert not (plant.data_dir / "edge.key").exists()
    finally:
        await _stop(edge)


async def test_first_start_without_a_token_is_refused(plant: Plant) -> None:
    edge = PairedEdgeProcess(plant.tmp / "edge", plant.edge_args())
    await asyncio.to_thread(edge.start)
    try:
        assert await asyncio.to_thread(edge.wait, WAIT) == 2
        assert "the first start needs --pairing-token" in edge.log()
    finally:
        await _stop(edge)


@pytest.mark.skipif(sipp_path() is None, reason="SIPp is installed by `make test`")
async def test_a_real_calls_record_reaches_the_store_once(plant: Plant) -> None:
    caller, callee = PhoneUser("2001", "caller-secret"), PhoneUser("2002", "callee-secret")
    async with plant.store.write(plant.org.id) as session:
        for user in (caller, callee):
            phone = _phone(plant.org, user.extension, user.password)
            phone.ha1_sha256 = None  # SIPp 3.6 answers MD5 challenges only
            session.add(phone)
    edge = await plant.start_edge(await _token(plant))
    try:
        assert edge.ready, edge.log()
        target = f"127.0.0.1:{edge.port('udp')}"
        work = plant.tmp / "sipp"
        work.mkdir()

        def place_call() -> tuple[SippResult, SippResult]:
            port = free_port()
            assert register_phone(target, callee, port, work).all_ok
            uas = start_sipp(
                SCENARIOS / "call_uas_nomedia.xml",
                None,
                calls=1,
                rate=1,
                local_port=port,
                timeout=15,
                extra_args=["-mp", str(free_media_port())],
                workdir=work / "callee",
            )
            try:
                uas.wait_listening()
                uac = run_sipp(
                    SCENARIOS / "call_uac_nomedia.xml",
                    target,
                    calls=1,
                    rate=1,
                    csv=write_sipp_csv(work / "caller.csv", [caller]),
                    keys={"domain": DOMAIN},
                    timeout=15,
                    extra_args=["-s", "2002", "-auth_uri", f"2002@{DOMAIN}"],
                    workdir=work / "caller",
                )
            finally:
                callee_result = uas.wait(timeout=10)
            return uac, callee_result

        uac, uas = await asyncio.to_thread(place_call)
        assert (uac.exit_code, uac.successful) == (0, 1), (uac.failure_reasons, uac.workdir)
        assert uas.successful == 1, uas.workdir

        async def stored() -> list[Cdr]:
            async with plant.store.read() as session:
                return list(await session.scalars(select(Cdr)))

        deadline = time.monotonic() + WAIT
        while not (rows := await stored()):
            assert time.monotonic() < deadline, edge.log()
            await asyncio.sleep(0.1)
        [row] = rows
        assert row.edge_id == plant.edge.id
        assert row.idempotency_key.startswith("cdr:edge-1:")
        with Outbox(plant.data_dir / "cache.sqlite") as outbox:
            await _until(lambda: outbox.counts() == {"pending": 0, "delivered": 1})
        assert len(await stored()) == 1
    finally:
        assert await _stop(edge) == 0


async def test_an_update_the_edge_refuses_leaves_the_running_config(plant: Plant) -> None:
    edge = await plant.start_edge(await _token(plant))
    try:
        assert edge.ready, edge.log()
        port = edge.port("udp")
        version = await plant.store.config_version(plant.org.id)
        # One write with a phone the edge cannot take and one it could: refused whole.
        async with plant.store.write(plant.org.id) as session:
            session.add(_phone(plant.org, "10 01", "spaces-are-not-allowed"))
            session.add(_phone(plant.org, "1003", "carol-secret"))
        assert await _logged(edge, f"still running version {version}: phones[")
        assert '.extension: "10 01" must be' in edge.log()
        assert await _until_status(port, "1001", "first-secret", 200) < 1.0
        assert await _status(port, "1003", "carol-secret") == 403
        cached = ConfigCache(plant.data_dir / "cache.sqlite")
        try:
            snapshot = cached.load()
        finally:
            cached.close()
        assert snapshot is not None and snapshot.version == version  # not persisted

        # The fault fixed: the edge catches up on everything since its version, 1003 included.
        await plant.delete_phone("10 01")
        assert await _until_status(port, "1003", "carol-secret", 200, timeout=WAIT) < WAIT
        assert "watching again from version" in edge.log()
    finally:
        assert await _stop(edge) == 0


async def test_sigterm_while_pairing_with_an_unreachable_control_plane(plant: Plant) -> None:
    token = await _token(plant)
    await plant.stop_serving()
    edge = PairedEdgeProcess(plant.tmp / "edge", plant.edge_args(token))
    await asyncio.to_thread(edge.start, 1.0)
    try:
        assert not edge.ready
        assert await _logged(edge, "failed (UNAVAILABLE")
        assert await _stop(edge) == 0
        assert "Traceback" not in edge.log()
    finally:
        await _stop(edge)


def test_backoff_doubles_with_jitter_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(0.5, 30.0, rng=lambda low, high: high)
    assert [backoff.next() for _ in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    backoff.reset()
    assert backoff.next() == 0.5
    jittered = Backoff(0.5, 30.0)
    assert 0.25 <= jittered.next() <= 0.5
    assert 0.5 <= jittered.next() <= 1.0

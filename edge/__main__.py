"""``voxedge-edge``: run an edge, standalone from a TOML file or fed by the control plane.

Standalone: ``voxedge-edge --config FILE.toml``. SIGHUP reloads the file atomically (a bad file
is refused with a message naming the line or field, and the running config stays).

Paired: ``voxedge-edge --controlplane HOST:PORT --data-dir DIR [--pairing-token TOKEN]
[--controlplane-ca CA.pem] [--pairing-port N] [--config local.toml]``. The first start pairs on
the pairing port (PORT+1 unless ``--pairing-port`` says otherwise) with the join token the
admin API issued (it pins the control plane's CA, see edge.pairing) or a bare token and
``--controlplane-ca``; later starts reuse the key and certificate stored in DIR. Phones and
organisation settings come from the control plane; ``--config`` gives only the local part
(listeners, advertise address, timers), its phones are ignored. SIGTERM/SIGINT stop the edge.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sqlite3
import sys
from collections.abc import Awaitable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import grpc
import uvloop

from edge.config import (
    ConfigError,
    EdgeConfig,
    HostPort,
    load_config,
    local_defaults,
    parse_host_port,
)
from edge.config_cache import ConfigCache, ConfigCacheError
from edge.feed import FeedError
from edge.outbox import Outbox, OutboxError
from edge.pairing import (
    EdgeCredentials,
    PairingRefused,
    TrustError,
    load_credentials,
    pair,
    split_join_token,
    trusted_ca,
)
from edge.sipserver import SipService
from edge.uplink import Backoff, Uplink

log = logging.getLogger("voxedge.edge")
T = TypeVar("T")


def _nonce_secret(data_dir: Path) -> bytes:
    """The digest nonce key, kept across restarts so issued nonces stay valid."""
    path = data_dir / "nonce.key"
    if path.exists():
        return path.read_bytes()
    secret = os.urandom(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret)
    return secret


def _banner(config: EdgeConfig, service: SipService, secrets_from: str = "the config file") -> str:
    lines = [f"VoxEdge edge {config.edge.name!r}, SIP domain {config.edge.domain}, listening:"]
    for bound in service.listeners:
        host, port = bound.address
        lines.append(f"  {bound.side:7} {bound.transport:4} {host}:{port}")
    phones = [b for b in service.listeners if b.side == "phones"]
    if phones and config.phones:
        host, port = phones[0].address
        users = ", ".join(p.extension for p in config.phones[:5])
        more = f" and {len(config.phones) - 5} more" if len(config.phones) > 5 else ""
        lines.append(
            f"Register a softphone as user {users}{more} in domain {config.edge.domain}, "
            f"outbound proxy {host}:{port}, with the password from {secrets_from}"
        )
    lines.append("Ready.")
    return "\n".join(lines)


async def run(config_path: Path) -> int:
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(f"voxedge-edge: {exc}", file=sys.stderr)
        return 2
    config.edge.data_dir.mkdir(parents=True, exist_ok=True)
    # Long-lived start-up objects (config, modules) leave the collector's view, and young
    # collections run less often: transactions live for Timer J (32 s), so at thousands of
    # messages per second the default thresholds rescan them many times a second.
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    outbox = Outbox(config.edge.data_dir / "cache.sqlite")
    service = SipService(config, secret=_nonce_secret(config.edge.data_dir), outbox=outbox)
    await service.start()
    print(_banner(config, service), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def reload() -> None:
        try:
            pending = service.reload(load_config(config_path))
        except ConfigError as exc:
            log.error("reload refused, keeping the running config: %s", exc)
            return
        log.info("configuration reloaded from %s", config_path)
        if pending:
            log.warning("changed, takes effect after a restart: %s", ", ".join(pending))

    loop.add_signal_handler(signal.SIGHUP, reload)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    await service.stop()
    outbox.close()
    log.info("stopped")
    return 0


PAIR_RETRY_CAP = 30.0
STOP_TIMEOUT = 10.0


def _paired_local(args: argparse.Namespace) -> EdgeConfig | str:
    """The local settings of a paired edge (``--config`` or defaults), ``--data-dir`` winning;
    an error message instead when they cannot be had."""
    if args.config is not None:
        try:
            local = load_config(args.config)
        except ConfigError as exc:
            return str(exc)
        if local.phones:
            log.warning("phones in %s are ignored: the control plane feeds them", args.config)
        local = replace(local, phones=())
        if args.data_dir is not None:
            local = replace(local, edge=replace(local.edge, data_dir=args.data_dir))
        return local
    if args.data_dir is None:
        return "--controlplane needs --data-dir DIR (or data_dir in --config)"
    return local_defaults(args.data_dir)


def _targets(args: argparse.Namespace) -> tuple[str, HostPort] | str:
    """(edge port target as a gRPC address, pairing port address), or an error message."""
    try:
        address = parse_host_port(args.controlplane)
    except ConfigError as exc:
        return f"--controlplane: {exc}"
    pairing_port = args.pairing_port if args.pairing_port is not None else address.port + 1
    if not 0 < pairing_port <= 65535 or address.port == 0:
        return "--controlplane/--pairing-port: ports must be 1 to 65535"
    return str(address), HostPort(address.host, pairing_port)


async def _pair_until_done(
    args: argparse.Namespace, target: HostPort, data_dir: Path
) -> EdgeCredentials | int:
    """Pair (retrying while the control plane is unreachable); an exit status on refusal."""
    if args.pairing_token is None:
        print(
            "voxedge-edge: not paired yet: the first start needs --pairing-token (the join "
            "token the admin API issued)",
            file=sys.stderr,
        )
        return 2
    secret, pin = split_join_token(args.pairing_token)
    ca_file_pem = None
    if args.controlplane_ca is not None:
        try:
            ca_file_pem = args.controlplane_ca.read_bytes()
        except OSError as exc:
            print(f"voxedge-edge: --controlplane-ca: {exc.strerror or exc}", file=sys.stderr)
            return 2
    backoff = Backoff(0.5, PAIR_RETRY_CAP)
    while True:
        try:
            ca_pem = await asyncio.to_thread(trusted_ca, target.host, target.port, pin, ca_file_pem)
            credentials, _ = await pair(str(target), ca_pem, secret, data_dir)
            return credentials
        except (PairingRefused, TrustError) as exc:
            print(f"voxedge-edge: pairing refused: {exc}", file=sys.stderr)
            return 2
        except (grpc.aio.AioRpcError, OSError) as error:
            delay = backoff.next()
            reason = (
                f"{error.code().name}: {error.details()}"
                if isinstance(error, grpc.aio.AioRpcError)
                else str(error)
            )
            log.warning("pairing at %s failed (%s); again in %.1f s", target, reason, delay)
            await asyncio.sleep(delay)


async def _until_stopped(work: Awaitable[T], stop: asyncio.Event) -> T | None:
    """``work``'s result, or None when ``stop`` is set first (``work`` is then cancelled)."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None


async def run_paired(args: argparse.Namespace) -> int:
    local = _paired_local(args)
    targets = _targets(args)
    for problem in (local, targets):
        if isinstance(problem, str):
            print(f"voxedge-edge: {problem}", file=sys.stderr)
            return 2
    assert isinstance(local, EdgeConfig) and isinstance(targets, tuple)
    target, pairing_target = targets
    data_dir = local.edge.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(
        signal.SIGHUP, lambda: log.info("SIGHUP ignored: the control plane feeds the config")
    )

    credentials = load_credentials(data_dir)
    if credentials is None:
        log.info("pairing with the control plane at %s", pairing_target)
        paired = await _until_stopped(_pair_until_done(args, pairing_target, data_dir), stop)
        if paired is None:
            return 0
        if isinstance(paired, int):
            return paired
        credentials = paired
    elif args.pairing_token is not None:
        log.info("already paired (credentials in %s): --pairing-token ignored", data_dir)

    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    path = data_dir / "cache.sqlite"
    try:
        outbox = Outbox(path)
    except (OutboxError, sqlite3.Error) as exc:
        print(f"voxedge-edge: {path}: outbox unusable: {exc}", file=sys.stderr)
        return 2
    try:
        cache = ConfigCache(path)
    except ConfigCacheError as exc:
        outbox.close()
        print(f"voxedge-edge: {exc}", file=sys.stderr)
        return 2
    try:
        cached = await asyncio.to_thread(cache.load)
    except ConfigCacheError as exc:
        log.error("cached config not used: %s", exc)
        cached = None
    try:
        uplink = Uplink(target, credentials, local, cache, outbox, cached)
    except FeedError as exc:
        log.error("cached config version not used: %s", exc)
        uplink = Uplink(target, credentials, local, cache, outbox, None)
    if cached is not None and uplink.config is not None:
        log.info("serving cached config version %d until the control plane answers", cached.version)
    uplink.start()
    service: SipService | None = None
    try:
        if uplink.config is None:
            log.info("waiting for the first configuration from %s", target)
        config = await _until_stopped(uplink.wait_configured(), stop)
        if config is None:
            return 0
        service = SipService(config, secret=_nonce_secret(data_dir), outbox=outbox)
        await service.start()
        uplink.attach(service)
        print(_banner(service.config, service, "the control plane"), flush=True)
        await stop.wait()
    finally:
        await uplink.close()
        if service is not None:
            try:
                await asyncio.wait_for(service.stop(), STOP_TIMEOUT)
            except TimeoutError:
                log.error("SIP service did not stop within %.0f s", STOP_TIMEOUT)
        outbox.close()
        cache.close()
        log.info("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="voxedge-edge", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config",
        type=Path,
        help="edge TOML file (standalone; with --controlplane: the local settings only)",
    )
    parser.add_argument("--controlplane", metavar="HOST:PORT", help="control plane gRPC (mTLS)")
    parser.add_argument("--data-dir", type=Path, help="credentials and cache.sqlite (paired)")
    parser.add_argument(
        "--pairing-token",
        help="single-use token for the first start (or $VOXEDGE_PAIRING_TOKEN, kept out of ps)",
    )
    parser.add_argument(
        "--controlplane-ca",
        type=Path,
        help="the control plane's CA PEM (first start; not needed with a join token's CA pin)",
    )
    parser.add_argument(
        "--pairing-port", type=int, help="the control plane's pairing port (default PORT+1)"
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    args = parser.parse_args(argv)
    if args.controlplane is None:
        if args.config is None:
            parser.error("give --config FILE.toml, or --controlplane HOST:PORT --data-dir DIR")
        paired_only = ("data_dir", "pairing_token", "controlplane_ca", "pairing_port")
        if any(getattr(args, name) is not None for name in paired_only):
            parser.error(
                "--data-dir, --pairing-token, --controlplane-ca and --pairing-port "
                "need --controlplane"
            )
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.controlplane is not None:
        if args.pairing_token is None:
            args.pairing_token = os.environ.get("VOXEDGE_PAIRING_TOKEN") or None
        return uvloop.run(run_paired(args))
    return uvloop.run(run(args.config))


if __name__ == "__main__":
    sys.exit(main())

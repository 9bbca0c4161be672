"""``voxedge-controlplane``: create a control plane (``init``) and run it (``serve``).

``init --data-dir DIR --org NAME --admin USER`` creates the store (SQLite in DIR, or
``--database URL``), the CA (DIR/ca), the organisation with its SIP domain and the first admin
(password from ``--admin-password`` or generated and printed once). ``serve --data-dir DIR``
runs the gRPC edge service (mutual TLS; pairing on the next port up, server TLS only) and the
HTTPS admin API, both with a server certificate the CA issues at each start. SIGTERM/SIGINT
stop it. Nothing here resolves a host name: listen addresses are IP literals or localhost.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import secrets
import signal
import socket
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import uvicorn

from controlplane.admins import create_admin
from controlplane.api import build_app
from controlplane.ca import CERT_FILE, CertificateAuthority, ServerCredentials
from controlplane.edge_service import serve_edges
from controlplane.models import utcnow
from controlplane.store import ConflictError, Store, sqlite_url

log = logging.getLogger("voxedge.controlplane")

DEFAULT_GRPC: Final = "127.0.0.1:50051"
DEFAULT_HTTPS: Final = "127.0.0.1:8443"
DEFAULT_DOMAIN: Final = "voxedge.test"
STORE_FILE: Final = "controlplane.sqlite"
CA_DIR: Final = "ca"
READY_TIMEOUT: Final = 30.0


class UsageError(Exception):
    """A refused command line; the message names the option."""


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(option: str, text: str) -> Address:
    """``127.0.0.1:8443``, ``[::1]:8443`` or ``localhost:8443``; never a name to resolve."""
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host:
        raise UsageError(f'{option}: expected "host:port", got "{text}"')
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise UsageError(
                f'{option}: "{host}" must be an IP address or localhost (names are not resolved)'
            ) from None
    if not (port.isascii() and port.isdigit() and int(port) <= 65535):
        raise UsageError(f'{option}: port must be a number from 0 to 65535, got "{port}"')
    return Address(host, int(port))


def database_url(data_dir: Path, database: str | None) -> str:
    return database or sqlite_url(data_dir / STORE_FILE)


def ca_certificate_path(data_dir: Path) -> Path:
    """The CA certificate an edge is given to trust when it pairs (``--controlplane-ca``)."""
    return data_dir / CA_DIR / CERT_FILE


# -- init --------------------------------------------------------------------------------------


async def init(args: argparse.Namespace) -> int:
    data_dir: Path = args.data_dir
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    password = args.admin_password or secrets.token_urlsafe(12)
    store = Store(database_url(data_dir, args.database))
    try:
        await store.migrate()
        CertificateAuthority.load_or_create(data_dir / CA_DIR, args.org, utcnow())
        try:
            org = await store.create_organisation(args.org, args.domain)
        except ConflictError as error:
            raise UsageError(
                f"--org/--domain: an organisation named {args.org!r} or with SIP domain "
                f"{args.domain!r} already exists ({error})"
            ) from None
        user_id = await create_admin(store, org.id, args.admin, password)
    finally:
        await store.close()
    print(f"organisation {args.org!r} ({org.id}), SIP domain {args.domain}")
    print(f"admin {args.admin!r} ({user_id})")
    if not args.admin_password:
        print(f"admin password (shown once): {password}")
    print(f"edges trust the CA in {ca_certificate_path(data_dir)}")
    return 0


# -- serve -------------------------------------------------------------------------------------


def _tls_files(data_dir: Path, credentials: ServerCredentials) -> tuple[Path, Path]:
    """The HTTPS certificate and key as files (uvicorn reads paths); the key is 0600."""
    tls_dir = data_dir / "tls"
    tls_dir.mkdir(mode=0o700, exist_ok=True)
    cert, key = tls_dir / "server-cert.pem", tls_dir / "server-key.pem"
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(credentials.key_pem)
    cert.write_bytes(credentials.certificate_pem)
    return cert, key


def _tls12_or_later(
    _config: uvicorn.Config, default: Callable[[], ssl.SSLContext]
) -> ssl.SSLContext:
    context = default()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _listening_socket(address: Address) -> socket.socket:
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address.host, address.port))
    sock.listen(512)
    sock.setblocking(False)
    return sock


async def serve(args: argparse.Namespace) -> int:
    data_dir: Path = args.data_dir
    grpc_address = parse_address("--grpc", args.grpc)
    https_address = parse_address("--https", args.https)
    try:
        ca = CertificateAuthority.load(data_dir / CA_DIR)
    except (OSError, ValueError) as error:
        raise UsageError(f"--data-dir: no control plane CA ({error}); run init first") from None
    hosts = sorted({grpc_address.host, https_address.host, "127.0.0.1", "localhost"})
    credentials = ca.server_certificate(hosts, utcnow())
    cert_file, key_file = _tls_files(data_dir, credentials)
    store = Store(database_url(data_dir, args.database))
    await store.migrate()  # an older database upgrades in place
    if not store.is_sqlite:
        await store.start_change_listener()
    pairing_port = args.pairing_port
    if pairing_port is None:
        pairing_port = grpc_address.port + 1 if grpc_address.port else 0
    edges = await serve_edges(
        store,
        ca,
        grpc_address.host,
        grpc_address.port,
        pairing_port=pairing_port,
        server_credentials=credentials,
    )
    https_socket = _listening_socket(https_address)
    config = uvicorn.Config(
        build_app(store, ca_pin=ca.pin),
        ssl_certfile=str(cert_file),
        ssl_keyfile=str(key_file),
        ssl_context_factory=_tls12_or_later,
        log_level=args.log_level.lower(),
        access_log=False,
        log_config=None,  # uvicorn's lines go through this process's logging format
        server_header=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    https_port = https_socket.getsockname()[1]
    # uvicorn captures SIGTERM/SIGINT while it serves and raises them again once it has
    # stopped: by then this process only has to shut the rest down, so ignore that echo.
    for handled in (signal.SIGTERM, signal.SIGINT):
        signal.signal(handled, lambda *_: None)
    task = asyncio.create_task(server.serve(sockets=[https_socket]))
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            while not server.started and not task.done():
                await asyncio.sleep(0.02)
        if server.started:
            host = https_address.host if ":" not in https_address.host else "127.0.0.1"
            print(
                f"VoxEdge control plane ready: grpc={grpc_address.host}:{edges.port} "
                f"pairing={grpc_address.host}:{edges.pairing_port} "
                f"https=https://{host}:{https_port}/api/v1 (OpenAPI at /docs)",
                flush=True,
            )
        await task
    finally:
        await edges.stop(grace=1.0)
        await store.close()
        https_socket.close()
    log.info("stopped")
    return 0


# -- command line ------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="voxedge-controlplane", description=__doc__.splitlines()[0])
    root.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    commands = root.add_subparsers(dest="command", required=True)
    init_cmd = commands.add_parser("init", help="create the store, the CA, an org and its admin")
    init_cmd.add_argument("--data-dir", required=True, type=Path)
    init_cmd.add_argument("--org", required=True, help="organisation name")
    init_cmd.add_argument("--admin", required=True, help="the first admin's username")
    init_cmd.add_argument("--admin-password", help="default: generated and printed once")
    init_cmd.add_argument("--domain", default=DEFAULT_DOMAIN, help="the org's SIP domain")
    init_cmd.add_argument("--database", help="postgresql+asyncpg://… (default: SQLite in DIR)")
    serve_cmd = commands.add_parser("serve", help="run the gRPC edge service and HTTPS API")
    serve_cmd.add_argument("--data-dir", required=True, type=Path)
    serve_cmd.add_argument("--database", help="postgresql+asyncpg://… (default: SQLite in DIR)")
    serve_cmd.add_argument("--grpc", default=DEFAULT_GRPC, help="edge feed, mutual TLS")
    serve_cmd.add_argument("--pairing-port", type=int, help="Pair, server TLS (default: +1)")
    serve_cmd.add_argument("--https", default=DEFAULT_HTTPS, help="admin API")
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per migration step
    command = init if args.command == "init" else serve
    try:
        return asyncio.run(command(args))
    except UsageError as error:
        print(f"voxedge-controlplane: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

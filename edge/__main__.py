"""``voxedge-edge --config FILE.toml``: run an edge from a local configuration file.

SIGHUP reloads the file atomically (a bad file is refused with a message naming the line or
field, and the running config stays); SIGTERM/SIGINT stop the edge.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
from pathlib import Path

import uvloop

from edge.config import ConfigError, EdgeConfig, load_config
from edge.outbox import Outbox
from edge.sipserver import SipService

log = logging.getLogger("voxedge.edge")


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


def _banner(config: EdgeConfig, service: SipService) -> str:
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
            f"outbound proxy {host}:{port}, with the password from the config file"
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="voxedge-edge", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path, help="edge TOML file")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return uvloop.run(run(args.config))


if __name__ == "__main__":
    sys.exit(main())

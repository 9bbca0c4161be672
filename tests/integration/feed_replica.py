"""A second control-plane replica for tests/integration/test_feed_replicas.py.

``python -m tests.integration.feed_replica DATABASE_URL CA_DIR`` serves the EdgeService on
127.0.0.1 (ephemeral ports) over the given PostgreSQL store with the CA saved in CA_DIR,
prints one JSON line ``{"port": P, "pairing_port": Q, "pid": N}`` once serving (and listening
for other replicas' changes), and runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import signal
import sys
from pathlib import Path

from controlplane.ca import CertificateAuthority
from controlplane.edge_service import serve_edges
from controlplane.store import Store


async def main(database_url: str, ca_dir: Path) -> None:
    ca = CertificateAuthority.load(ca_dir)
    store = Store(database_url)
    now = datetime.datetime.now(datetime.UTC)
    server = await serve_edges(
        store,
        ca,
        "127.0.0.1",
        0,
        pairing_port=0,
        server_credentials=ca.server_certificate(["127.0.0.1"], now),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    ready = {"port": server.port, "pairing_port": server.pairing_port, "pid": os.getpid()}
    print(json.dumps(ready), flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop(None)
        await store.close()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} DATABASE_URL CA_DIR")
    asyncio.run(main(sys.argv[1], Path(sys.argv[2])))

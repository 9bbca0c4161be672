"""protos/: the committed generated modules are what `make protos` writes, and they load."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from protos.voxedge.v1 import edge_pb2

ROOT = Path(__file__).resolve().parents[2]
PROTO = Path("protos/voxedge/v1/edge.proto")
GENERATED = ("edge_pb2.py", "edge_pb2.pyi", "edge_pb2_grpc.py")


def test_generated_modules_match_the_proto(tmp_path: Path) -> None:
    (tmp_path / PROTO.parent).mkdir(parents=True)
    shutil.copy(ROOT / PROTO, tmp_path / PROTO)
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", ".", "--python_out=.",
         "--pyi_out=.", "--grpc_python_out=.", str(PROTO)],
        cwd=tmp_path, check=True, timeout=60,
    )  # fmt: skip
    for name in GENERATED:
        fresh = (tmp_path / PROTO.parent / name).read_bytes()
        committed = (ROOT / PROTO.parent / name).read_bytes()
        assert fresh == committed, f"{name} drifted from {PROTO}: run `make protos`"


def test_a_snapshot_round_trips_through_the_wire_format() -> None:
    phone = edge_pb2.Phone(
        id="p1",
        name="alice",
        type=edge_pb2.PHONE_TYPE_GENERIC_SIP,
        extension="1001",
        digest=[edge_pb2.DigestSecret(algorithm="SHA-256", ha1="ab" * 32)],
    )
    update = edge_pb2.ConfigUpdate(
        version=7,
        snapshot=edge_pb2.ConfigSnapshot(
            edge=edge_pb2.EdgeSettings(name="edge-1", domain="voxedge.test"), phones=[phone]
        ),
    )
    back = edge_pb2.ConfigUpdate.FromString(update.SerializeToString())
    assert back == update and back.WhichOneof("change") == "snapshot"
    assert back.snapshot.phones[0].digest[0].algorithm == "SHA-256"

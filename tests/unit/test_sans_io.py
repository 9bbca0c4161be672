"""DESIGN.md principle 1: the protocol cores under ``sip/`` and ``media/`` do no I/O and read
no clock; and the arrows: ``sip`` and ``media`` know nothing of each other or of ``edge``.

``sip/transport/`` and ``media/relay.py`` are the asyncio glue (DESIGN.md, "The house"), the
only places under ``sip/`` and ``media/`` allowed to import these modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SIP = Path(__file__).resolve().parents[2] / "sip"
MEDIA = SIP.parent / "media"
GLUE = SIP / "transport"
# I/O and wall-clock modules: time comes in as ``now``, bytes go out as events.
FORBIDDEN = frozenset(("asyncio", "socket", "selectors", "time", "uvloop"))


# media/relay.py is the media side's asyncio glue (sockets around media/latch.py and friends).
MEDIA_GLUE = MEDIA / "relay.py"


def _core_sources() -> list[Path]:
    sip_core = [p for p in SIP.rglob("*.py") if GLUE not in p.parents]
    return sorted(sip_core + [p for p in MEDIA.rglob("*.py") if p != MEDIA_GLUE])


def _imported_modules(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "__import__"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value.split(".")[0])
    return found


def test_the_sans_io_core_has_sources_to_check() -> None:
    names = {p.name for p in _core_sources()}
    assert {"message.py", "parser.py", "transaction.py"} <= names


@pytest.mark.parametrize("path", _core_sources(), ids=lambda p: str(p.relative_to(SIP.parent)))
def test_nothing_under_sip_imports_asyncio_or_socket(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    assert not (_imported_modules(tree) & FORBIDDEN)


@pytest.mark.parametrize("path", _core_sources(), ids=lambda p: str(p.relative_to(SIP.parent)))
def test_the_sans_io_core_does_not_import_the_transport_glue(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            assert not node.module.startswith("sip.transport"), path
        elif isinstance(node, ast.Import):
            assert not any(a.name.startswith("sip.transport") for a in node.names), path


def test_the_import_scan_sees_every_form() -> None:
    source = "import asyncio.events\nfrom socket import socket\n__import__('time')\n"
    assert _imported_modules(ast.parse(source)) == {"asyncio", "socket", "time"}


@pytest.mark.parametrize(
    "path",
    sorted([*SIP.rglob("*.py"), *MEDIA.rglob("*.py")]),
    ids=lambda p: str(p.relative_to(SIP.parent)),
)
def test_sip_and_media_do_not_import_each_other_or_the_edge(path: Path) -> None:
    other = "sip" if MEDIA in path.parents else "media"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    assert not (_imported_modules(tree) & {other, "edge", "controlplane", "provisioning"})


# DESIGN.md "The house": the arrows between the packages. The edge and the control plane meet
# only in protos/ (over gRPC); protos/ and provisioning/ depend on nothing of ours.
ROOT = SIP.parent
ARROWS = {
    "edge": {"controlplane", "provisioning"},
    "controlplane": {"edge", "sip", "media"},
    "provisioning": {"edge", "sip", "media", "controlplane"},
    "protos": {"edge", "sip", "media", "controlplane", "provisioning"},
}


def _package_sources() -> list[Path]:
    return sorted(p for package in ARROWS for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", _package_sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_arrows(path: Path) -> None:
    package = path.relative_to(ROOT).parts[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    assert not (_imported_modules(tree) & ARROWS[package]), path

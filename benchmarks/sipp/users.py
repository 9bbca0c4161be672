"""The benchmark's phone users, written for both sides: a SIPp injection file and edge TOML.

User *i* (0-based) has extension ``first + i`` and password ``pw-<extension>``; the edge reads
them as ``[[phones]]`` blocks of type ``generic_sip``, SIPp as ``user;password`` rows of a
``SEQUENTIAL`` injection file (``-inf``: field0 = extension, field1 = password). Kamailio's
``benchmarks/kamailio/registrar.cfg`` derives the same passwords from the extension.

    python benchmarks/sipp/users.py --count 1000 --csv users.csv --toml phones.toml
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

FIRST_EXTENSION = 2000


@dataclass(frozen=True, slots=True)
class PhoneUser:
    """One generic SIP phone: its extension is also its digest username."""

    extension: str
    password: str

    @property
    def name(self) -> str:
        return f"u{self.extension}"


def phone_users(count: int, first: int = FIRST_EXTENSION) -> list[PhoneUser]:
    """``count`` users with extensions ``first`` .. ``first + count - 1``."""
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    return [PhoneUser(str(ext), f"pw-{ext}") for ext in range(first, first + count)]


def sipp_csv_lines(users: list[PhoneUser]) -> Iterator[str]:
    """SIPp injection file lines: ``SEQUENTIAL`` then ``extension;password`` per user."""
    yield "SEQUENTIAL"
    for user in users:
        yield f"{user.extension};{user.password}"


def toml_phone_blocks(users: list[PhoneUser]) -> Iterator[str]:
    """One ``[[phones]]`` block per user, in the edge's configuration format.

    The phones are MD5-only: SIPp 3.6 computes MD5 digests alone and aborts the whole run on
    a 401 that offers SHA-256 (first or alone). Kamailio challenges with MD5 as well, so the
    two registrars do the same hashing work.
    """
    for user in users:
        yield (
            "[[phones]]\n"
            f'name = "{user.name}"\n'
            'type = "generic_sip"\n'
            f'extension = "{user.extension}"\n'
            f'password = "{user.password}"\n'
            'digest_algorithms = ["MD5"]\n'
        )


def edge_toml(
    users: list[PhoneUser],
    *,
    port: int,
    data_dir: Path,
    domain: str = "voxedge.test",
    name: str = "bench",
) -> str:
    """A whole edge configuration: phone listeners on 127.0.0.1:``port`` (UDP and TCP).

    Every simulated phone shares SIPp's one source address, so the failed-auth throttle is
    set high and short: a wrong-password check must not lock the load out that follows it.
    """
    head = (
        "[edge]\n"
        f'name = "{name}"\n'
        f'domain = "{domain}"\n'
        'advertise = "127.0.0.1"\n'
        f'data_dir = "{data_dir}"\n'
        'auth_failures = "100000/1s"\n'
        "auth_cooldown = 1\n"
        "\n"
        "[listen.phones]\n"
        f'udp = "127.0.0.1:{port}"\n'
        f'tcp = "127.0.0.1:{port}"\n'
    )
    return "\n".join([head, *toml_phone_blocks(users)])


def write_sipp_csv(path: Path, users: list[PhoneUser]) -> Path:
    """Write the SIPp injection file for ``users`` to ``path``."""
    path.write_text("\n".join(sipp_csv_lines(users)) + "\n", encoding="ascii")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="number of users (1000)")
    parser.add_argument("--first", type=int, default=FIRST_EXTENSION, help="first extension")
    parser.add_argument("--csv", type=Path, help="write the SIPp injection file here")
    parser.add_argument("--toml", type=Path, help="write the [[phones]] blocks here")
    args = parser.parse_args()
    users = phone_users(args.count, args.first)
    if args.csv:
        write_sipp_csv(args.csv, users)
    if args.toml:
        args.toml.write_text("\n".join(toml_phone_blocks(users)), encoding="ascii")
    if not (args.csv or args.toml):
        print("\n".join(sipp_csv_lines(users)))


if __name__ == "__main__":
    main()

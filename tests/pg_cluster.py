"""A private PostgreSQL cluster for the tests: initdb into a temporary directory, pg_ctl on
a loopback port, torn down (and deleted) afterwards.

Uses Debian's ``postgresql`` package (``make postgres`` installs it). PostgreSQL refuses to
run as root, so as root the cluster runs as the package's ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def pg_bin(name: str) -> str:
    """A PostgreSQL server program (Debian keeps them out of PATH)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    on_path = shutil.which(name)
    if on_path:
        return on_path
    raise RuntimeError(f"PostgreSQL's {name} is not installed: run `make postgres`")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def fresh_database(self) -> str:
        """A new, empty database's URL."""
        import psycopg
        name = f"t_{secrets.token_hex(4)}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)


@contextmanager
def private_cluster() -> Iterator[Cluster]:
    """Start a throwaway cluster; stop it and delete its files whatever happens."""
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    base = Path(tempfile.mkdtemp(prefix="aftershock-pg-"))
    data = base / "data"
    if as_root:
        shutil.chown(base, "postgres")
    port = _free_port()
    subprocess.run([*prefix, pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U",
                    "postgres", "--no-sync"], check=True, capture_output=True, text=True)
    started = False
    try:
        subprocess.run([*prefix, pg_bin("pg_ctl"), "-D", str(data), "-w", "-t", "60",
                        "-l", str(base / "log"), "-o",
                        f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off",
                        "start"], check=True, capture_output=True, text=True)
        started = True
        yield Cluster(port)
    finally:
        if started:
            subprocess.run([*prefix, pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w",
                            "stop"], check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)

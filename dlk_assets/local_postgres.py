"""A PostgreSQL cluster on 127.0.0.1 for the Dagster instance (`infra/dagster-postgres.yaml`).

It uses the server binaries of Debian's `postgresql` package (`initdb`, `pg_ctl`): enough to run the
project on a Postgres-backed instance on one machine, and what the tests start and stop. Run as root
(a container), the server runs as the `postgres` system user, because `initdb` refuses root.

    python -m dlk_assets.local_postgres start --dir /var/tmp/dlk-pg --port 5433   # prints the env to export
    python -m dlk_assets.local_postgres stop --dir /var/tmp/dlk-pg
"""

from __future__ import annotations

import argparse
import glob
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SERVER_USER = "postgres"  # who runs the server when we are root
DATABASE = "dagster"
ROLE = "dagster"


class LocalPostgresError(RuntimeError):
    """The cluster could not be found, created, started or stopped; the message says which step."""


def server_bin_dir() -> Path:
    """The folder with `initdb` and `pg_ctl`: on PATH, else the newest Debian install."""
    on_path = shutil.which("initdb")
    if on_path and (Path(on_path).resolve().parent / "createdb").exists():
        return Path(on_path).resolve().parent  # PATH may hold a link to one binary; its folder has them all
    installed = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not installed:
        raise LocalPostgresError("no PostgreSQL server binaries (initdb, pg_ctl): install Debian's `postgresql` package")
    return Path(installed[-1]).parent


@dataclass(frozen=True)
class LocalPostgres:
    """A running cluster: where its data is and how the Dagster instance reaches it."""

    data_dir: Path
    port: int
    password: str

    def env(self) -> dict[str, str]:
        """The variables `infra/dagster-postgres.yaml` reads."""
        return {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": str(self.port), "DAGSTER_PG_USER": ROLE,
                "DAGSTER_PG_PASSWORD": self.password, "DAGSTER_PG_DB": DATABASE}


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", SERVER_USER, "--", *command] if os.geteuid() == 0 else command


def _run(step: str, command: list[str], env: dict[str, str] | None = None, tolerate: str = "") -> None:
    result = subprocess.run(_as_server_user(command), capture_output=True, text=True, env={**os.environ, **(env or {})},
                            check=False)
    if result.returncode != 0 and not (tolerate and tolerate in result.stderr):
        output = " ".join((result.stderr or result.stdout).split())  # one line, whatever the tool printed
        raise LocalPostgresError(f"{step} failed ({result.returncode}): {output[-800:]}")


def start_local_postgres(data_dir: str | Path, port: int, password: str | None = None) -> LocalPostgres:
    """Create (first time) and start a cluster in `data_dir` listening on 127.0.0.1:`port` only, with a
    password-protected `dagster` role owning a `dagster` database."""
    data_dir = Path(data_dir).resolve()
    bin_dir = server_bin_dir()
    password_file = data_dir.parent / f".{data_dir.name}.password"
    fresh = not (data_dir / "PG_VERSION").exists()
    if fresh:
        password = password or secrets.token_urlsafe(24)
        data_dir.mkdir(parents=True, exist_ok=True)
        password_file.write_text(password)
        password_file.chmod(0o600)
        if os.geteuid() == 0:
            shutil.chown(data_dir, SERVER_USER, SERVER_USER)
            shutil.chown(password_file, SERVER_USER, SERVER_USER)
        _run("initdb", [str(bin_dir / "initdb"), "-D", str(data_dir), "-U", ROLE, "--pwfile", str(password_file),
                        "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8"])
    else:
        password = password or password_file.read_text().strip()
    # Loopback TCP only; the socket lives in the data folder, never in a shared /var/run.
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {data_dir}"
    _run("pg_ctl start", [str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-o", options, "-l", str(data_dir / "server.log"),
                          "-w", "-t", "60", "start"])
    # Every start makes sure the database exists: a first start stopped before this step is finished by the next.
    _run("createdb", [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", ROLE, DATABASE],
         env={"PGPASSWORD": password}, tolerate="already exists")
    return LocalPostgres(data_dir, port, password)


def stop_local_postgres(data_dir: str | Path) -> None:
    """Stop the cluster in `data_dir` (fast shutdown: open sessions are closed, data is kept)."""
    _run("pg_ctl stop", [str(server_bin_dir() / "pg_ctl"), "-D", str(Path(data_dir).resolve()), "-m", "fast", "-w", "stop"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dlk_assets.local_postgres", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("--dir", required=True, help="the cluster's data folder (created on first start)")
    parser.add_argument("--port", type=int, default=5433)
    args = parser.parse_args(argv)
    try:
        if args.action == "stop":
            stop_local_postgres(args.dir)
            return 0
        cluster = start_local_postgres(args.dir, args.port)
    except LocalPostgresError as exc:
        print(f"dlk: {exc}", file=sys.stderr)
        return 1
    for name, value in cluster.env().items():
        print(f"export {name}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

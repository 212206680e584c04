"""Real local servers for tests, on 127.0.0.1 only: a free port, and `moto_server` (S3) started and stopped per use."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def moto_server():
    """Yield the endpoint URL of a fresh moto server on loopback; stop it afterwards."""
    executable = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    port = free_port()
    server = subprocess.Popen([executable, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start on 127.0.0.1:{port}") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@contextmanager
def throwaway_postgres():
    """Yield a fresh PostgreSQL cluster on 127.0.0.1 (Debian's server binaries); removed afterwards.
    The calling test is skipped where the binaries are missing (CI installs them, see .ci/run)."""
    import tempfile

    import pytest

    from dlk_assets.local_postgres import (
        LocalPostgresError,
        server_bin_dir,
        start_local_postgres,
        stop_local_postgres,
    )

    try:
        server_bin_dir()
    except LocalPostgresError as exc:
        pytest.skip(str(exc))
    # Under /tmp (not pytest's private folder): run as root, the server runs as `postgres` and must reach it.
    data_dir = Path(tempfile.mkdtemp(prefix="dlk-pg-"))
    try:
        yield start_local_postgres(data_dir, free_port())
    finally:
        stop_local_postgres(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)
        (data_dir.parent / f".{data_dir.name}.password").unlink(missing_ok=True)

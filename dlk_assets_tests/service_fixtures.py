"""A real `dlk serve` on 127.0.0.1 over a lake where every source is materialized (shared by the service tests)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pytest
import requests

from dlk_assets_tests.local_servers import free_port

# Keys of three tenants; `local` owns the lake's sources (DLK_LAKE_TENANT's default).
API_KEYS = {"local": "key-local-tenant-000000000000", "acme": "key-acme-tenant-0000000000000",
            "globex": "key-globex-tenant-000000000000"}


def start_service(home: Path, keys_file: Path, *extra: str, env: dict[str, str] | None = None):
    """`dlk serve` in a subprocess on a free loopback port; returns (process, base url) once it answers."""
    port = free_port()
    log = open(home / f"serve-{port}.log", "wb")  # noqa: SIM115 (closed with the process)
    process = subprocess.Popen(
        [sys.executable, "-m", "dlk_assets.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--api-keys", str(keys_file), "--log-level", "warning", *extra],
        env={**os.environ, "DAGSTER_HOME": str(home), **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dlk serve exited with {process.returncode}: {(home / f'serve-{port}.log').read_text()[-2000:]}")
        try:
            if requests.get(f"{base}/api/v1/health", timeout=1).ok:
                return process, base
        except requests.ConnectionError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("dlk serve did not answer within 180 s")


def stop_service(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def write_keys(folder: Path) -> Path:
    path = folder / "api-keys.txt"
    path.write_text("# key tenant_id\n" + "".join(f"{key} {tenant}\n" for tenant, key in API_KEYS.items()))
    return path


@pytest.fixture(scope="session")
def demo_service(tmp_path_factory):
    """Every source materialized into a fresh instance, then `dlk serve` started on it."""
    from dlk_assets.defs.sources import SOURCES
    from dlk_assets.operations import Operator, materialize_sources
    from dlk_assets_tests.conftest import definitions, make_home, sample_resources

    root = tmp_path_factory.mktemp("service")
    home = make_home(root / "dagster_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(home))
        for name in ("DLK_MODELS_FILE", "DLK_IMAGE_ENCODER", "DLK_TEXT_ENCODER", "DLK_LAKE_TENANT"):
            patch.delenv(name, raising=False)
        resources = sample_resources()
        with dg.DagsterInstance.get() as instance:
            materialize_sources(Operator(instance, definitions(resources), resources, log=lambda _: None), list(SOURCES.values()))
        process, base = start_service(home, write_keys(root))
        try:
            yield SimpleNamespace(base=base, home=home, resources=resources, keys=API_KEYS)
        finally:
            stop_service(process)

"""Profiles are chosen by environment alone: each names what it lacks, and hands secrets over as `dg.EnvVar`."""

import dataclasses
import os
import subprocess
import sys
import uuid

import dagster as dg
import pytest

from dlk_assets.lake.deeplake_pg import DeepLakePg
from dlk_assets.lake.file_index import PgFileIndex
from dlk_assets.lake.files import FileNotFoundInStore
from dlk_assets.lake.http_files import HttpFileStore
from dlk_assets.local_postgres import DATABASE, ROLE
from dlk_assets.profile import (
    current_profile,
    load_definitions,
    profile_resources,
    resolved_resources,
)

from .files_api_server import FilesApiServer
from .local_servers import throwaway_postgres


@pytest.fixture
def deeplake_pg_env(dagster_home, monkeypatch):
    """Point the deeplake-pg profile at a throwaway PostgreSQL on 127.0.0.1 (its bookkeeping tables,
    the file records among them, are ordinary tables; no `deeplake` access method is needed for them)."""
    with throwaway_postgres() as cluster:
        def configure(server: FilesApiServer) -> None:
            for name, value in {"DLK_PROFILE": "deeplake-pg", "SHARED_DLPG_HOST": "127.0.0.1", "SHARED_DLPG_PORT": str(cluster.port),
                                "SHARED_DLPG_USER": ROLE, "SHARED_DLPG_DATABASE": DATABASE, "SHARED_DLPG_SSLMODE": "disable",
                                "SHARED_DLPG_PASSWORD": cluster.password, "ACTIVELOOP_WORKSPACE_ID": server.workspace,
                                "BASE_URL": server.base_url, "TEST_PG_MANAGED_TOKEN": server.token,
                                "ACTIVELOOP_ORG_ID": server.org_id}.items():
                monkeypatch.setenv(name, value)
        yield configure


def test_each_profile_names_the_settings_it_lacks(dagster_home, monkeypatch):
    monkeypatch.setenv("DLK_PROFILE", "object-storage")
    monkeypatch.delenv("DLK_LAKE_URL", raising=False)
    monkeypatch.setenv("DLK_FILES_URL", "s3://bucket/files")
    with pytest.raises(ValueError, match="needs DLK_LAKE_URL"):
        current_profile()
    monkeypatch.setenv("DLK_LAKE_URL", "s3://bucket/lake")
    monkeypatch.setenv("DLK_FILES_URL", "/var/files")
    with pytest.raises(ValueError, match="needs an s3:// URL"):
        current_profile()
    monkeypatch.setenv("DLK_PROFILE", "deeplake-pg")
    for name in ("SHARED_DLPG_HOST", "SHARED_DLPG_PASSWORD", "TEST_PG_MANAGED_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="SHARED_DLPG_HOST, SHARED_DLPG_PASSWORD, .*TEST_PG_MANAGED_TOKEN"):
        current_profile()
    monkeypatch.setenv("DLK_PROFILE", "cloud")
    with pytest.raises(ValueError, match="DLK_PROFILE='cloud' is not a known profile"):
        current_profile()


def test_deeplake_pg_profile_loads_every_asset_and_uploads_through_the_files_api(deeplake_pg_env, tmp_path):
    with FilesApiServer() as server:
        deeplake_pg_env(server)
        declared = profile_resources()
        assert isinstance(declared["lake"].password, dg.EnvVar) and isinstance(declared["files"].token, dg.EnvVar)
        defs = load_definitions()
        assert defs.resolve_assets_def(dg.AssetKey("coco_image_embeddings")) is not None
        resources = resolved_resources()
        lake = resources["lake"].lake()
        password = os.environ["SHARED_DLPG_PASSWORD"]
        assert isinstance(lake, DeepLakePg) and password not in lake.table_url("coco_files") + repr(lake)
        store = resources["files"].store()
        stored = store.put(b"\x89PNG fake bytes", "a.png", "image/png")
        assert store.get(stored.file_id) == b"\x89PNG fake bytes"
        assert server.uploads == 1
        # Another machine (its own local folder) shares the file records through the workspace: it reads
        # the file sha256-checked and uploads nothing for the same bytes.
        other = HttpFileStore(server.base_url, server.workspace, server.token, server.org_id, tmp_path / "other-machine",
                              index=PgFileIndex(lake))
        assert other.stat(stored.file_id) == stored and other.get(stored.file_id) == b"\x89PNG fake bytes"
        assert other.put(b"\x89PNG fake bytes", "again.png", "image/png").file_id == stored.file_id and server.uploads == 1
        assert lake.table_names() == []  # the records are bookkeeping, not a lake table
        alone = HttpFileStore(server.base_url, server.workspace, server.token, server.org_id, tmp_path / "alone")
        with pytest.raises(FileNotFoundInStore, match="its file index has no record"):
            alone.stat(stored.file_id)  # a folder index knows only what its own machine uploaded
        # Files a machine uploaded before its records moved to the workspace stay readable, and move too.
        earlier = alone.put(b"uploaded before the move", "old.txt", "text/plain")
        moved = HttpFileStore(server.base_url, server.workspace, server.token, server.org_id, tmp_path / "alone",
                              index=PgFileIndex(lake))
        assert moved.get(earlier.file_id) == b"uploaded before the move" and PgFileIndex(lake).by_id(earlier.file_id) == earlier
        # Two machines that uploaded the same bytes at once: the id recorded first is the one both get.
        raced = dataclasses.replace(stored, file_id=str(uuid.uuid4()))
        assert other._remember(raced) == stored


def test_dlk_reads_the_profile_from_dot_env_and_the_environment_wins(tmp_path):
    """`dlk` takes settings from ./.env as `dagster dev` does (a fresh process: .env changes os.environ)."""
    (tmp_path / ".env").write_text("DLK_PROFILE=object-storage\nDLK_LAKE_URL=s3://bucket/lake\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLK_")} | {"DAGSTER_HOME": str(tmp_path / "home")}
    dlk = [sys.executable, "-m", "dlk_assets.cli", "models"]
    from_file = subprocess.run(dlk, check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert from_file.returncode == 1
    assert from_file.stderr.strip() == ("dlk: DLK_PROFILE=object-storage needs DLK_FILES_URL "
                                        "(e.g. s3://bucket/lake, s3://bucket/files)")
    overridden = subprocess.run(dlk, check=False, cwd=tmp_path, env=env | {"DLK_PROFILE": "nowhere"}, capture_output=True, text=True, timeout=300)
    assert overridden.returncode == 1 and "DLK_PROFILE='nowhere' is not a known profile" in overridden.stderr

"""Stored rows survive bad sources, decompression bombs, duplicates, full disks and killed writes."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import time
import zlib

import dagster as dg
import numpy as np
import pytest

from dlk_assets.cli import main
from dlk_assets.defs.coco.assets import coco_files, coco_images
from dlk_assets.defs.coco.tables import COCO_FILES, COCO_IMAGES
from dlk_assets.defs.pipeline.ingest_safety import IngestConfig
from dlk_assets.lake.deeplake_local import LocalDeepLake
from dlk_assets.lake.disk_space import InsufficientSpaceError, folder_bytes
from dlk_assets.lake.doctor import check_lake
from dlk_assets.lake.local_files import LocalFileStore
from dlk_assets.lake.schema import Column, Kind, TableSchema
from dlk_assets.resources import CocoSourceResource
from dlk_assets.sources.coco_sample import sample_items, write_coco_parquet

from .conftest import invoke

SHARD, OTHER = "shard-00000", "shard-00001"
VECTORS = TableSchema("vectors", (Column("n", Kind.INT), Column("v", Kind.VECTOR, 64)))


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("coco_shards", [SHARD, OTHER])
        yield instance


def coco_source(items, path) -> CocoSourceResource:
    return CocoSourceResource(data_files=[str(write_coco_parquet(items, path))], shard_size=3)


def stored_files(resources) -> dict[str, list[str]]:
    table = resources["lake"].lake().table(COCO_FILES)
    return {p: [r["row_key"] for r in table.read_partition(p)] for p in sorted(table.partition_counts())}


def bomb_png(width: int = 40000, height: int = 40000) -> bytes:
    """A real PNG of `width` x `height` 1-bit pixels: a few hundred KB that decode to `width*height` pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = zlib.compress((b"\x00" + b"\x00" * (width // 8)) * height, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def test_a_re_run_whose_source_got_worse_fails_and_keeps_the_stored_rows(resources, instance, tmp_path):
    items = sample_items()[:3]
    invoke(coco_files, SHARD, {**resources, "coco_source": coco_source(items, tmp_path / "good.parquet")}, instance)
    invoke(coco_images, SHARD, resources, instance)
    before = stored_files(resources)
    worse = [{**item, "image": {"bytes": item["image"]["bytes"][:400], "path": None}} for item in items]
    bad_source = {**resources, "coco_source": coco_source(worse, tmp_path / "bad.parquet")}
    with pytest.raises(dg.Failure) as failure:
        invoke(coco_files, SHARD, bad_source, instance)
    message = failure.value.description
    assert "refusing to drop 3 stored row(s) of coco_files" in message and all(f"image_id {i['image_id']}" in message for i in items)
    assert stored_files(resources) == before and len(before[SHARD]) == 3
    assert len(resources["lake"].lake().table(COCO_IMAGES).read_partition(SHARD)) == 3
    # Said on purpose, the smaller partition is stored.
    result = invoke(coco_files, SHARD, bad_source, instance, config=IngestConfig(allow_shrink=True))
    assert result.metadata["skipped"] == 3 and stored_files(resources) == {}


def test_a_growing_shard_whose_stored_item_went_bad_refuses_although_it_grows(resources, instance, tmp_path):
    """The last shard fills up over time: two new items arrive while the stored one went bad. The partition
    would grow (1 -> 2 rows), so only a check by key sees that a stored row would go silently."""
    items = sample_items()[:3]  # one shard of 3 (shard_size=3), first holding only its first item
    invoke(coco_files, SHARD, {**resources, "coco_source": coco_source(items[:1], tmp_path / "first.parquet")}, instance)
    before = stored_files(resources)
    grown = [{**items[0], "image": {"bytes": items[0]["image"]["bytes"][:400], "path": None}}, *items[1:]]
    source = {**resources, "coco_source": coco_source(grown, tmp_path / "grown.parquet")}
    with pytest.raises(dg.Failure) as failure:
        invoke(coco_files, SHARD, source, instance)
    assert f"refusing to drop 1 stored row(s) of coco_files (coco:{items[0]['image_id']})" in failure.value.description
    assert stored_files(resources) == before == {SHARD: [f"coco:{items[0]['image_id']}"]}
    result = invoke(coco_files, SHARD, source, instance, config=IngestConfig(allow_shrink=True))
    assert result.metadata["skipped"] == 1
    assert stored_files(resources) == {SHARD: sorted(f"coco:{item['image_id']}" for item in items[1:])}


def test_a_decompression_bomb_is_skipped_by_item_and_the_good_items_are_stored(resources, instance, tmp_path):
    items = sample_items()[:3]
    bomb = bomb_png()
    assert len(bomb) < 2_000_000
    items[1] = {**items[1], "image": {"bytes": bomb, "path": "bomb.png"}, "width": 40000, "height": 40000}
    result = invoke(coco_files, SHARD, {**resources, "coco_source": coco_source(items, tmp_path / "bomb.parquet")}, instance)
    assert result.metadata["files"] == 2 and result.metadata["skipped"] == 1
    listed = result.metadata["skipped_items"].value
    assert f"image_id {items[1]['image_id']}" in listed and "1600000000 pixels" in listed and "DLK_MAX_IMAGE_PIXELS" in listed
    assert stored_files(resources) == {SHARD: [f"coco:{items[0]['image_id']}", f"coco:{items[2]['image_id']}"]}


def test_duplicate_image_ids_keep_the_first_copy_within_and_across_shards(resources, instance, tmp_path):
    items = sample_items()[:5]
    first = items[0]["image_id"]
    # Shard 0 repeats its first item; shard 1 repeats an item shard 0 already stored.
    stream = [items[0], items[1], {**items[2], "image_id": first}, {**items[3], "image_id": items[1]["image_id"]}, items[3], items[4]]
    source = {**resources, "coco_source": coco_source(stream, tmp_path / "dups.parquet")}
    one = invoke(coco_files, SHARD, source, instance)
    two = invoke(coco_files, OTHER, source, instance)
    assert one.metadata["duplicates"] == 1 and one.metadata["skipped"] == 0 and "first wins" in one.metadata["skipped_items"].value
    assert two.metadata["duplicates"] == 1 and f"partition '{SHARD}' already stores coco:{items[1]['image_id']}" in two.metadata["skipped_items"].value
    assert stored_files(resources) == {SHARD: sorted([f"coco:{first}", f"coco:{items[1]['image_id']}"]),
                                       OTHER: sorted([f"coco:{items[3]['image_id']}", f"coco:{items[4]['image_id']}"])}
    table = resources["lake"].lake().table(COCO_FILES)
    assert table.read_rows([f"coco:{first}"])[f"coco:{first}"]["source_record"]["position"] == 0  # the first copy
    invoke(coco_files, OTHER, source, instance)  # re-runs stay possible: nothing is stuck in two partitions
    assert stored_files(resources)[OTHER] == sorted([f"coco:{items[3]['image_id']}", f"coco:{items[4]['image_id']}"])


def vector_rows(prefix: str, count: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"row_key": f"{prefix}:{i:06d}", "n": i, "v": rng.standard_normal(64).astype(np.float32)} for i in range(count)]


def test_a_write_larger_than_the_free_space_is_refused_before_it_starts(tmp_path, monkeypatch):
    table = LocalDeepLake(tmp_path / "lake").table(VECTORS)
    table.replace_partition("old", vector_rows("old", 100), "stored long before")
    version = table.version
    free = __import__("shutil").disk_usage(tmp_path).free
    monkeypatch.setenv("DLK_MIN_FREE_BYTES", str(free))  # as if the disk were (almost) full
    with pytest.raises(InsufficientSpaceError, match=r"not enough free space for 500 row\(s\) of table 'vectors' under .*lake/vectors"):
        table.replace_partition("new", vector_rows("new", 500), "too big")
    with pytest.raises(InsufficientSpaceError, match="file 'x.bin'"):
        LocalFileStore(tmp_path / "files").put(b"x" * 1000, "x.bin", "application/octet-stream")
    monkeypatch.delenv("DLK_MIN_FREE_BYTES")
    assert table.version == version and table.partition_counts() == {"old": 100}
    table.replace_partition("new", vector_rows("new", 500), "after space was freed")
    assert table.partition_counts() == {"old": 100, "new": 500}


def test_an_index_build_the_free_space_cannot_hold_is_refused_before_it_starts(tmp_path, monkeypatch):
    notes = LocalDeepLake(tmp_path / "lake").table(TableSchema("notes", (Column("body", Kind.TEXT),)))
    notes.replace_partition("p", [{"row_key": f"n{i}", "body": f"note {i} about refresh_session_token"} for i in range(200)], "notes")
    version = notes.version
    free = __import__("shutil").disk_usage(tmp_path).free
    table_bytes = folder_bytes(tmp_path / "lake" / "notes")
    monkeypatch.setenv("DLK_MIN_FREE_BYTES", str(free - table_bytes // 2))  # room for half the table
    with pytest.raises(InsufficientSpaceError, match=r"a bm25 index on notes\.body under .*lake/notes"):
        notes.create_index("body", "bm25")
    assert notes.version == version and notes.indexes() == {} and notes.partition_counts() == {"p": 200}
    monkeypatch.delenv("DLK_MIN_FREE_BYTES")
    assert notes.create_index("body", "bm25") and notes.indexes() == {"body": "bm25"}
    assert notes.create_index("body", "bm25") is False  # already there: nothing to build, no space needed


@pytest.fixture
def small_filesystem(tmp_path):
    """A real 24 MiB tmpfs mounted for the test (needs root); skipped where mounting is not allowed."""
    mount = tmp_path / "fs"
    mount.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], capture_output=True, check=False)
    except OSError:  # no mount command on this machine
        mounted = None
    if mounted is None or mounted.returncode != 0:
        pytest.skip("cannot mount a small filesystem here (needs root and mount rights)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(mount, leave_bytes: int) -> None:
    free = __import__("shutil").disk_usage(mount).free
    with open(mount / "filler", "wb") as out:
        out.write(b"\0" * max(0, free - leave_bytes))


RAW_WRITE = """
import sys, deeplake, numpy as np
ds = deeplake.open(sys.argv[1])
ds.append({"partition": ["bad"] * 40000, "row_key": [f"bad:{i}" for i in range(40000)], "n": np.arange(40000),
           "v": np.random.rand(40000, 64).astype("float32")})
ds.commit("a write without the guard")
"""


def test_full_disk_guard_and_doctor_on_a_real_small_filesystem(small_filesystem, monkeypatch, capsys):
    monkeypatch.setenv("DLK_MIN_FREE_BYTES", str(1 << 20))
    lake_root = small_filesystem / "lake"
    table = LocalDeepLake(lake_root).table(VECTORS)
    table.replace_partition("old", vector_rows("old", 200), "stored long before")
    fill(small_filesystem, 3 << 20)
    with pytest.raises(InsufficientSpaceError, match=str(lake_root / "vectors")):
        table.replace_partition("new", vector_rows("new", 20000), "does not fit")
    assert LocalDeepLake(lake_root).table(VECTORS).partition_counts() == {"old": 200}

    # A writer without the guard (another tool, an older release) hits ENOSPC. What Deep Lake leaves varies:
    # a broken head, an empty commit counter, or (rarely) a clean failure. Whatever it left, after
    # `doctor --repair` the old rows are intact, the bad write is whole or absent, and the table is writable.
    url = f"file://{lake_root / 'vectors'}"
    subprocess.run([sys.executable, "-c", RAW_WRITE, url], capture_output=True, timeout=300, check=False)  # disk full
    (small_filesystem / "filler").unlink()
    assert all(not f.repaired for f in check_lake(lake_root, None, repair=False))
    assert all(f.repaired for f in check_lake(lake_root, None, repair=True))
    table = LocalDeepLake(lake_root).table(VECTORS)
    assert table.partition_counts().get("bad", 0) in (0, 40000)
    assert [r["row_key"] for r in table.read_partition("old")] == [r["row_key"] for r in vector_rows("old", 200)]
    table.replace_partition("new", vector_rows("new", 300), "writable again")
    assert {p: c for p, c in table.partition_counts().items() if p != "bad"} == {"old": 200, "new": 300}
    assert check_lake(lake_root, None, repair=False) == []


def test_doctor_reverts_a_table_whose_head_chunks_are_empty(tmp_path, capsys, monkeypatch):
    # What ENOSPC mid-commit leaves (seen on a full tmpfs): the last commit's chunk files exist with 0 bytes,
    # and every read of the table crashes. Made here on purpose, so the revert is tested on every machine.
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    lake_root = tmp_path / "home" / "lake"
    table = LocalDeepLake(lake_root).table(VECTORS)
    table.replace_partition("old", vector_rows("old", 200), "stored long before")
    before = {p for p in (lake_root / "vectors").rglob("*") if p.is_file()}
    table.replace_partition("new", vector_rows("new", 5000, seed=1), "the write that broke")
    written = [p for p in (lake_root / "vectors").rglob("*")
               if p.is_file() and p not in before and "_deeplake_log" not in p.parts and p.stat().st_size > 0]
    assert written
    for chunk in written:
        chunk.write_bytes(b"")
    assert main(["doctor"]) == 1
    assert "is unreadable" in capsys.readouterr().out
    assert main(["doctor", "--repair"]) == 0
    assert "reverted to" in capsys.readouterr().out
    table = LocalDeepLake(lake_root).table(VECTORS)
    assert table.partition_counts() == {"old": 200}
    assert [r["row_key"] for r in table.read_partition("old")] == [r["row_key"] for r in vector_rows("old", 200)]
    table.replace_partition("new", vector_rows("new", 300), "writable again")
    assert table.partition_counts() == {"old": 200, "new": 300}


def test_doctor_sweeps_temp_files_of_killed_writes_and_stream_checks_sha256(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    store = LocalFileStore(home / "files")
    kept = store.put(b"precious bytes" * 1000, "keep.bin", "application/octet-stream")
    # A killed put_file leaves its staged copy; an old release staged next to the blobs.
    victim = subprocess.Popen([sys.executable, "-c", (
        "import sys, os\nfrom dlk_assets.lake.local_files import LocalFileStore\n"
        "src = sys.argv[2]\nopen(src, 'wb').write(os.urandom(64 << 20))\nprint('go', flush=True)\n"
        "LocalFileStore(sys.argv[1]).put_file(src, 'big.bin', 'application/octet-stream')\n"),
        str(home / "files"), str(tmp_path / "big.bin")], stdout=subprocess.PIPE, text=True)
    assert victim.stdout.readline().strip() == "go"
    staging = home / "files" / "staging"
    deadline = time.monotonic() + 60
    while not (staging.is_dir() and any(staging.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.005)  # kill it mid-copy, once its staged file exists
    victim.kill()
    victim.wait()
    legacy = home / "files" / "blobs" / "ab" / ".tmp-legacy"
    legacy.parent.mkdir(parents=True, exist_ok=True)
    legacy.write_bytes(b"half")
    leftovers = store.orphans(older_than_s=0)
    assert legacy in leftovers and any(p.parent == store.staging for p in leftovers)  # the killed put_file's staged copy
    assert main(["doctor", "--orphan-age-hours", "0"]) == 1
    assert "temp file of a killed write" in capsys.readouterr().out
    assert main(["doctor", "--repair", "--orphan-age-hours", "0"]) == 0
    assert store.orphans(older_than_s=0) == [] and store.get(kept.file_id) == b"precious bytes" * 1000
    # stream() checks the sha256 before the last chunk: a reader never finishes with corrupt bytes.
    blob = next((home / "files" / "blobs").rglob(kept.sha256))
    blob.write_bytes(b"precious bytez" * 1000)
    chunks = store.stream(kept.file_id, chunk_size=4096)
    received = [next(chunks), next(chunks), next(chunks)]  # 12 KiB of 14000 bytes: the held-back last chunk remains
    with pytest.raises(OSError, match="corrupt"):
        next(chunks)
    assert sum(map(len, received)) == 3 * 4096


def test_staged_temp_files_older_than_the_age_go_when_the_store_opens(tmp_path):
    store = LocalFileStore(tmp_path)
    store.staging.mkdir(parents=True)
    old, fresh = store.staging / ".tmp-old", store.staging / ".tmp-fresh"
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    os.utime(old, (time.time() - 7 * 3600,) * 2)
    LocalFileStore(tmp_path)
    assert not old.exists() and fresh.exists()


def test_an_image_above_the_budget_is_refused_from_its_header_alone():
    from PIL import Image

    from dlk_assets.media.images import CorruptImageError, inspect_image

    buffer = io.BytesIO()
    Image.new("RGB", (400, 300), "white").save(buffer, format="PNG")
    assert inspect_image(buffer.getvalue(), max_pixels=120_000).width == 400
    with pytest.raises(CorruptImageError, match=r"400x300 = 120000 pixels, above the budget of 119999"):
        inspect_image(buffer.getvalue(), max_pixels=119_999)


def test_the_blocking_key_check_fails_when_a_key_got_into_two_partitions(resources, instance, tmp_path):
    import deeplake

    from dlk_assets.defs.coco.spec import COCO
    from dlk_assets.defs.pipeline.key_checks import build_key_checks

    check = next(c for c in build_key_checks(COCO) if c.check_key.name == "coco_files_keys_unique")
    assert next(iter(check.check_specs)).blocking
    items = sample_items()[:3]
    invoke(coco_files, SHARD, {**resources, "coco_source": coco_source(items, tmp_path / "s.parquet")}, instance)
    context = dg.build_asset_check_context(resources={"lake": resources["lake"]})
    assert check(context).passed
    # A writer that went around the lock (another machine, a tool writing the dataset directly).
    table = resources["lake"].lake().table(COCO_FILES)
    row = table.read_partition(SHARD)[0]
    dataset = deeplake.open(table.uri)
    dataset.append({name: [row[name] if name != "partition" else OTHER] for name in [c.name for c in dataset.schema.columns]})
    dataset.commit("sneaked in")
    result = check(context)
    assert not result.passed and result.metadata["duplicated_keys"].value == 1
    assert row["row_key"] in result.description and OTHER in result.description

"""Train on a slice: the dataset over an exported slice and the `slice_finetune` probe, on the real sample.

The lake is the session's fully materialized one (`demo_service`, shared with the service tests), so
nothing is materialized again here but the probes. Tampering happens on copies, never on that lake.
"""

import functools
import json
import pickle
import re
import shutil
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from dlk_assets.defs.training.assets import FINETUNE_FOLDER, slice_finetune
from dlk_assets.lake.local_files import LocalFileStore
from dlk_assets.media.frames import sample_frames
from dlk_assets.media.images import decode_rgb
from dlk_assets.training.manifest import MANIFEST, load_manifest, slice_manifest_path
from dlk_assets.training.probe import RECORD, WEIGHTS, sample_negatives, split_held_out
from dlk_assets.training.slice_dataset import SliceDataset, SliceIntegrityError


def largest_slice(lake_home, source):
    """The source's exported slice with the most items (slices.yaml and its keep rules decide the sizes)."""
    manifests = [load_manifest(path) for path in sorted((lake_home.home / "slices").glob(f"*/{MANIFEST}"))]
    return max((m for m in manifests if m.source == source), key=lambda m: len(m.items))


def slice_of_two(lake_home, tmp_path):
    """A coco slice of at least two items, for the two-worker checks: the largest exported one, or (the
    shipped slices keep only their relevant item) a copy under `tmp_path` whose manifest takes the hits
    the keep rules cut back in as items, their files exported from the store beside the others."""
    manifest = largest_slice(lake_home, "coco")
    if len(manifest.items) >= 2:
        return manifest, lake_home.home
    folder = tmp_path / "slices" / f"{manifest.name}_with_cut"
    shutil.copytree(manifest.folder, folder)
    document = json.loads((folder / MANIFEST).read_text())
    store = lake_home.resources["files"].store()
    for cut in document["cut"]:
        item = {k: v for k, v in cut.items() if k not in ("reason", "detail")}
        item["file"] = f"{item['rank']:04d}_{item['row_key'].replace(':', '_')}.{store.stat(item['file_id']).filename.rsplit('.', 1)[-1]}"
        (folder / item["file"]).write_bytes(store.get(item["file_id"]))
        document["items"].append(item)
    document["slice"]["name"] = folder.name
    (folder / MANIFEST).write_text(json.dumps(document))
    grown = load_manifest(folder / MANIFEST)
    assert len(grown.items) >= 2, "the sample's coco slices cut nothing to add back"
    return grown, tmp_path


def finetune(lake_home, partition, seed=0):
    """Materialize one slice's probe through Dagster, recorded in the lake's instance; its metadata and folder."""
    resources = {key: lake_home.resources[key] for key in ("lake", "models")}
    with dg.DagsterInstance.get() as instance:
        result = dg.materialize([slice_finetune], partition_key=partition, resources=resources, instance=instance,
                                run_config={"ops": {"slice_finetune": {"config": {"seed": seed}}}})
    assert result.success
    metadata = {k: v.value for k, v in result.asset_materializations_for_node("slice_finetune")[0].metadata.items()}
    return metadata, lake_home.home / FINETUNE_FOLDER / partition


def test_slice_dataset_yields_the_slices_images_through_two_workers(demo_service, tmp_path):
    manifest, home = slice_of_two(demo_service, tmp_path)
    dataset = SliceDataset.from_slice(manifest.name, home=home)
    assert len(dataset) == len(manifest.items) >= 2  # both workers get an item
    # What the workers get is a recipe, never an open store.
    clone = pickle.loads(pickle.dumps(dataset))
    assert clone._store is None and clone[0]["row_key"] == manifest.items[0]["row_key"]

    batches = list(DataLoader(dataset, batch_size=1, num_workers=2))
    assert [b["row_key"][0] for b in batches] == [item["row_key"] for item in manifest.items]
    assert [int(b["rank"][0]) for b in batches] == [item["rank"] for item in manifest.items]
    for batch, item in zip(batches, manifest.items):
        # The pixels are the exported image's, as PIL decodes it, in (3, H, W) at [0, 1].
        expected = np.asarray(decode_rgb((manifest.folder / item["file"]).read_bytes()), dtype=np.float32) / 255
        assert torch.equal(batch["pixels"][0], torch.from_numpy(expected).permute(2, 0, 1))
        assert batch["file_id"][0] == item["file_id"]

    resized = SliceDataset.from_slice(manifest.name, home=home, image_size=(48, 64), transform=lambda x: x * 2 - 1)
    (batch,) = list(DataLoader(resized, batch_size=8, num_workers=2))
    assert batch["pixels"].shape == (len(manifest.items), 3, 48, 64)
    assert batch["pixels"].min() >= -1 and batch["pixels"].max() <= 1 and batch["pixels"].min() < 0


def test_slice_dataset_samples_frames_from_a_video_slices_clips(demo_service):
    manifest = largest_slice(demo_service, "videos")
    dataset = SliceDataset.from_slice(manifest.name, frames_per_clip=3)
    first = dataset[0]
    frames = sample_frames(manifest.folder / manifest.items[0]["file"], 3)
    assert first["pixels"].shape == (3, 3, frames[0].image.height, frames[0].image.width)
    for tensor, frame in zip(first["pixels"], frames):
        expected = torch.from_numpy(np.asarray(frame.image, dtype=np.float32) / 255).permute(2, 0, 1)
        assert torch.equal(tensor, expected)
    (batch,) = list(DataLoader(SliceDataset.from_slice(manifest.name, image_size=32, frames_per_clip=3),
                               batch_size=8, num_workers=2))
    assert batch["pixels"].shape == (len(manifest.items), 3, 3, 32, 32)


def test_a_tampered_file_is_refused_naming_the_item(demo_service, tmp_path):
    manifest, _ = slice_of_two(demo_service, tmp_path / "grown")
    source = demo_service.resources["files"].store()
    # A copy of the slice's files in a store of its own, one of them then overwritten on disk.
    copy = LocalFileStore(tmp_path / "files")
    for item in manifest.items:
        stored = source.stat(item["file_id"])
        copy.put(source.get(item["file_id"]), stored.filename, stored.content_type)
    victim = manifest.items[0]
    (tmp_path / "files" / "blobs" / victim["sha256"][:2] / victim["sha256"]).write_bytes(b"not the pinned image")
    dataset = SliceDataset(manifest, open_store=functools.partial(LocalFileStore, tmp_path / "files"))
    with pytest.raises(SliceIntegrityError, match=rf"slice '{manifest.name}' item rank {victim['rank']} "
                                                  rf"\({victim['row_key']}, file {victim['file_id']}\)"):
        dataset[0]
    assert dataset[1]["row_key"] == manifest.items[1]["row_key"]  # the untouched item still reads

    # A manifest whose sha256 is not the stored bytes' is refused too, also from a worker.
    folder = tmp_path / "slices" / manifest.name
    shutil.copytree(manifest.folder, folder)
    edited = json.loads((folder / MANIFEST).read_text())
    edited["items"][1]["sha256"] = "0" * 64
    (folder / MANIFEST).write_text(json.dumps(edited))
    changed = SliceDataset.from_slice(manifest.name, home=tmp_path)
    with pytest.raises(SliceIntegrityError, match=rf"rank {manifest.items[1]['rank']} \({manifest.items[1]['row_key']}.*the manifest pinned 0{{64}}"):
        list(DataLoader(changed, batch_size=1, num_workers=2))


def test_the_readmes_training_loop_fits_two_slices(demo_service):
    """The README's "Train on a slice" loop, as written there: a classifier with one class per slice."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## Train on a slice"):]
    code = section[section.index("```python\n") + len("```python\n"):section.index("```\n", section.index("```python"))]
    loop = code[code.index("slices = "):].replace("range(20)", "range(8)")  # fewer epochs: the loss must fall, not converge
    names = re.search(r'for name in \(("[a-z_]+"), ("[a-z_]+")\)', loop).groups()
    assert all(slice_manifest_path(name.strip('"')).exists() for name in names)
    torch.manual_seed(0)
    scope = {"torch": torch, "DataLoader": DataLoader, "SliceDataset": SliceDataset}
    losses: list[float] = []
    exec(loop.replace("loss.backward()", "losses.append(loss.item()); loss.backward()"),  # noqa: S102 - the README's own code
         scope | {"losses": losses})
    per_epoch = len(losses) // 8
    assert per_epoch >= 2 and sum(losses[-per_epoch:]) < sum(losses[:per_epoch])  # both classes fit better than at first


def test_slice_finetune_trains_a_probe_and_reports_loss_and_accuracy(demo_service):
    coco = sorted(p.parent.name for p in (demo_service.home / "slices").glob(f"coco_*/{MANIFEST}"))
    assert coco
    for name in coco:  # every COCO slice, whatever its size (a slice of one item trains on it alone)
        manifest = load_manifest(slice_manifest_path(name))
        metadata, folder = finetune(demo_service, name)
        assert 0 <= metadata["loss"] < 0.69  # below a coin flip's log loss: it fit the training split
        assert 0 <= metadata["held_out_accuracy"] <= 1 and 0 <= metadata["held_out_baseline_accuracy"] <= 1
        assert metadata["positives"] == len(manifest.items) and metadata["negatives"] >= 1
        assert metadata["held_out_items"] >= 1
        assert metadata["train_items"] + metadata["held_out_items"] == metadata["positives"] + metadata["negatives"]
        assert ("held_out_auc" in metadata) == (metadata["held_out_positives"] >= 1)
        assert metadata["feature_column"] == "image_features" and metadata["feature_dim"] == 1280
        assert metadata["table_tag"] == manifest.table_tag and metadata["weights"] == f"{FINETUNE_FOLDER}/{name}/{WEIGHTS}"

        record = json.loads((folder / RECORD).read_text())
        assert record["slice"] == name and record["seed"] == 0 and record["table_tag"] == manifest.table_tag
        assert record["encoder_fingerprint"] == manifest.encoder_fingerprint
        assert record["metrics"]["held_out_accuracy"] == metadata["held_out_accuracy"]
        state = torch.load(folder / WEIGHTS, weights_only=True)
        assert state["weight"].shape == (1, 1280) and state["bias"].shape == (1,)
    with dg.DagsterInstance.get() as instance:  # each run is on record under its slice's partition
        partitions = {r.asset_materialization.partition
                      for r in instance.fetch_materializations(dg.AssetKey("slice_finetune"), limit=100).records}
    assert set(coco) <= partitions

    manifest = largest_slice(demo_service, "videos")  # video chunks train the same way
    video, _ = finetune(demo_service, manifest.name)
    assert video["source"] == "videos" and video["positives"] == len(manifest.items)
    assert 0 <= video["loss"] < 0.69 and 0 <= video["held_out_accuracy"] <= 1


def test_the_same_slice_and_seed_give_byte_identical_weights(demo_service):
    name = largest_slice(demo_service, "coco").name
    first, folder = finetune(demo_service, name, seed=7)
    weights = (folder / WEIGHTS).read_bytes()
    second, _ = finetune(demo_service, name, seed=7)
    assert (folder / WEIGHTS).read_bytes() == weights and second["weights_sha256"] == first["weights_sha256"]
    assert second["loss"] == first["loss"] and second["held_out_accuracy"] == first["held_out_accuracy"]
    other, _ = finetune(demo_service, name, seed=8)
    assert other["weights_sha256"] != first["weights_sha256"]


def test_negatives_and_the_held_out_split_follow_the_seed_only():
    keys = [f"k{i}" for i in range(20)]
    negatives = sample_negatives(keys, {"k0", "k1"}, 5, seed=3)
    assert negatives == sample_negatives(list(reversed(keys)), {"k0", "k1"}, 5, seed=3)  # not the table's row order
    assert len(negatives) == 5 and not {"k0", "k1"} & set(negatives)
    assert sample_negatives(keys, {"k0"}, 50, seed=3) == sorted(set(keys) - {"k0"})  # fewer candidates: all of them
    labels = np.array([1, 1, 1] + [0] * 9)
    train, held = split_held_out(labels, 0.3, seed=3)
    assert sorted([*train, *held]) == list(range(12)) and labels[held].sum() == 1 and (labels[held] == 0).sum() == 3
    assert all(np.array_equal(a, b) for a, b in zip(split_held_out(labels, 0.3, seed=3), (train, held)))


def test_definitions_show_slice_finetune_downstream_of_each_sources_slices(dagster_home):
    from dlk_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    node = graph.get(dg.AssetKey("slice_finetune"))
    assert {k.to_user_string() for k in node.parent_keys} == {"coco_slices", "video_slices"}
    coco = graph.get(dg.AssetKey("coco_slices")).partitions_def.get_partition_keys()
    videos = graph.get(dg.AssetKey("video_slices")).partitions_def.get_partition_keys()
    assert sorted(node.partitions_def.get_partition_keys()) == sorted([*coco, *videos])
    finetune_def = defs.get_assets_def("slice_finetune")
    for parent, names in (("coco_slices", coco), ("video_slices", videos)):
        mapping = finetune_def.get_partition_mapping(dg.AssetKey(parent))
        assert mapping.downstream_partition_keys_by_upstream_partition_key == {n: n for n in names}
    assert node.group_name == "training" and "pytorch" in node.kinds and node.code_version

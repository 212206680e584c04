"""Search by example, `dlk search <source> --like FILE|file_id`, on the real sample.

The lake is the session's fully materialized one (the `demo_service` fixture), read through the CLI.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import requests

from dlk_assets.cli import main as dlk
from dlk_assets.defs.coco.tables import COCO_IMAGES
from dlk_assets.defs.pipeline.by_example import search_features
from dlk_assets.defs.smartspaces.tables import VIDEO_CHUNKS, VIDEO_FILES
from dlk_assets.models.registry import ModelRegistry
from dlk_assets.retrieval.requests import Hit
from dlk_assets.sources.coco_sample import SAMPLE_ANNOTATIONS

IMAGE_IDS = sorted(image_id for _, image_id, _ in SAMPLE_ANNOTATIONS)
CAT, CAT_CHUNK = 900002, ("scene_001__camera_0001", 0)


@pytest.fixture
def lake(demo_service, monkeypatch):
    """The session's materialized instance as $DAGSTER_HOME, with the default models."""
    monkeypatch.setenv("DAGSTER_HOME", str(demo_service.home))
    for name in ("DLK_MODELS_FILE", "DLK_IMAGE_ENCODER", "DLK_TEXT_ENCODER"):
        monkeypatch.delenv(name, raising=False)
    return demo_service


def rows(lake, schema, *columns):
    return lake.resources["lake"].lake().table(schema).read_where(None, columns)


def images(lake) -> dict[int, dict]:
    return {row["image_id"]: row for row in rows(lake, COCO_IMAGES, "image_id", "file_id", "sha256", "width")}


def export(lake, file_id, path):
    path.write_bytes(lake.resources["files"].store().get(file_id))
    return path


def search(capsys, *argv) -> list[list[str]]:
    """`dlk search ...` that must succeed: the printed table, header first, split into cells."""
    assert dlk(["search", *argv]) == 0, capsys.readouterr().err
    return [line.split() for line in capsys.readouterr().out.strip().splitlines()]


def test_every_coco_image_finds_itself_first_from_a_file_and_by_file_id(lake, tmp_path, capsys):
    stored = images(lake)
    assert sorted(stored) == IMAGE_IDS
    text_header = search(capsys, "coco", "a cat", "--k", "1")[0]
    for image_id, row in stored.items():
        by_file = search(capsys, "coco", "--like", str(export(lake, row["file_id"], tmp_path / f"{image_id}.jpg")), "--k", "3")
        assert by_file[0] == text_header == ["rank", "score", "image_id", "file_id", "labels"]
        assert len(by_file) == 4 and [cells[0] for cells in by_file[1:]] == ["1", "2", "3"]
        _, score, found, file_id = by_file[1][:4]
        assert (int(found), file_id) == (image_id, row["file_id"]) and float(score) == pytest.approx(1.0, abs=1e-3)
        assert float(by_file[2][1]) < 0.99 and float(by_file[2][1]) >= float(by_file[3][1])
        if image_id == CAT:
            assert search(capsys, "coco", "--like", row["file_id"], "--k", "3") == by_file


def test_where_and_k_apply_to_a_search_by_example(lake, capsys):
    stored = images(lake)
    cat = stored[CAT]
    assert cat["width"] < 500
    wide = search(capsys, "coco", "--like", cat["file_id"], "--k", "10", "--where", "width >= 500")[1:]
    assert wide and {int(cells[2]) for cells in wide} == {i for i, row in stored.items() if row["width"] >= 500}
    assert search(capsys, "coco", "--like", cat["file_id"], "--k", "2")[1:][0][2] == str(CAT)
    assert len(search(capsys, "coco", "--like", cat["file_id"], "--k", "2")) == 3
    assert dlk(["search", "coco", "--like", cat["file_id"], "--where", "width >= 'x'"]) == 1
    assert "numeric" in capsys.readouterr().err
    assert dlk(["search", "coco", "--like", cat["file_id"], "--k", "0"]) == 2
    assert capsys.readouterr().err.startswith("dlk: k must be")


def test_a_video_chunk_finds_itself_first_and_a_whole_video_finds_its_chunks(lake, tmp_path, capsys):
    chunks = rows(lake, VIDEO_CHUNKS, "video_id", "chunk_index", "file_id")
    for chunk in [c for c in chunks if c["chunk_index"] == 1]:  # one per video
        clip = export(lake, chunk["file_id"], tmp_path / f"{chunk['video_id']}_{chunk['chunk_index']}.mp4")
        found = search(capsys, "videos", "--like", str(clip), "--k", "2")
        assert found[0][:6] == ["rank", "score", "video_id", "chunk", "start_s", "end_s"]
        assert (found[1][2], int(found[1][3]), found[1][6]) == (chunk["video_id"], chunk["chunk_index"], chunk["file_id"])
        assert float(found[1][1]) == pytest.approx(1.0, abs=1e-3)
    scene = [c for c in chunks if c["video_id"] == "scene_002__camera_0001"]
    assert {cells[2] for cells in search(capsys, "videos", "--like", scene[0]["file_id"], "--k", "5",
                                        "--where", "scene_name = 'scene_002'")[1:]} == {"scene_002__camera_0001"}
    for video in rows(lake, VIDEO_FILES, "video_id", "file_id"):
        own = sum(c["video_id"] == video["video_id"] for c in chunks)
        top = search(capsys, "videos", "--like", video["file_id"], "--k", str(own))[1:]
        assert {cells[2] for cells in top} == {video["video_id"]}, video["video_id"]


def test_an_image_finds_the_chunk_that_shows_it_and_a_chunk_the_image(lake, capsys):
    cat = images(lake)[CAT]
    first = search(capsys, "videos", "--like", cat["file_id"], "--k", "1")[1]
    assert (first[2], int(first[3])) == CAT_CHUNK
    chunk = next(c for c in rows(lake, VIDEO_CHUNKS, "video_id", "chunk_index", "file_id")
                 if (c["video_id"], c["chunk_index"]) == CAT_CHUNK)
    assert search(capsys, "coco", "--like", chunk["file_id"], "--k", "1")[1][2] == str(CAT)


@pytest.fixture
def bad_files(lake, tmp_path):
    photo = lake.resources["files"].store().get(images(lake)[CAT]["file_id"])
    (tmp_path / "truncated.jpg").write_bytes(photo[: len(photo) // 2])
    (tmp_path / "notes.txt").write_text("not a picture\n")
    (tmp_path / "folder").mkdir()
    return tmp_path


@pytest.mark.parametrize("argv, says", [
    (["coco", "--like", "{tmp}/missing.jpg"], "--like '{tmp}/missing.jpg': no such file"),
    (["coco", "--like", "00000000-0000-4000-8000-000000000000"], "no file with that id in the file store"),
    (["coco", "--like", "{tmp}/truncated.jpg"], "--like '{tmp}/truncated.jpg': image bytes do not decode"),
    (["coco", "--like", "{tmp}/notes.txt"], "--like '{tmp}/notes.txt': neither an image nor a video that decodes"),
    (["videos", "--like", "{tmp}/folder"], "--like '{tmp}/folder': not a file"),
    (["memory", "--like", "{tmp}/notes.txt"], "--like: search by example covers images and video chunks"),
    (["coco", "a cat", "--like", "{tmp}/notes.txt"], "--like FILE, not both"),
    (["coco"], "give a query text, or --like FILE"),
    (["coco", "--like", "{tmp}/notes.txt", "--mode", "maxsim"], "--mode does not apply to --like"),
])
def test_bad_input_is_one_dlk_line_naming_the_argument(bad_files, capsys, argv, says):
    tmp = str(bad_files)
    assert dlk(["search", *(part.format(tmp=tmp) for part in argv)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("dlk: ") and captured.err.count("\n") == 1
    assert says.format(tmp=tmp) in captured.err


def test_the_service_searches_by_file_id(lake):
    stored = images(lake)

    def like(source, **body):
        return requests.post(f"{lake.base}/api/v1/sources/{source}/search/like", json=body, timeout=120,
                             headers={"Authorization": f"Bearer {lake.keys['local']}"})

    text = requests.post(f"{lake.base}/api/v1/sources/coco/search", json={"query": "a cat", "top_k": 1}, timeout=120,
                         headers={"Authorization": f"Bearer {lake.keys['local']}"})
    assert (text.json()["mode"], text.json()["results"][0]["item_id"]) == ("maxsim", str(CAT))
    answer = like("coco", file_id=stored[CAT]["file_id"], top_k=2)
    assert answer.status_code == 200, answer.text
    first = answer.json()["results"][0]
    assert (first["item_id"], first["file_url"]) == (str(CAT), f"/api/v1/files/{stored[CAT]['file_id']}")
    assert first["score"] == pytest.approx(1.0, abs=1e-3) and answer.json()["mode"] == "like"
    chunks = like("videos", file_id=stored[CAT]["file_id"], top_k=1, where="scene_name = 'scene_001'").json()["results"]
    assert chunks[0]["item_id"] == "{}:{}".format(*CAT_CHUNK)
    missing = like("coco", file_id="00000000-0000-4000-8000-000000000000")
    assert (missing.status_code, missing.json()["error_code"]) == (404, "FILE_NOT_FOUND")
    assert like("coco", file_id="/etc/hostname").status_code == 404  # never a path on the server
    assert like("memory", file_id=stored[CAT]["file_id"]).json()["error_code"] == "VALIDATION_ERROR"


def test_an_encoder_without_image_features_is_refused(lake, capsys, monkeypatch):
    monkeypatch.setattr(ModelRegistry, "active", lambda self, spec, lake: self.encoder("minilm"))
    assert dlk(["search", "coco", "--like", images(lake)[CAT]["file_id"]]) == 1
    err = capsys.readouterr().err
    assert err.startswith("dlk: --like: coco is served by minilm, which makes no image features") and err.count("\n") == 1


class _Table:
    """A table that answers every search with the hits it was given."""

    schema = SimpleNamespace(name="coco_image_embeddings__fake")

    def __init__(self, hits):
        self.hits, self.requests = hits, []

    def search(self, request):
        self.requests.append(request)
        return self.hits


def _hit(rank, score, sha256, features):
    return Hit(rank, f"coco:{rank}", score, {"image_id": rank, "sha256": sha256, "image_features": features})


def test_the_query_bytes_rank_first_and_features_stay_out_of_the_hits():
    unit = np.ones(4, np.float32) / 2
    table = _Table([_hit(1, 0.99999, "near", unit), _hit(2, 0.99998, "self", unit), _hit(3, 0.5, "other", unit)])
    hits = search_features(table, unit, 3, "image_id > 0", ("image_id",), same_sha256="self")
    assert [(h.rank, h.values) for h in hits] == [(1, {"image_id": 2}), (2, {"image_id": 1}), (3, {"image_id": 3})]
    request = table.requests[0]
    assert (request.column, request.mode, request.k) == ("image_features", "vector", 3) and request.where is not None


def test_rows_embedded_before_their_table_had_features_are_refused():
    table = _Table([_hit(1, 0.0, "a", np.asarray(np.nan, np.float32)), _hit(2, 0.0, "b", np.zeros(4, np.float32))])
    with pytest.raises(LookupError, match="2 row\\(s\\) among the hits have no image features"):
        search_features(table, np.ones(4, np.float32), 2, None, ("image_id",))

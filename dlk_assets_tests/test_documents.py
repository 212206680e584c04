"""Documents: the chunker, extractors and language detection as plain functions; the folder sensor on an
ephemeral instance; and real folders materialized through Dagster into real Deep Lake tables with real
MiniLM vectors (re-run, edit, delete, undecodable bytes, search, the shipped probes)."""

import json
import re
import uuid
from itertools import pairwise
from types import SimpleNamespace

import dagster as dg
import numpy as np
import pytest

from dlk_assets.defs.documents.assets import documents
from dlk_assets.defs.documents.discovery import FolderState, plan_folder_runs
from dlk_assets.defs.documents.partitions import document_folders
from dlk_assets.defs.documents.sensors import document_folder_sensor
from dlk_assets.defs.documents.spec import DOCUMENTS, search_documents
from dlk_assets.defs.documents.tables import DOCUMENT_CHUNKS, DOCUMENTS_TABLE
from dlk_assets.defs.pipeline.ingest_safety import IngestConfig
from dlk_assets.defs.pipeline.readiness import probe_score
from dlk_assets.defs.pipeline.serving import embeddings_table, search_table
from dlk_assets.lake.files import sha256_hex
from dlk_assets.lineage import trace_item
from dlk_assets.operations import QUIET_CONSOLE, Operator
from dlk_assets.resources import DocumentSourceResource
from dlk_assets.sources.documents import (
    SAMPLE_FOLDER,
    document_folder,
    folder_fingerprint,
    read_folder,
)
from dlk_assets.text.chunking import chunk_text, sentences
from dlk_assets.text.extract import UnreadableDocument, extract_text
from dlk_assets.text.html_text import html_to_text
from dlk_assets.text.json_text import json_to_text
from dlk_assets.text.language import detect_language
from dlk_assets.vectors.errors import VectorServiceError
from dlk_assets.vectors.records import DatasetInfo
from dlk_assets.vectors.schema import RECORD_FIELDS, chunk_columns
from dlk_assets.vectors.store import VectorStore

from .conftest import definitions, invoke, make_home, sample_resources

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
RECORD_COLUMNS = tuple(column.name for column in chunk_columns())
PROSE = ("The keeper climbed the tower at dusk. He trimmed the wick and wound the clockwork that turned the lens. "
         "All night the beam swept across the rocks. Ships far out at sea counted its flashes to know where they were. "
         "At dawn he put the lamp out and wrote the weather in the log.")


# ---- the chunker, the extractors and the language detector, without Dagster --------------------------------------

def test_chunks_hold_whole_sentences_within_the_size():
    chunks = chunk_text(PROSE, size=120, overlap=0)
    assert all(len(chunk) <= 120 for chunk in chunks) and len(chunks) > 1
    whole = set(sentences(PROSE))
    assert all(set(sentences(chunk)) <= whole for chunk in chunks)  # no sentence cut in two
    assert " ".join(chunks) == PROSE  # nothing lost, nothing repeated without overlap


def test_each_chunk_opens_with_the_last_sentences_of_the_one_before():
    chunks = chunk_text(PROSE, size=160, overlap=70)
    for before, after in pairwise(chunks):
        last = sentences(before)[-1]
        assert after.startswith(last) == (len(last) <= 70), (before, after)
    assert all(after.startswith(sentences(before)[-1]) for before, after in pairwise(chunks))
    assert chunk_text(PROSE, 160, 70) == chunks  # deterministic


def test_only_a_sentence_longer_than_a_chunk_is_split_and_at_whitespace():
    long_sentence = " ".join(f"word{i}" for i in range(60)) + "."
    chunks = chunk_text(f"Short one. {long_sentence} Tail sentence.", size=80, overlap=0)
    assert all(len(chunk) <= 80 for chunk in chunks)
    assert chunks[0] == "Short one." and chunks[-1].endswith("Tail sentence.")
    assert " ".join(chunks).split() == f"Short one. {long_sentence} Tail sentence.".split()  # split between words only
    assert chunk_text("x" * 25, size=10, overlap=0) == ["x" * 10, "x" * 10, "x" * 5]  # one word longer than a chunk
    assert chunk_text("  \n\n ", 10, 0) == []
    with pytest.raises(ValueError, match="overlap"):
        chunk_text(PROSE, size=100, overlap=100)


def test_wrapped_lines_join_while_lists_and_key_lines_stay_apart():
    text = "# Title\nA sentence that wraps\nonto a second line.\n\n- first item\n- second item\n\nname: Oolong\nsteeping_minutes: 4"
    expected = ("# Title\nA sentence that wraps onto a second line.\n\n- first item\n- second item"
                "\n\nname: Oolong\nsteeping_minutes: 4")
    assert chunk_text(text, 1000, 0) == [expected]


def test_html_gives_visible_text_without_scripts_and_styles():
    page = html_to_text("<html><head><title>Bees &amp; honey</title><style>p {color: red}</style>"
                        "<script>var hidden = 'no';</script></head><body><h1>Heading</h1><p>First   paragraph,\n"
                        "wrapped.</p><ul><li>one</li><li>two</li></ul><table><tr><td>a</td><td>b</td></tr></table>"
                        "<noscript>enable js</noscript><p>Caf&eacute; &lt;ok&gt;</p><script>track()</script></body></html>")
    assert page.title == "Bees & honey"
    assert page.text == "Heading\n\nFirst paragraph, wrapped.\n\none\n\ntwo\n\na b\n\nCafé <ok>"
    assert html_to_text("<h1>Only a heading</h1><p>Body.</p>").title == "Only a heading"


def test_json_becomes_readable_key_value_lines():
    document = {"title": "Tea", "brewing": {"temperature_c": 80, "minutes": 2.5}, "tags": ["green", "japanese"],
                "steps": [{"text": "Warm the pot"}, {"text": "Steep"}], "empty": [], "note": None, "ok": True}
    assert json_to_text(document).splitlines() == [
        "title: Tea", "brewing.temperature_c: 80", "brewing.minutes: 2.5", "tags: green, japanese",
        "steps[1].text: Warm the pot", "steps[2].text: Steep", "ok: true"]
    extracted = extract_text(json.dumps(document).encode(), "application/json")
    assert extracted.title == "Tea" and extracted.text.startswith("title: Tea\n")


def test_bytes_that_are_not_utf8_or_not_json_are_unreadable_with_the_reason():
    with pytest.raises(UnreadableDocument, match="not UTF-8 text: byte 0xe9 at offset 3"):
        extract_text("café".encode("latin-1"), "text/plain")
    with pytest.raises(UnreadableDocument, match="not valid JSON: Expecting property name .* at line 1 column 9"):
        extract_text(b'{"a": 1,}', "application/json")
    assert extract_text("\ufeff# Título\r\nTexto.".encode(), "text/markdown").title == "Título"  # BOM and CRLF


@pytest.mark.parametrize("code, text", [
    ("es", "El gato duerme en el sofá mientras llueve. Por la tarde sale al jardín a cazar mariposas."),
    ("fr", "Le chat dort sur le canapé pendant qu'il pleut. L'après-midi, il sort dans le jardin pour chasser."),
    ("de", "Die Katze schläft auf dem Sofa, während es regnet. Am Nachmittag geht sie in den Garten."),
    ("en", "The cat sleeps on the sofa while it rains. In the afternoon it goes out into the garden."),
])
def test_language_is_detected_as_an_iso_639_1_code(code, text):
    assert detect_language(text) == code


def test_text_too_short_to_tell_gets_the_default_language():
    assert detect_language("ok") == "en" and detect_language("Hola", default="es") == "es"


def test_folder_reader_types_files_skips_what_it_cannot_read_and_fingerprints_changes(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("Plain text here.")
    (tmp_path / "sub" / "b.htm").write_text("<p>Nested page.</p>")
    (tmp_path / "c.json").write_text('{"name": "C"}')
    (tmp_path / "d.md").write_text("# D\nMarkdown.")
    (tmp_path / "latin.txt").write_bytes("Olé".encode("latin-1"))
    (tmp_path / "broken.json").write_text("{nope")
    (tmp_path / "blank.html").write_text("<script>only()</script>")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / ".hidden.txt").write_text("Not listed.")
    read = read_folder(tmp_path)
    assert [(d.path, d.content_type, d.title) for d in read.documents] == [
        ("a.txt", "text/plain", "Plain text here."), ("c.json", "application/json", "C"),
        ("d.md", "text/markdown", "D"), ("sub/b.htm", "text/html", "b")]
    assert {s.item: s.reason.split(":")[0] for s in read.skipped} == {
        "latin.txt": "not UTF-8 text", "broken.json": "not valid JSON", "blank.html": "no text to index"}
    before = folder_fingerprint(tmp_path)
    assert folder_fingerprint(tmp_path) == before
    (tmp_path / "image.png").write_bytes(b"\x89PNG more")  # not a document: no change
    assert folder_fingerprint(tmp_path) == before
    (tmp_path / "a.txt").write_text("Plain text, edited.")
    assert folder_fingerprint(tmp_path) != before
    assert document_folder(SAMPLE_FOLDER).name == "data/documents/sample"
    assert document_folder(SAMPLE_FOLDER).key == "data-documents-sample"


# ---- the sensor ---------------------------------------------------------------------------------------------------

def tick(instance, folders, cursor=None):
    source = DocumentSourceResource(folders=[str(f) for f in folders])
    return document_folder_sensor(dg.build_sensor_context(instance=instance, cursor=cursor, resources={"documents_source": source}))


def apply(instance, result):
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))


def test_sensor_registers_folders_and_runs_a_folder_again_when_its_files_change(tmp_path):
    folder, missing = tmp_path / "docs", tmp_path / "not-there"
    folder.mkdir()
    (folder / "a.txt").write_text("First version.")
    key = document_folder(folder).key
    instance = dg.DagsterInstance.ephemeral()
    first = tick(instance, [folder, missing])
    fingerprint = folder_fingerprint(folder)
    assert [(r.partition_key, r.run_key) for r in first.run_requests] == [(key, f"{key}@1:{fingerprint}")]
    assert list(first.dynamic_partitions_requests[0].partition_keys) == [key]
    assert [(r.run_key) for r in tick(instance, [folder, missing]).run_requests] == [f"{key}@1:{fingerprint}"]  # same tick twice
    apply(instance, first)
    quiet = tick(instance, [folder], first.cursor)
    assert not quiet.run_requests and "no new or changed document folders" in quiet.skip_reason.skip_message
    (folder / "a.txt").write_text("Second version, longer.")
    (folder / "b.md").write_text("# New file")
    edited = tick(instance, [folder], quiet.cursor)
    assert [r.run_key for r in edited.run_requests] == [f"{key}@2:{folder_fingerprint(folder)}"]
    assert not edited.dynamic_partitions_requests
    (folder / "b.md").unlink()  # a deletion is a change too
    deleted = tick(instance, [folder], edited.cursor)
    assert [r.run_key for r in deleted.run_requests] == [f"{key}@3:{folder_fingerprint(folder)}"]
    instance.delete_dynamic_partition(document_folders.name, key)  # deleted in the UI: stays deleted
    (folder / "a.txt").write_text("Third version.")
    assert not tick(instance, [folder], deleted.cursor).run_requests


def test_a_folder_edited_back_to_an_earlier_state_still_runs_and_the_limit_defers():
    seen = {"a": FolderState("f1", 2)}
    plan = plan_folder_runs({"a": "f0", "b": "g", "c": "h"}, {"a"}, seen, limit=2)
    assert [r.run_key for r in plan.runs] == ["a@3:f0", "b@1:g"] and plan.new_keys == ["b"] and plan.deferred == ["c"]
    assert json.loads(plan.cursor()) == {"a": ["f0", 3], "b": ["g", 1]}


# ---- folders materialized through Dagster -------------------------------------------------------------------------

def test_a_missing_or_unconfigured_folder_fails_its_run_and_keeps_what_is_stored(dagster_home, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("A short note about tides and the moon.")
    source = DocumentSourceResource(folders=[str(folder)])
    resources = sample_resources(documents_source=source)
    key = document_folder(folder).key
    first = invoke(documents, key, resources, config=IngestConfig())
    assert first.metadata["documents"] == 1
    (folder / "a.txt").unlink()
    folder.rmdir()  # an unmounted disk is not a folder whose files were all deleted
    with pytest.raises(dg.Failure, match="does not exist or is not a folder; the stored documents are kept"):
        invoke(documents, key, resources, config=IngestConfig())
    assert len(resources["lake"].lake().table(DOCUMENTS_TABLE).read_partition(key)) == 1
    with pytest.raises(dg.Failure, match=f"partition 'elsewhere' is not a configured documents folder \\(configured: {key}\\)"):
        invoke(documents, "elsewhere", resources, config=IngestConfig())


FILES = {
    "lighthouse.txt": PROSE,
    "gazpacho.md": "# Gazpacho andaluz\n\nEl gazpacho es una sopa fría de tomate, pepino, pimiento, ajo, aceite de oliva y "
                   "vinagre. Se tritura todo, se cuela y se sirve muy frío en verano.",
    "chateaux.html": "<html><head><title>Les châteaux de la Loire</title><script>var x = 1;</script></head><body>"
                     "<p>Les châteaux de la Loire furent construits par les rois de France à la Renaissance. Chambord "
                     "possède un célèbre escalier à double révolution.</p></body></html>",
    "fahrrad.json": json.dumps({"title": "Fahrradpflege", "kette": "Die Kette regelmäßig reinigen und ölen, damit sie "
                                "leise läuft und nicht rostet.", "reifen": "Den Reifendruck jede Woche prüfen."},
                               ensure_ascii=False),
}


def _messages(error):
    while error is not None:  # Dagster wraps the asset's own exception: keep every message in the chain
        yield error.message
        error = error.cause


def materialize(env, asset, config=None):
    """One real in-process run of `asset` for the folder's partition (`config`: the documents asset's run config)."""
    selection = dg.AssetSelection.assets(asset)
    if asset == DOCUMENTS.embeddings_asset:
        selection = selection.without_checks()  # the coverage check estimates backfills: not what these tests look at
    run_config = {**QUIET_CONSOLE, **({"ops": {"documents": {"config": config}}} if config else {})}
    result = dg.materialize([*env.defs.assets, *env.defs.asset_checks], selection=selection, instance=env.instance,
                            resources=env.resources, partition_key=env.key, raise_on_error=False, run_config=run_config)
    metadata = {name: getattr(value, "value", value) for event in result.get_asset_materialization_events()
                for name, value in event.step_materialization_data.materialization.metadata.items()}
    failure = " ".join(m for e in result.all_node_events if e.is_step_failure for m in _messages(e.step_failure_data.error))
    return SimpleNamespace(success=result.success, metadata=metadata, failure=failure)


def materialize_folder(env):
    """The sensor's job (`documents`), then what automation runs after it: chunks and embeddings."""
    return SimpleNamespace(documents=materialize(env, "documents"), chunks=materialize(env, "document_chunks"),
                           embeddings=materialize(env, DOCUMENTS.embeddings_asset))


def data_version(instance, asset, key):
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[key]), 1)
    return records.records[0].asset_materialization.tags["dagster/data_version"]


class Lake:
    """The stored state a test looks at, read fresh each time."""

    def __init__(self, resources, key):
        self.resources, self.key = resources, key
        self.lake = resources["lake"].lake()
        self.encoder = resources["models"].registry().target(DOCUMENTS)

    def chunks(self):
        return self.lake.table(DOCUMENT_CHUNKS).read_partition(self.key)

    def by_path(self):
        found = {}
        for row in self.chunks():
            found.setdefault(row["metadata"]["path"], []).append(row)
        return {path: sorted(rows, key=lambda r: r["chunk_index"]) for path, rows in found.items()}

    def vectors(self):
        return {row["row_key"]: row for row in embeddings_table(DOCUMENTS, self.lake, self.encoder).read_partition(self.key)}


@pytest.fixture(scope="module")
def folder_lake(tmp_path_factory):
    """A temporary folder of four small files in four languages, materialized into a fresh DAGSTER_HOME."""
    root = tmp_path_factory.mktemp("documents")
    folder = root / "docs"
    folder.mkdir()
    for name, text in FILES.items():
        (folder / name).write_text(text)
    home = make_home(root / "dagster_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(home))
        for name in ("DLK_MODELS_FILE", "DLK_TEXT_ENCODER"):
            patch.delenv(name, raising=False)
        source = DocumentSourceResource(folders=[str(folder)], chunk_chars=160, overlap_chars=60, tenant_id="acme")
        resources = sample_resources(documents_source=source)
        key = document_folder(folder).key
        with dg.DagsterInstance.ephemeral() as instance:
            instance.add_dynamic_partitions(document_folders.name, [key])
            env = SimpleNamespace(folder=folder, home=home, key=key, resources=resources, instance=instance,
                                  defs=definitions(resources), lake=Lake(resources, key))
            env.first = materialize_folder(env)
            yield env


def test_a_folder_becomes_documents_and_chunk_records_with_every_seed_field(folder_lake):
    first, lake = folder_lake.first, folder_lake.lake
    assert first.documents.success and first.chunks.success and first.embeddings.success, first
    assert first.documents.metadata["documents"] == 4 and first.documents.metadata["skipped"] == 0
    stored_files = lake.lake.table(DOCUMENTS_TABLE).read_partition(folder_lake.key)
    store = folder_lake.resources["files"].store()
    for row in stored_files:
        data = (folder_lake.folder / row["path"]).read_bytes()
        assert store.get(row["file_id"]) == data and row["sha256"] == sha256_hex(data) and row["bytes"] == len(data)
    assert {r["path"]: r["content_type"] for r in stored_files} == {
        "lighthouse.txt": "text/plain", "gazpacho.md": "text/markdown", "chateaux.html": "text/html", "fahrrad.json": "application/json"}
    by_path = lake.by_path()
    assert {path: {r["language"] for r in rows} for path, rows in by_path.items()} == {
        "lighthouse.txt": {"en"}, "gazpacho.md": {"es"}, "chateaux.html": {"fr"}, "fahrrad.json": {"de"}}
    assert len(by_path["lighthouse.txt"]) >= 2
    document_ids = {row["path"]: row["document_id"] for row in stored_files}
    for path, rows in by_path.items():
        assert [r["chunk_index"] for r in rows] == list(range(len(rows))) and {r["chunk_count"] for r in rows} == {len(rows)}
        for row in rows:
            assert set(RECORD_COLUMNS) <= set(row) and set(RECORD_FIELDS) - {"model"} <= set(row)
            for field in ("id", "chunk_id", "document_id"):
                assert uuid.UUID(row[field]).version == 4 and str(uuid.UUID(row[field])) == row[field]
            assert row["row_key"] == row["id"] != row["chunk_id"] and row["document_id"] == document_ids[path]
            assert row["content"] and len(row["content"]) <= 160 and "var x" not in row["content"]
            assert row["content_hash"] == sha256_hex(row["content"].encode("utf-8"))
            assert row["metadata"] == {"tenant_id": "acme", "folder": document_folder(folder_lake.folder).name, "path": path,
                                       "title": row["metadata"]["title"]} and row["tenant_id"] == "acme"
            assert TIMESTAMP.fullmatch(row["created_at"]) and row["updated_at"] == row["created_at"]
    assert by_path["chateaux.html"][0]["metadata"]["title"] == "Les châteaux de la Loire"
    vectors = lake.vectors()
    assert set(vectors) == {row["row_key"] for row in lake.chunks()}
    for row in lake.chunks():
        vector = vectors[row["row_key"]]
        assert {name: vector[name] for name in RECORD_COLUMNS} == {name: row[name] for name in RECORD_COLUMNS}
        assert vector["model"] == "all-MiniLM-L6-v2" and vector["embedding"].shape == (384,)
        assert np.isclose(np.linalg.norm(vector["embedding"]), 1.0, atol=1e-4)
    assert first.embeddings.metadata["items_embedded"] == len(vectors)


def test_a_rerun_over_unchanged_files_writes_identical_rows_and_embeds_nothing(folder_lake):
    instance, key, lake = folder_lake.instance, folder_lake.key, folder_lake.lake
    before_chunks, before_vectors = lake.chunks(), lake.vectors()
    versions = {asset: data_version(instance, asset, key) for asset in ("documents", "document_chunks")}
    again = materialize_folder(folder_lake)
    assert again.chunks.metadata["chunks_unchanged"] == len(before_chunks) and again.chunks.metadata["chunks_new"] == 0
    assert [{n: r[n] for n in RECORD_COLUMNS} for r in lake.chunks()] == [{n: r[n] for n in RECORD_COLUMNS} for r in before_chunks]
    assert again.embeddings.metadata["cached"] is True and again.embeddings.metadata["items_embedded"] == 0
    assert {k: v["dagster_run_id"] for k, v in lake.vectors().items()} == {k: v["dagster_run_id"] for k, v in before_vectors.items()}
    assert {asset: data_version(instance, asset, key) for asset in versions} == versions


def test_editing_one_file_embeds_only_its_changed_chunks(folder_lake):
    lake = folder_lake.lake
    before, before_vectors = lake.by_path(), lake.vectors()
    last = PROSE.split(". ")[-1]
    (folder_lake.folder / "lighthouse.txt").write_text(PROSE.replace(last, "At dawn he put out the lamp and wrote the wind and "
                                                                           "the weather in the log."))
    edited = materialize_folder(folder_lake)
    after, after_vectors = lake.by_path(), lake.vectors()
    old = {row["id"]: row for row in before["lighthouse.txt"]}
    changed = [row for row in after["lighthouse.txt"] if row["content_hash"] != old[row["id"]]["content_hash"]]
    assert [row["chunk_index"] for row in changed] == [len(after["lighthouse.txt"]) - 1]  # the last sentence's chunk only
    assert edited.embeddings.metadata["items_embedded"] == 1 and edited.embeddings.metadata["cached"] is False
    assert edited.embeddings.metadata["reused"] == len(after_vectors) - 1
    assert edited.chunks.metadata["chunks_changed"] == 1 and edited.chunks.metadata["chunks_unchanged"] == len(after_vectors) - 1
    (new,) = changed
    assert new["created_at"] == old[new["id"]]["created_at"] and new["updated_at"] > old[new["id"]]["updated_at"]
    assert not np.allclose(after_vectors[new["id"]]["embedding"], before_vectors[new["id"]]["embedding"])
    for row_key, vector in after_vectors.items():  # every other vector kept as stored: same values, same run that made it
        if row_key != new["id"]:
            assert vector["dagster_run_id"] == before_vectors[row_key]["dagster_run_id"]
            assert np.array_equal(vector["embedding"], before_vectors[row_key]["embedding"])

    def records(chunks):
        return {path: [{n: r[n] for n in RECORD_COLUMNS} for r in rows] for path, rows in chunks.items() if path != "lighthouse.txt"}
    assert records(after) == records(before)


def test_a_renamed_file_carries_its_vectors_over_by_content_hash(folder_lake):
    """A new path is a new document (new ids, new metadata), but its chunks' content is already embedded:
    nothing is embedded again, and each new record takes the vector stored for its content_hash."""
    lake, folder = folder_lake.lake, folder_lake.folder
    before_vectors = lake.vectors()
    old = {row["content_hash"]: row for row in lake.by_path()["lighthouse.txt"]}
    for source, target in (("lighthouse.txt", "phare.txt"), ("phare.txt", "lighthouse.txt")):
        (folder / source).rename(folder / target)
        moved = materialize_folder(folder_lake)
        assert moved.embeddings.metadata["items_embedded"] == 0, target
        assert moved.embeddings.metadata["reused"] == len(lake.vectors())
        rows, vectors = lake.by_path()[target], lake.vectors()
        assert source not in lake.by_path() and {row["content_hash"] for row in rows} == set(old)
        for row in rows:
            donor = before_vectors[old[row["content_hash"]]["id"]]
            assert vectors[row["id"]]["metadata"]["path"] == target
            assert np.array_equal(vectors[row["id"]]["embedding"], donor["embedding"])
            assert vectors[row["id"]]["dagster_run_id"] == donor["dagster_run_id"]  # the run that made the vector


def test_deleting_a_file_removes_its_document_chunks_and_vectors(folder_lake):
    key, lake = folder_lake.key, folder_lake.lake
    gone = {row["id"] for row in lake.by_path()["gazpacho.md"]}
    (folder_lake.folder / "gazpacho.md").unlink()
    deleted = materialize_folder(folder_lake)
    assert deleted.documents.success and deleted.documents.metadata["documents_removed"] == 1
    assert deleted.chunks.metadata["chunks_removed"] == len(gone)
    assert "gazpacho.md" not in lake.by_path() and not gone & set(lake.vectors())
    assert deleted.embeddings.metadata["items_embedded"] == 0
    assert [r["path"] for r in lake.lake.table(DOCUMENTS_TABLE).read_partition(key)].count("gazpacho.md") == 0


def test_an_undecodable_file_is_skipped_and_named_and_never_silently_drops_a_stored_one(folder_lake):
    lake, folder = folder_lake.lake, folder_lake.folder
    (folder / "legacy.txt").write_bytes("Crème brûlée, écrit en Latin-1.".encode("latin-1"))
    added = materialize_folder(folder_lake)
    assert added.documents.success and added.documents.metadata["skipped"] == 1
    assert "legacy.txt" in added.documents.metadata["skipped_items"] and "not UTF-8" in added.documents.metadata["skipped_items"]
    # A file stored before that stops decoding: the run fails, names it, and keeps its rows.
    stored = lake.by_path()["chateaux.html"]
    (folder / "chateaux.html").write_bytes("<p>Ch\xe2teau</p>".encode("latin-1"))
    refused = materialize(folder_lake, "documents")
    assert not refused.success and "refusing to drop 1 stored row(s)" in refused.failure and "chateaux.html" in refused.failure
    assert lake.by_path()["chateaux.html"] == stored
    allowed = materialize(folder_lake, "documents", config={"allow_shrink": True})
    assert allowed.success and allowed.metadata["documents_removed"] == 1
    assert materialize(folder_lake, "document_chunks").success and materialize(folder_lake, DOCUMENTS.embeddings_asset).success
    assert "chateaux.html" not in lake.by_path()


def test_the_served_documents_dataset_gets_a_record_by_id_for_its_tenant_only(folder_lake):
    """`dlk serve` attaches the documents table as a read-only dataset (keyed by record id, not tenant and id)."""
    table = embeddings_table(DOCUMENTS, folder_lake.lake.lake, folder_lake.lake.encoder)
    info = DatasetInfo(name="documents", dimensions=384, model="all-MiniLM-L6-v2", created_at="", read_only=True,
                       table=table.schema.name)
    store = VectorStore(folder_lake.lake.lake, attached={"documents": lambda: (info, table)})
    chunk = folder_lake.lake.chunks()[0]  # whichever files the tests before left in the folder
    record = store.get("documents", "acme", chunk["id"])
    assert (record.id, record.content, record.language) == (chunk["id"], chunk["content"], chunk["language"])
    assert len(record.values) == 384
    for tenant, vector_id in (("globex", chunk["id"]), ("acme", str(uuid.uuid4()))):
        with pytest.raises(VectorServiceError) as refused:
            store.get("documents", tenant, vector_id)
        assert refused.value.error_code == "VECTOR_NOT_FOUND"


def test_search_finds_the_document_in_every_mode_and_lineage_follows_it(folder_lake):
    resources, lake = folder_lake.resources, folder_lake.lake
    operator = Operator(folder_lake.instance, definitions(resources), resources, log=lambda _: None)
    operator.build_index(DOCUMENTS)
    table = embeddings_table(DOCUMENTS, lake.lake, lake.encoder)
    assert table.indexes() == {"embedding": "clustered", "content": "bm25"}
    for mode, query in (("vector", "who keeps the light burning for ships at night"), ("bm25", "lighthouse wick lens keeper"),
                        ("hybrid", "the keeper trimmed the wick of the lamp")):
        hits = search_table(DOCUMENTS, table, lake.encoder, query, mode, 3)
        assert hits[0].values["metadata"]["path"] == "lighthouse.txt", (mode, hits)
    bikes = search_documents(table, lake.encoder, "Kette reinigen und ölen", "hybrid", 1)
    assert bikes[0].values["metadata"]["path"] == "fahrrad.json" and bikes[0].values["language"] == "de"
    with pytest.raises(ValueError, match="unknown documents search mode 'maxsim'"):
        search_documents(table, lake.encoder, "x", "maxsim", 1)
    chain = trace_item(DOCUMENTS, lake.lake, resources["models"].registry(), "fahrrad.json", folder_lake.home / "slices")
    assert chain and chain[0].origin["path"] == "fahrrad.json" and chain[0].rows[0][0] == "documents"
    assert [e.encoder_fingerprint for e in chain[0].embeddings] == [lake.encoder.fingerprint]
    by_id = trace_item(DOCUMENTS, lake.lake, resources["models"].registry(), chain[0].rows[0][1], folder_lake.home / "slices")
    assert [link.row_key for link in by_id] == [link.row_key for link in chain]


# ---- the shipped corpus and probes --------------------------------------------------------------------------------

def test_the_sample_corpus_and_readmes_pass_the_probes_and_the_gate(tmp_path, monkeypatch, capsys):
    home = make_home(tmp_path / "dagster_home")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    for name in ("DLK_MODELS_FILE", "DLK_TEXT_ENCODER"):
        monkeypatch.delenv(name, raising=False)
    resources = sample_resources()  # the default folders: the sample corpus and the project's READMEs
    with dg.DagsterInstance.ephemeral() as instance:
        operator = Operator(instance, definitions(resources), resources, log=lambda _: None)
        keys = operator.ingest(DOCUMENTS)
        assert keys[0] == "data-documents-sample" and {"defs-coco", "defs-documents", "defs-swe_traces"} <= set(keys)
        lake = resources["lake"].lake()
        languages = {r["metadata"]["path"]: r["language"] for r in lake.table(DOCUMENT_CHUNKS).read_partition(keys[0])}
        assert len(languages) == len(list(SAMPLE_FOLDER.iterdir()))
        assert {languages[p] for p in ("paella.md", "abeilles.html", "kaffeehaus.txt", "alpenwanderung.json")} == {"es", "fr", "de"}
        outcome = operator.build_index(DOCUMENTS)
        assert outcome.checks["documents_cutover_gate"].passed
        encoder = resources["models"].registry().target(DOCUMENTS)
        score = probe_score(DOCUMENTS, lake, encoder)
        with capsys.disabled():
            print(f"\ndocuments probe recall@{score.k} ({len(score.results)} queries): {score.recall:.3f}")
        assert score.recall == 1.0, [(r.query, r.recall) for r in score.results if r.recall < 1]
        assert operator.cutover(DOCUMENTS).success

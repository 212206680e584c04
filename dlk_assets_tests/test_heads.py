"""A long-lived reader refreshes only when the writers' record says the table moved (`heads.py`), and
still sees every write: at once when it went through the table's lock, within a second otherwise."""

import time

import deeplake
import pytest

from dlk_assets.lake.deeplake_local import HEAD_TRUSTED_S, LocalDeepLake
from dlk_assets.lake.heads import WRITING, read_head
from dlk_assets.lake.schema import Column, Kind, TableSchema
from dlk_assets.lake.validation import RowValidationError

SCHEMA = TableSchema("headed", (Column("value", Kind.INT),))


def test_a_reader_sees_each_locked_write_at_once_and_skips_refreshes_between_them(tmp_path):
    writer = LocalDeepLake(tmp_path).table(SCHEMA)
    writer.append("p", [{"row_key": "k0", "value": 0}], "first")
    reader = LocalDeepLake(tmp_path).table(SCHEMA)  # another dataset object, as in another process
    head = tmp_path / ".locks" / next(p.name for p in (tmp_path / ".locks").glob("*.head"))
    for step in range(1, 4):
        writer.append("p", [{"row_key": f"k{step}", "value": step}], f"step {step}")
        assert read_head(head) == writer.version
        assert reader.row_keys("p") == {f"k{i}" for i in range(step + 1)}  # no wait, no stale answer
        refreshed = reader._refreshed_at
        assert reader.read_rows(["k1"])["k1"]["value"] == 1
        assert reader._refreshed_at == refreshed  # nothing written since: the record spared the refresh


def test_a_failed_write_leaves_readers_refreshing_until_the_next_write(tmp_path):
    writer = LocalDeepLake(tmp_path).table(SCHEMA)
    writer.append("p", [{"row_key": "a", "value": 1}], "first")
    reader = LocalDeepLake(tmp_path).table(SCHEMA)
    with pytest.raises(RowValidationError):
        writer.append("q", [{"row_key": "a", "value": 2}], "clash")  # fails inside the lock
    head = next((tmp_path / ".locks").glob("*.head"))
    assert read_head(head) == WRITING
    before = reader._refreshed_at
    reader.row_keys("p")
    assert reader._refreshed_at > before  # no trusted record: every read refreshes, as a killed writer needs
    writer.append("q", [{"row_key": "b", "value": 2}], "second")
    assert read_head(head) == writer.version and reader.row_keys("q") == {"b"}


def test_a_write_around_the_lock_is_seen_within_the_trusted_interval(tmp_path):
    writer = LocalDeepLake(tmp_path).table(SCHEMA)
    writer.append("p", [{"row_key": "a", "value": 1}], "first")
    reader = LocalDeepLake(tmp_path).table(SCHEMA)
    assert reader.row_keys("p") == {"a"}
    dataset = deeplake.open(writer.uri)  # a tool writing the dataset directly leaves the record as it was
    dataset.append({"partition": ["p"], "row_key": ["around"], "value": [2]})
    dataset.commit("around the lock")
    time.sleep(HEAD_TRUSTED_S + 0.1)
    assert reader.row_keys("p") == {"a", "around"}

"""Writers racing on one real table from separate processes, and writers killed with SIGKILL.

Dagster runs each partition in its own process, so these start real processes (spawn) that wait on
one barrier and then write at the same moment; every test checks the stored rows afterwards.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

from dlk_assets.lake.deeplake_local import LocalDeepLake
from dlk_assets.lake.locks import TableLockTimeout, table_write_lock

from .writers import EVENTS, event_rows, gather_outcomes

SPAWN = multiprocessing.get_context("spawn")


def race(target, argument_lists: list[tuple]) -> dict[str, tuple[str, str]]:
    """Run `target(*args, barrier, results)` in one process per argument list, all released together."""
    barrier, results = SPAWN.Barrier(len(argument_lists)), SPAWN.Queue()
    processes = [SPAWN.Process(target=target, args=(*args, barrier, results)) for args in argument_lists]
    for process in processes:
        process.start()
    return gather_outcomes(processes, results, wait_s=180)


def stored_keys(root) -> dict[str, list[str]]:
    table = LocalDeepLake(root).table(EVENTS)
    return {partition: [r["row_key"] for r in table.read_partition(partition)] for partition in table.partition_counts()}


@pytest.mark.parametrize("trial", range(3))
def test_one_key_written_into_two_partitions_at_once_is_stored_once(tmp_path, trial):
    from .writers import replace_rows

    rows = event_rows("shared", 1)
    outcomes = race(replace_rows, [(str(tmp_path), "pA", rows), (str(tmp_path), "pB", rows)])
    winners = [name for name, (status, _) in outcomes.items() if status == "ok"]
    assert len(winners) == 1, outcomes
    loser = "pB" if winners == ["pA"] else "pA"
    assert outcomes[loser][0] == "RowValidationError" and "already belongs to partition" in outcomes[loser][1]
    assert stored_keys(tmp_path) == {winners[0]: ["shared:00000"]}
    # The winner's partition can be re-run, the loser's stays empty: no key is stuck in two places.
    LocalDeepLake(tmp_path).table(EVENTS).replace_partition(winners[0], rows, "re-run")
    assert stored_keys(tmp_path) == {winners[0]: ["shared:00000"]}


def test_one_partition_replaced_by_two_processes_at_once_holds_one_write_whole(tmp_path):
    from .writers import replace_rows

    first, second = event_rows("first", 300), event_rows("second", 200)
    outcomes = race(replace_rows, [(str(tmp_path), "p", first), (str(tmp_path), "p", second)])
    assert {status for status, _ in outcomes.values()} == {"ok"}
    keys = stored_keys(tmp_path)["p"]
    assert keys in ([r["row_key"] for r in first], [r["row_key"] for r in second])  # never a mix
    stored = LocalDeepLake(tmp_path).table(EVENTS).read_partition("p")
    assert len({r["text"].split()[0] for r in stored}) == 1


def test_append_missing_twice_at_once_stores_every_key_once(tmp_path):
    from .writers import append_shard

    LocalDeepLake(tmp_path).table(EVENTS).append("shard", event_rows("t", 10), "earlier run")
    rows = event_rows("t", 60)
    outcomes = race(append_shard, [(str(tmp_path), "sensor", "shard", rows), (str(tmp_path), "backfill", "shard", rows)])
    assert {status for status, _ in outcomes.values()} == {"ok"}, outcomes
    keys = stored_keys(tmp_path)["shard"]
    assert sorted(keys) == [r["row_key"] for r in rows]
    assert len(LocalDeepLake(tmp_path).table(EVENTS)) == 60


def test_a_table_created_by_four_processes_at_once_exists_once(tmp_path):
    from .writers import create_table

    outcomes = race(create_table, [(str(tmp_path), f"w{i}") for i in range(4)])
    assert {status for status, _ in outcomes.values()} == {"ok"}, outcomes
    table = LocalDeepLake(tmp_path).table(EVENTS)
    table.replace_partition("p", event_rows("x", 2), "after creation")
    assert stored_keys(tmp_path) == {"p": ["x:00000", "x:00001"]}


def test_a_held_lock_makes_the_second_writer_wait_and_then_say_which_table(tmp_path):
    code = ("import sys; from dlk_assets.lake.locks import table_write_lock\n"
            "try:\n    table_write_lock(sys.argv[1], 'events', timeout_s=0.5).__enter__()\n"
            "except RuntimeError as e:\n    print(e); sys.exit(3)\n")
    with table_write_lock(tmp_path / ".locks", "events"):
        child = subprocess.run([sys.executable, "-c", code, str(tmp_path / ".locks")], capture_output=True, text=True,
                               timeout=60, check=False)
        errors: list[Exception] = []  # the same holds between threads of one process
        worker = threading.Thread(target=_try_lock, args=(tmp_path, errors))
        worker.start()
        worker.join()
    assert child.returncode == 3 and "table 'events' is being written by another process" in child.stdout
    assert len(errors) == 1 and isinstance(errors[0], TableLockTimeout)


def _try_lock(tmp_path, errors):
    try:
        with table_write_lock(tmp_path / ".locks", "events", timeout_s=0.3):
            pass
    except TableLockTimeout as exc:
        errors.append(exc)


VICTIM = """
import sys
from dlk_assets_tests.writers import replace_forever
class Ready:
    def set(self):
        print("ready", flush=True)
replace_forever(sys.argv[1], "victim", Ready())
"""
AFTER = """
import sys
from dlk_assets_tests.writers import timed_commits
print(max(timed_commits(sys.argv[1], "after", 4)))
"""


@pytest.mark.parametrize("trial", range(2))
def test_a_writer_killed_mid_write_leaves_whole_rows_and_no_stuck_lock(tmp_path, trial):
    table = LocalDeepLake(tmp_path).table(EVENTS)
    table.replace_partition("stable", event_rows("stable", 50), "stored long before")
    victim = subprocess.Popen([sys.executable, "-c", VICTIM, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                              cwd=os.path.dirname(os.path.dirname(__file__)))
    assert victim.stdout.readline().strip() == "ready"
    time.sleep(random.Random(trial).uniform(0.3, 2.0))
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    table = LocalDeepLake(tmp_path).table(EVENTS)
    assert [r["row_key"] for r in table.read_partition("stable")] == [r["row_key"] for r in event_rows("stable", 50)]
    victim_rows = table.read_partition("victim")
    assert len(victim_rows) in (0, 2000) and len({r["text"].split()[0] for r in victim_rows}) <= 1  # one round, whole
    after = subprocess.run([sys.executable, "-c", AFTER, str(tmp_path)], capture_output=True, text=True, timeout=120, check=False,
                           cwd=os.path.dirname(os.path.dirname(__file__)))
    assert after.returncode == 0, after.stderr
    # Not asserted: Deep Lake's 2 s "predecessor commits did not materialize" stall after the kill. It
    # still shows now and then (issue 10, case 4, open); the rows and the lock are what this test pins.
    assert [r["row_key"] for r in LocalDeepLake(tmp_path).table(EVENTS).read_partition("after")] == ["after3:00000", "after3:00001", "after3:00002"]


def test_append_with_skip_existing_leaves_out_keys_the_partition_holds_and_refuses_others(tmp_path):
    from dlk_assets.lake.validation import RowValidationError

    table = LocalDeepLake(tmp_path).table(EVENTS)
    table.append("shard", event_rows("t", 5), "first writer")
    write = table.append("shard", event_rows("t", 8), "second writer", skip_existing=True)
    assert (write.rows_written, write.rows_already_present) == (3, 5)
    assert stored_keys(tmp_path) == {"shard": [r["row_key"] for r in event_rows("t", 8)]}
    with pytest.raises(RowValidationError, match="already belongs to partition 'shard'"):
        table.append("other", event_rows("t", 1), "another shard", skip_existing=True)
    assert stored_keys(tmp_path) == {"shard": [r["row_key"] for r in event_rows("t", 8)]}

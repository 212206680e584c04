"""Find and repair what crashes and full disks leave in a local lake and file store.

- A write that hit ENOSPC leaves an empty commit counter (`Invalid CAS counter: empty` on every later
  write) and a head whose chunks are empty (every read crashes). The repair removes the empty counter,
  so Deep Lake derives it again from its log, and reverts the table to its last readable version with
  Deep Lake's own `revert_to` — an append-only marker: no history is rewritten, the bad commit stays
  in the log, inert.
- Killed file-store writes leave temp files; old ones are removed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from dlk_assets.lake.heads import announced_write
from dlk_assets.lake.local_files import ORPHAN_AGE_S, LocalFileStore
from dlk_assets.lake.locations import LocalFolder

COUNTER = "next_base"
PROBE_TIMEOUT_S = 600


@dataclass(frozen=True)
class Finding:
    """One problem: where, what, and whether it was repaired (and how)."""

    where: str
    problem: str
    repaired: bool = False
    action: str = ""


@dataclass(frozen=True)
class Probe:
    """What reading a table (or a version of it) in a child process gave."""

    readable: bool
    rows: int = 0
    history: tuple[str, ...] = ()
    error: str = ""


def _run(command: list[str]) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return None


def probe(url: str, version: str | None = None) -> Probe:
    """Read everything in a child process; a crash there is an answer, not our crash."""
    done = _run([sys.executable, "-m", "dlk_assets.lake.probe", url, *([version] if version else [])])
    if done is None:
        return Probe(False, error=f"reading took longer than {PROBE_TIMEOUT_S} s")
    if done.returncode != 0:
        reason = f"killed by signal {-done.returncode}" if done.returncode < 0 else (done.stderr.strip().splitlines() or ["failed"])[-1]
        return Probe(False, error=reason)
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return Probe(True, answer["rows"], tuple(answer["history"]))


def _history(url: str) -> tuple[str, ...]:
    # Listing versions only reads the log, which survives a broken head.
    done = _run([sys.executable, "-c", "import sys, deeplake; print(' '.join(v.id for v in deeplake.open_read_only(sys.argv[1]).history))", url])
    return tuple(done.stdout.split()) if done is not None and done.returncode == 0 else ()


def _revert(url: str, version: str, message: str) -> None:
    done = _run([sys.executable, "-c", "import sys, deeplake; deeplake.open(sys.argv[1]).revert_to(sys.argv[2], message=sys.argv[3])",
                 url, version, message])
    if done is None or done.returncode != 0:
        raise RuntimeError(f"revert of {url} to {version} failed: {(done.stderr.strip().splitlines() or ['?'])[-1] if done else 'timed out'}")


def _empty_counters(table_dir: Path) -> list[Path]:
    log = table_dir / "_deeplake_log"
    return [p for p in log.glob(f"*/{COUNTER}") if p.is_file() and p.stat().st_size == 0] if log.is_dir() else []


def _last_readable(url: str) -> tuple[str | None, str]:
    """The newest readable version below the head, and the head's id."""
    history = _history(url)
    if not history:
        return None, "?"
    return next((v for v in reversed(history[:-1]) if probe(url, v).readable), None), history[-1]


def check_table(table_dir: Path, repair: bool) -> list[Finding]:
    """Findings for one table folder. Checking takes no lock (writers go on); a repair holds the table's
    write lock and looks again before it changes anything."""
    url, name = f"file://{table_dir.resolve()}", table_dir.name
    counters, head = _empty_counters(table_dir), probe(url)
    if not counters and head.readable:
        return []
    if not repair:
        findings = [Finding(name, f"empty commit counter {c.relative_to(table_dir)} (a write hit a full disk)") for c in counters]
        if not head.readable:
            good, head_id = _last_readable(url)
            findings.append(Finding(name, f"head version {head_id} is unreadable ({head.error}); "
                                    + (f"last readable version is {good}" if good else "no readable earlier version found")))
        return findings
    findings = []
    lake = LocalFolder(table_dir.parent)
    # A repaired table's head is not one readers have: they refresh until the next write records one.
    with lake.lock(name), announced_write(lake.head_file(name), lambda: None):
        for counter in _empty_counters(table_dir):
            counter.unlink()
            findings.append(Finding(name, f"empty commit counter {counter.relative_to(table_dir)} (a write hit a full disk)",
                                    True, "removed; Deep Lake derives it again from the log"))
        head = probe(url)
        if head.readable:
            return findings
        good, head_id = _last_readable(url)
        problem = f"head version {head_id} is unreadable ({head.error})"
        if good is None:
            return [*findings, Finding(name, problem + "; no readable earlier version found")]
        _revert(url, good, f"dlk doctor: revert to {good}, the last readable version")
        after = probe(url)
        findings.append(Finding(name, problem, after.readable,
                                f"reverted to {good} ({after.rows} rows readable)" if after.readable else f"revert did not help: {after.error}"))
    return findings


def check_lake(lake_root: Path, files_root: Path | None, repair: bool, orphan_age_s: float = ORPHAN_AGE_S) -> list[Finding]:
    """Every table under `lake_root`, and the file store's leftover temp files."""
    findings: list[Finding] = []
    if Path(lake_root).is_dir():
        for table_dir in sorted(p for p in Path(lake_root).iterdir() if p.is_dir() and not p.name.startswith(".")):
            if (table_dir / "_deeplake_log").is_dir():
                findings += check_table(table_dir, repair)
    if files_root is not None:
        store = LocalFileStore(files_root, sweep_older_than_s=None)
        for orphan in store.orphans(orphan_age_s):
            size = orphan.stat().st_size
            if repair:
                orphan.unlink(missing_ok=True)
            findings.append(Finding(f"files/{orphan.relative_to(files_root)}", f"temp file of a killed write ({size} bytes)",
                                    repair, "removed" if repair else ""))
    return findings


def check_object_storage(client, urls: list[str], repair: bool, older_than_s: float = ORPHAN_AGE_S) -> list[Finding]:
    """Multipart uploads a killed write left under each of `urls` (the lake's and the file store's
    prefixes); with `repair` they are aborted, which frees their parts."""
    from dlk_assets.lake.s3_files import abort_multipart_upload, stale_multipart_uploads

    findings = []
    for url in dict.fromkeys(urls):
        for upload in stale_multipart_uploads(client, url, older_than_s):
            if repair:
                abort_multipart_upload(client, url, upload)
            findings.append(Finding(f"{url.split('/')[0]}//{url.split('/')[2]}/{upload.key}",
                                    f"multipart upload of a killed write, started {upload.age_s / 3600:.1f} h ago",
                                    repair, "aborted" if repair else ""))
    return findings

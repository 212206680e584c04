"""The bundled SWE-trace sample: a few hundred agent trajectories with the real dataset's columns.

Shaped like `DCAgent/neulab-nebius-swe-agent-trajectories-sandboxes-traces-terminus-2`: agent,
model, model_provider, date, task, episode, run_id, trial_name and `conversations` (a list of
role/content messages). Each trace is generated from one of a few dozen bug families (task text
with real-looking identifiers and error names, a terminal session that reproduces the bug, patches
and re-runs the tests), in several wordings and repositories, so that keyword (BM25) and semantic
(vector) retrieval behave differently on it. The trial name starts with the family, which is how
the tests' evaluation set knows which traces are relevant.

Rebuild: `python -m dlk_assets.sources.swe_sample` (writes dlk_assets/data/swe_traces_sample.parquet).
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path


@dataclass(frozen=True)
class BugFamily:
    """One kind of bug: the identifier and error a trace mentions, and ways to phrase the task."""

    key: str
    identifier: str
    error: str
    tasks: tuple[str, ...]


FAMILIES = (
    BugFamily("auth_refresh", "refresh_session_token", "TokenExpiredError: access token expired", (
        "Fix TokenExpiredError raised by refresh_session_token when the auth middleware renews an access token",
        "refresh_session_token raises TokenExpiredError instead of issuing a new access token",
        "Auth middleware: refresh_session_token fails with TokenExpiredError for tokens renewed near expiry",
    )),
    BugFamily("api_key_rotation", "rotate_api_key", "AssertionError: old key still accepted", (
        "rotate_api_key leaves the previous API key valid after rotation",
        "After calling rotate_api_key the revoked credential keeps authenticating requests",
        "Key rotation bug: rotate_api_key does not invalidate the old secret in the key store",
    )),
    BugFamily("session_cookie_age", "SESSION_COOKIE_AGE", "AssertionError: cookie max-age 1209 != 1209600", (
        "SESSION_COOKIE_AGE is applied in milliseconds, so the cookie lapses almost at once and the login page comes back",
        "Cookie max-age computed from SESSION_COOKIE_AGE is a thousand times too small; visitors must log in again constantly",
        "Wrong unit for SESSION_COOKIE_AGE makes browser sessions lapse shortly after login",
    )),
    BugFamily("csrf_proxy", "validate_csrf_token", "Forbidden (403): CSRF verification failed", (
        "validate_csrf_token rejects legitimate form posts when the app runs behind a reverse proxy",
        "CSRF verification fails with 403 behind nginx because validate_csrf_token compares the wrong Origin header",
        "Behind a proxy every POST is refused: validate_csrf_token ignores X-Forwarded-Host",
    )),
    BugFamily("password_reset", "PasswordResetTokenGenerator", "AssertionError: reset link still valid", (
        "PasswordResetTokenGenerator keeps a reset link valid after the password was changed",
        "Reset links made by PasswordResetTokenGenerator can be reused after a successful reset",
        "PasswordResetTokenGenerator hash does not include the password hash, so links never expire on change",
    )),
    BugFamily("parse_qsl", "parse_qsl_strict", "AssertionError: [('a', '1')] != [('a', '1'), ('b', '')]", (
        "parse_qsl_strict drops parameters with blank values from the query string",
        "Blank values vanish: parse_qsl_strict('a=1&b=') returns only a",
        "parse_qsl_strict should keep keys whose value is empty",
    )),
    BugFamily("http_date", "parse_http_date", "ValueError: year 2070 is out of range", (
        "parse_http_date misreads two-digit years in RFC 850 dates",
        "RFC 850 dates with a two-digit year are placed in the wrong century by parse_http_date",
        "parse_http_date uses a fixed 1970 pivot instead of the current year for two-digit years",
    )),
    BugFamily("json_bom", "load_settings", "json.decoder.JSONDecodeError: Unexpected UTF-8 BOM", (
        "load_settings crashes with JSONDecodeError on settings files saved with a UTF-8 BOM",
        "Settings written by Windows editors fail to load: load_settings raises JSONDecodeError",
        "load_settings should decode with utf-8-sig so a byte order mark does not break JSON parsing",
    )),
    BugFamily("csv_quotes", "read_records", "AssertionError: 4 columns != 3 columns", (
        "read_records splits quoted CSV fields that contain commas into extra columns",
        "CSV import breaks on values like \"Smith, John\": read_records ignores the quote character",
        "read_records must honour quotechar when a field contains the delimiter",
    )),
    BugFamily("yaml_unsafe", "yaml.load", "yaml.constructor.ConstructorError: could not determine a constructor", (
        "Config loader calls yaml.load without a Loader and executes arbitrary tags; switch to safe_load",
        "yaml.load on untrusted config files allows code execution through python/object tags",
        "Replace yaml.load with yaml.safe_load in the config reader and reject unknown tags",
    )),
    BugFamily("result_cache_growth", "ResultCache", "MemoryError", (
        "ResultCache never evicts entries, so the worker's resident set climbs until the OOM killer stops it",
        "Unbounded ResultCache: long-running workers are terminated by the kernel after a day",
        "Give ResultCache an LRU bound; RSS of the service rises steadily under load",
    )),
    BugFamily("n_plus_one", "select_related", "AssertionError: 101 queries executed, 2 expected", (
        "The order list view issues one SQL query per row (N+1); use select_related for customer",
        "Order list page runs 101 queries for 100 orders because customer is fetched lazily; add select_related",
        "N+1 queries on the orders endpoint: prefetch the customer with select_related",
    )),
    BugFamily("executor_deadlock", "ThreadPoolExecutor", "TimeoutError: shutdown did not finish in 30s", (
        "Shutdown hangs forever when a task submits more work to its own ThreadPoolExecutor",
        "ThreadPoolExecutor deadlock: nested submit from a worker blocks shutdown(wait=True)",
        "The job runner freezes on exit because a worker waits on a future from the same ThreadPoolExecutor",
    )),
    BugFamily("flatten_recursion", "flatten_tree", "RecursionError: maximum recursion depth exceeded", (
        "flatten_tree hits RecursionError on deeply nested category trees; make it iterative",
        "RecursionError in flatten_tree for trees deeper than 1000 levels",
        "Rewrite flatten_tree with an explicit stack to avoid RecursionError",
    )),
    BugFamily("manifest_timeout", "fetch_remote_manifest", "requests.exceptions.ReadTimeout: read timeout=5", (
        "fetch_remote_manifest raises ReadTimeout on slow mirrors; add retries with exponential backoff",
        "ReadTimeout from fetch_remote_manifest aborts the whole sync; retry transient failures",
        "fetch_remote_manifest should retry ReadTimeout and honour Retry-After",
    )),
    BugFamily("currency_rounding", "round_half_even", "AssertionError: Decimal('10.01') != Decimal('10.00')", (
        "Invoice totals are off by one cent; use Decimal with round_half_even instead of float",
        "Money sums drift by a cent because amounts are floats; switch to Decimal and round_half_even",
        "round_half_even must be applied once on the Decimal total, not on each float line item",
    )),
    BugFamily("ratio_zero", "compute_ratio", "ZeroDivisionError: division by zero", (
        "compute_ratio raises ZeroDivisionError when a campaign has no impressions",
        "ZeroDivisionError in compute_ratio for empty denominators; return None instead",
        "Dashboard crashes with ZeroDivisionError from compute_ratio on new accounts",
    )),
    BugFamily("int32_overflow", "cumulative_sum", "AssertionError: -2147483648 != 2147483648", (
        "cumulative_sum overflows int32 on large arrays and returns negative totals",
        "Negative totals from cumulative_sum: the accumulator dtype is int32, use int64",
        "cumulative_sum must promote to int64 before summing to avoid overflow",
    )),
    BugFamily("nan_mean", "nanmean", "RuntimeWarning: Mean of empty slice", (
        "Sensor averages become NaN when one reading is missing; use nanmean",
        "A single missing value turns the daily average into NaN; switch mean to nanmean and handle all-NaN days",
        "nanmean should be used for the rolling average so gaps do not poison it",
    )),
    BugFamily("path_traversal", "safe_join", "AssertionError: '/srv/uploads/../etc/passwd' escaped the root", (
        "safe_join lets '../' segments escape the upload folder",
        "Directory traversal: safe_join does not normalise the path before checking the prefix",
        "safe_join must reject paths that resolve outside the base directory",
    )),
    BugFamily("log_decode", "read_log_file", "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xe9", (
        "read_log_file crashes with UnicodeDecodeError on Latin-1 log lines",
        "UnicodeDecodeError from read_log_file when a log contains byte 0xe9; decode with errors='replace'",
        "read_log_file should not assume UTF-8 for legacy log files",
    )),
    BugFamily("cache_permission", "CACHE_DIR", "PermissionError: [Errno 13] Permission denied: '/root/.cache'", (
        "Writing to CACHE_DIR fails with PermissionError in read-only containers; fall back to a temp dir",
        "PermissionError when CACHE_DIR points to a read-only home directory",
        "Respect XDG_CACHE_HOME and fall back when CACHE_DIR is not writable",
    )),
    BugFamily("cors_errors", "Access-Control-Allow-Origin", "AssertionError: header missing on 500 response", (
        "Error responses lack the Access-Control-Allow-Origin header, so the browser hides the real error",
        "CORS middleware skips Access-Control-Allow-Origin on exception responses",
        "Add Access-Control-Allow-Origin to 4xx and 5xx responses as well",
    )),
    BugFamily("redirect_loop", "ERR_TOO_MANY_REDIRECTS", "ERR_TOO_MANY_REDIRECTS", (
        "HTTPS redirect loops behind the load balancer (ERR_TOO_MANY_REDIRECTS) because X-Forwarded-Proto is ignored",
        "ERR_TOO_MANY_REDIRECTS after enabling SECURE_SSL_REDIRECT behind a TLS-terminating proxy",
        "Trust X-Forwarded-Proto so the SSL redirect does not loop with ERR_TOO_MANY_REDIRECTS",
    )),
    BugFamily("missing_404", "get_object_or_404", "AssertionError: 500 != 404", (
        "Unknown article ids return 500 instead of 404; use get_object_or_404",
        "DoesNotExist bubbles up as a server error; the detail view should call get_object_or_404",
        "Return 404 for missing objects via get_object_or_404 rather than crashing",
    )),
    BugFamily("upload_limit", "MAX_CONTENT_LENGTH", "werkzeug.exceptions.RequestEntityTooLarge: 413", (
        "Large uploads fail with 413 RequestEntityTooLarge although MAX_CONTENT_LENGTH is set to 100 MB",
        "MAX_CONTENT_LENGTH from the environment is read as a string and ignored",
        "RequestEntityTooLarge for 20 MB files: MAX_CONTENT_LENGTH is not parsed as an integer",
    )),
    BugFamily("unique_email_migration", "0042_add_unique_email", "django.db.utils.IntegrityError: UNIQUE constraint failed: users.email", (
        "Migration 0042_add_unique_email fails with IntegrityError on existing duplicate emails",
        "IntegrityError while applying 0042_add_unique_email; deduplicate emails in a data migration first",
        "0042_add_unique_email must merge duplicate accounts before adding the unique constraint",
    )),
    BugFamily("partial_writes", "transaction.atomic", "AssertionError: 1 orphan row found", (
        "An exception halfway through checkout leaves half-written rows; wrap it in transaction.atomic",
        "Orphan payment rows remain after a failed checkout because the writes are not in transaction.atomic",
        "Use transaction.atomic so a failing step rolls back all earlier inserts",
    )),
    BugFamily("naive_datetime", "USE_TZ", "RuntimeWarning: DateTimeField received a naive datetime", (
        "Scheduled reports fire an hour late after the clocks change because datetimes are naive; enable USE_TZ",
        "Naive datetime warnings and DST shifts in reminders; store aware datetimes with USE_TZ",
        "USE_TZ is off, so timestamps jump by an hour at daylight saving transitions",
    )),
    BugFamily("never_awaited", "send_notification", "RuntimeWarning: coroutine 'send_notification' was never awaited", (
        "send_notification is called without await, so no notifications are delivered",
        "RuntimeWarning: coroutine send_notification was never awaited in the signup handler",
        "Await send_notification in the async signup flow; messages are silently dropped",
    )),
    BugFamily("lost_increments", "F('views')", "AssertionError: 87 != 100", (
        "Concurrent page hits lose view count increments; update with F('views') + 1",
        "Race condition on the views counter: read-modify-write loses updates, use F('views')",
        "Page view totals are lower than the real traffic because increments race; use an F('views') expression",
    )),
    BugFamily("flaky_date_test", "test_scheduler_runs_daily", "AssertionError: expected run on 2024-02-29", (
        "test_scheduler_runs_daily fails on leap days because it depends on today's date; freeze time",
        "Flaky test_scheduler_runs_daily: uses the wall clock, breaks at month ends",
        "Make test_scheduler_runs_daily deterministic by injecting the clock",
    )),
    BugFamily("import_cycle", "partially initialized module", "ImportError: cannot import name 'Config' from partially initialized module 'app.config'", (
        "ImportError: cannot import name 'Config' from partially initialized module 'app.config' (circular import)",
        "Circular import between app.config and app.plugins raises ImportError at startup",
        "Break the import cycle: app.config imports app.plugins at module level",
    )),
    BugFamily("pkg_resources", "pkg_resources", "ModuleNotFoundError: No module named 'pkg_resources'", (
        "ModuleNotFoundError: No module named 'pkg_resources' on Python 3.12 without setuptools; use importlib.metadata",
        "Version lookup imports pkg_resources, which is missing in fresh virtualenvs",
        "Replace pkg_resources.get_distribution with importlib.metadata.version",
    )),
    BugFamily("verbose_flag", "--verbose", "AssertionError: log level 30 != 10", (
        "The --verbose flag is parsed but the log level stays at WARNING",
        "CLI ignores --verbose because logging is configured before arguments are parsed",
        "Set the logger to DEBUG when --verbose is passed",
    )),
    BugFamily("email_validation", "validate_email", "ValidationError: 'josé@example.com' is not a valid address", (
        "validate_email rejects internationalised addresses such as josé@example.com",
        "Non-ASCII local parts fail validate_email although the mail server accepts them",
        "validate_email should allow unicode in the local part (RFC 6531)",
    )),
)

REPOS = ("acme/webshop", "acme/billing", "northwind/api", "contoso/portal", "initech/tools",
         "globex/ingest", "umbrella/reports", "hooli/platform")
MODELS = (("nebius/Qwen/Qwen3-Coder-480B-A35B-Instruct", "nebius"), ("nebius/deepseek-ai/DeepSeek-V3", "nebius"),
          ("nebius/meta-llama/Llama-3.3-70B-Instruct", "nebius"))
VARIANTS_PER_FAMILY = 8
SYSTEM_PROMPT = ("You are an AI assistant tasked with solving command-line tasks in a Linux environment. "
                 "You will be given a task description and the output from previously executed commands.")


def _stable_hex(*parts: str, length: int = 8) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:length]


def _conversation(family: BugFamily, task: str, repo: str, solved: bool, variant: int) -> list[dict[str, str]]:
    test_file = f"tests/test_{family.key}.py"
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Task: {task}\nRepository: {repo} (checked out at /workspace)"},
        {"role": "assistant", "content": f"I'll reproduce the failure first.\n```bash\ncd /workspace && python -m pytest -x {test_file} -q\n```"},
        {"role": "user", "content": f"Command output:\nF\n____ test_{family.key} ____\nTraceback (most recent call last):\n"
                                     f"  File \"/workspace/{test_file}\", line {12 + variant}, in test_{family.key}\n{family.error}\n1 failed in 0.{variant + 1}s"},
        {"role": "assistant", "content": f"The failure comes from `{family.identifier}`. I'll inspect it and patch it.\n"
                                          f"```bash\ngrep -rn \"{family.identifier}\" src/ | head\n```"},
        {"role": "user", "content": f"Command output:\nsrc/{family.key}.py:{40 + variant}:    # uses {family.identifier}"},
    ]
    if variant % 4 == 1:
        # Real traces carry quotes, backslashes and non-ASCII text; replay must give them back untouched.
        messages.append({"role": "assistant", "content": "Checking an edge case with quotes and escapes: "
                                                          "'single', \"double\", back\\slash, tab\t, naïve café, 数据 ✓"})
    if solved:
        messages += [
            {"role": "assistant", "content": f"Patched `{family.identifier}`; re-running the tests.\n```bash\npython -m pytest {test_file} -q\n```"},
            {"role": "user", "content": f"Command output:\n{5 + variant} passed in 0.{variant + 2}s"},
            {"role": "assistant", "content": "All tests pass. The task is complete."},
        ]
    else:
        messages += [
            {"role": "assistant", "content": f"Tried a patch to `{family.identifier}`; re-running.\n```bash\npython -m pytest {test_file} -q\n```"},
            {"role": "user", "content": f"Command output:\nF\n{family.error}\n1 failed in 0.{variant + 3}s"},
            {"role": "assistant", "content": "The tests still fail after three attempts; stopping here."},
        ]
    return messages


def sample_rows() -> list[dict]:
    """Every sample trace, in a fixed order (families interleaved, like a real dump)."""
    rows = []
    for variant in range(VARIANTS_PER_FAMILY):
        for number, family in enumerate(FAMILIES):
            task = family.tasks[variant % len(family.tasks)]
            repo = REPOS[(variant + number) % len(REPOS)]
            model, provider = MODELS[(variant + 2 * number) % len(MODELS)]
            solved = (variant + number) % 3 != 0
            run_hex = _stable_hex(family.key, str(variant), length=32)
            rows.append({
                "agent": "terminus-2", "model": model, "model_provider": provider,
                "date": f"2025-{1 + (variant + number) % 12:02d}-{1 + (3 * variant + number) % 28:02d}",
                "task": task, "episode": f"episode-{variant % 3}",
                "run_id": f"{run_hex[:8]}-{run_hex[8:12]}-{run_hex[12:16]}-{run_hex[16:20]}-{run_hex[20:32]}",
                "trial_name": f"{family.key}__{repo.split('/')[1]}__{_stable_hex(family.key, repo, str(variant), length=7)}",
                "conversations": _conversation(family, task, repo, solved, variant),
            })
    return rows


def bundled_sample_path() -> str:
    """Path of the SWE-trace parquet sample shipped inside the package."""
    return str(resources.files("dlk_assets") / "data" / "swe_traces_sample.parquet")


def write_parquet(rows: list[dict], path: str | Path) -> Path:
    """Write trace rows as parquet with the real dataset's column types."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    schema = pa.schema([(name, pa.string()) for name in ("agent", "model", "model_provider", "date", "task", "episode",
                                                          "run_id", "trial_name")] + [("conversations", pa.list_(message))])
    path = Path(path)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else bundled_sample_path()
    print(write_parquet(sample_rows(), target))

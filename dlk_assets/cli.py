"""`dlk`: run the demo, search the lake, manage models, follow lineage, replay traces.

Commands that change the lake drive Dagster with the instance in `$DAGSTER_HOME`: their runs, logs
and check results show in the UI like any other. Errors print one `dlk: ...` line.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import NoReturn


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line instead of argparse's usage block, like every other dlk error.
        print(f"dlk: {message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(2)


class UsageError(ValueError):
    """A command line that names something that does not exist; exits with status 2."""


def _ensure_dagster_home() -> Path:
    # Default to ./dagster_home so `dlk demo` from the repo root matches `dagster dev` there.
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path("dagster_home").resolve()))).resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _context():
    from dlk_assets.profile import resolved_resources

    resources = resolved_resources()
    return resources, resources["lake"].lake(), resources["models"].registry()


def _source(name: str):
    from dlk_assets.defs.sources import SOURCES

    if name not in SOURCES:
        raise UsageError(f"unknown source {name!r}; choose one of {', '.join(SOURCES)}")
    return SOURCES[name]


def _search_text(spec, query: str, k: int, where: str | None, mode: str | None) -> str:
    from dlk_assets.defs.pipeline.hits import format_hits
    from dlk_assets.defs.pipeline.serving import search_served

    if mode is not None and mode not in spec.search.modes:
        raise UsageError(f"{spec.name} searches with {', '.join(spec.search.modes)}; --mode {mode} does not apply")
    _, lake, registry = _context()
    _, hits = search_served(spec, lake, registry, query, mode, k, where)
    return format_hits(hits, spec.search.columns)


def _search_like(spec, like: str, k: int, where: str | None, mode: str | None) -> str:
    from dlk_assets.defs.pipeline.by_example import (
        search_served_like,
        video_query_frames,
    )
    from dlk_assets.defs.pipeline.hits import format_hits

    if mode is not None:
        raise UsageError("--mode does not apply to --like (it compares image features by cosine)")
    resources, lake, registry = _context()
    _, hits = search_served_like(spec, lake, registry, resources["files"].store(), like, k, where,
                                 video_query_frames(resources))
    return format_hits(hits, spec.search.columns)


def _operator(instance, log=print):
    from dlk_assets.operations import Operator
    from dlk_assets.profile import load_definitions, resolved_resources

    return Operator(instance, load_definitions(), resolved_resources(), log)


def cmd_demo(args: argparse.Namespace) -> int:
    import dagster as dg

    from dlk_assets.defs.sources import SOURCES
    from dlk_assets.operations import materialize_sources

    home = _ensure_dagster_home()
    print(f"DAGSTER_HOME={home}")
    with dg.DagsterInstance.get() as instance:
        materialize_sources(_operator(instance), list(SOURCES.values()))
    for name, query, modes in (("coco", args.query, [None]), ("videos", args.query, [None]),
                               ("memory", args.memory_query, ["bm25", "vector", "hybrid"])):
        for mode in modes:
            print(f'\nsearch {name} "{query}"{f" --mode {mode}" if mode else ""} (k={args.k}):')
            print(_search_text(_source(name), query, args.k, None, mode))
    print(f"\nslices exported under {home / 'slices'}; open the UI with: DAGSTER_HOME={home} dagster dev")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    if (args.query is None) == (args.like is None):
        raise UsageError("give a query text or --like FILE, not both" if args.query is not None else
                         "give a query text, or --like FILE to search by example")
    _ensure_dagster_home()
    spec = _source(args.source)
    if args.like is not None:
        print(_search_like(spec, args.like, args.k, args.where, args.mode))
    else:
        print(_search_text(spec, args.query, args.k, args.where, args.mode))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from dlk_assets.defs.swe_traces.replay import (
        format_runs,
        format_trace,
        recent_runs,
        traces_for_run,
    )
    from dlk_assets.defs.swe_traces.tables import SWE_TRACES
    from dlk_assets.lake.tables import require_table

    _ensure_dagster_home()
    _, lake, _ = _context()
    table = require_table(lake, SWE_TRACES, "materialize swe_traces (e.g. `dlk demo`) first")
    if args.list or not args.run_id:
        print(format_runs(recent_runs(table, args.limit)))
        return 0
    traces = traces_for_run(table, args.run_id)
    if not traces:
        raise LookupError(f"no trace with run_id {args.run_id!r} (see `dlk replay --list`)")
    print("\n\n".join(format_trace(trace) for trace in traces))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    import dagster as dg

    from dlk_assets.defs.sources import SOURCES
    from dlk_assets.model_status import format_models

    _ensure_dagster_home()
    _, lake, registry = _context()
    with dg.DagsterInstance.get() as instance:
        print(format_models(list(SOURCES.values()), lake, registry, instance))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    import dagster as dg

    from dlk_assets.migration import migrate

    _ensure_dagster_home()
    spec = _source(args.source)
    _, _, registry = _context()
    with dg.DagsterInstance.get() as instance:
        return migrate(spec, args.to, registry, lambda: _operator(instance))


def cmd_cleanup(args: argparse.Namespace) -> int:
    import dagster as dg

    _ensure_dagster_home()
    spec = _source(args.source)
    with dg.DagsterInstance.get() as instance:
        outcome = _operator(instance).cleanup(spec)
    removed = outcome.value(spec.asset_name("retired_models"), "removed", [])
    kept = outcome.value(spec.asset_name("retired_models"), "kept", [])
    pinned = outcome.value(spec.asset_name("retired_models"), "slices_pinning_removed_tables", {})
    print(f"{spec.name}: removed {len(removed)} table(s){': ' + ', '.join(removed) if removed else ''}")
    print(f"kept: {', '.join(kept)}")
    for slice_name, table in pinned.items():
        print(f"note: slice {slice_name} was pinned to {table}; re-export it to rebuild it on the active model")
    return 0


def cmd_lineage(args: argparse.Namespace) -> int:
    from dlk_assets.lineage import format_lineage, trace_item

    home = _ensure_dagster_home()
    spec = _source(args.source)
    _, lake, registry = _context()
    print(format_lineage(spec, trace_item(spec, lake, registry, args.item, home / "slices")))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from dlk_assets.lake.deeplake_local import LocalDeepLake

    _ensure_dagster_home()
    resources, lake, _ = _context()
    if isinstance(lake, LocalDeepLake):
        findings, where = _doctor_local(resources, lake, args), f"lake {lake.root}"
    else:
        findings, where = _doctor_object_storage(resources, args), f"lake {resources['lake'].url}"
    for finding in findings:
        state = "repaired" if finding.repaired else ("NOT repaired" if args.repair else "found")
        print(f"{finding.where}: {finding.problem} [{state}{': ' + finding.action if finding.action else ''}]")
    open_problems = [f for f in findings if not f.repaired]
    if not findings:
        print(f"{where} and file store are healthy")
    elif open_problems and not args.repair:
        print(f"{len(open_problems)} problem(s); run `dlk doctor --repair` to fix them")
    return 1 if open_problems else 0


def _doctor_local(resources: dict, lake, args: argparse.Namespace) -> list:
    from dlk_assets.lake.doctor import check_lake

    store_resource = resources["files"]
    # Not store(): opening the store sweeps its staging folder, and a check without --repair deletes nothing.
    files_root = Path(store_resource.root_path()) if hasattr(store_resource, "root_path") else None
    return check_lake(lake.root, files_root, args.repair, args.orphan_age_hours * 3600)


def _doctor_object_storage(resources: dict, args: argparse.Namespace) -> list:
    # Deep Lake repairs nothing here the way a local disk needs: no ENOSPC on a bucket. What a killed
    # write leaves is an unfinished multipart upload, billed until it is aborted.
    from dlk_assets.lake.doctor import check_object_storage

    urls = [resources[key].url for key in ("lake", "files") if resources[key].url.startswith("s3://")]
    if not urls:
        raise UsageError("dlk doctor checks a local lake or an s3:// one; this profile has neither")
    return check_object_storage(resources["files"].s3_client(), urls, args.repair, args.orphan_age_hours * 3600)


def cmd_serve(args: argparse.Namespace) -> int:
    import torch
    import uvicorn

    from dlk_assets.profile import resolved_resources
    from dlk_assets.service.app import create_app
    from dlk_assets.service.state import build_state
    from dlk_assets.vectors.known_models import LOCAL_ENCODERS

    # Each request encodes one short query in its own worker thread. Intra-op threads barely speed that
    # up, and while they spin after each op they stole the cores from the numpy scan and Deep Lake reads
    # of the same search (text search over 100k records on 2 cores: 48 ms -> 33 ms with one thread).
    torch.set_num_threads(1)
    home = _ensure_dagster_home()
    state = build_state(resolved_resources(), home, args.api_keys)
    if not args.no_warm_up:  # models load now, so the first search costs what every later one does
        for source, served in state.sources.warm_up().items():
            print(f"{source}: {served}", flush=True)
        for model in LOCAL_ENCODERS:  # what embeds `query_text` on the API's datasets (the same objects)
            encoder = state.vectors.encoder_for(model)
            encoder.load()
            print(f"datasets of {model}: {encoder.name}", flush=True)
    print(f"dlk serve: http://{args.host}:{args.port}/ (API under /api/v1, OpenAPI at /api/v1/openapi.json)", flush=True)
    uvicorn.run(create_app(state), host=args.host, port=args.port, log_level=args.log_level)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dlk", description="dlk-assets: Deep Lake multimodal pipelines on Dagster")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    demo = commands.add_parser("demo", help="materialize the whole graph on the embedded default and search it")
    demo.add_argument("--query", default="a cat")
    demo.add_argument("--k", type=int, default=5)
    demo.add_argument("--memory-query", default="fix authentication bug")
    demo.set_defaults(run=cmd_demo)
    search = commands.add_parser("search", help="search what a source serves (its active model)")
    search.add_argument("source", help="coco (images), videos (SmartSpaces chunks), memory (agent traces) or documents")
    search.add_argument("query", nargs="?", help="the query text (or give --like instead)")
    search.add_argument("--like", default=None, metavar="FILE", help="search by example: an image or video file, or a "
                        "file_id in the file store; finds images (coco) or video chunks (videos) that look like it")
    search.add_argument("--k", type=int, default=10)
    search.add_argument("--where", default=None, help="filter, e.g. \"width >= 300\" (coco) or \"scene_name = 'scene_001'\" (videos)")
    search.add_argument("--mode", default=None, help="the source's search mode: maxsim (coco, videos); hybrid, bm25, vector (memory, documents)")
    search.set_defaults(run=cmd_search)
    replay = commands.add_parser("replay", help="print an agent trace exactly as ingested")
    replay.add_argument("run_id", nargs="?", help="the trace's run_id")
    replay.add_argument("--list", action="store_true", help="show recent run ids")
    replay.add_argument("--limit", type=int, default=10)
    replay.set_defaults(run=cmd_replay)
    models = commands.add_parser("models", help="encoders, and per source the active and target encoder and their coverage")
    models.set_defaults(run=cmd_models)
    migrate = commands.add_parser("migrate", help="move a source to another encoder: backfill, gate, cutover, slices")
    migrate.add_argument("source")
    migrate.add_argument("--to", required=True, help="the encoder to move to (see `dlk models`)")
    migrate.set_defaults(run=cmd_migrate)
    cleanup = commands.add_parser("cleanup", help="remove a source's tables of models that neither serve nor are the target")
    cleanup.add_argument("source")
    cleanup.set_defaults(run=cmd_cleanup)
    lineage = commands.add_parser("lineage", help="follow an item from its source to its file, rows, vectors and slices")
    lineage.add_argument("source")
    lineage.add_argument("item", help="coco: an image_id; videos: <video_id>:<chunk>; memory: an agent run_id; "
                         "documents: a path or document_id")
    lineage.set_defaults(run=cmd_lineage)
    doctor = commands.add_parser("doctor", help="find (and with --repair fix) unreadable tables and leftovers of killed "
                                 "writes (temp files; unfinished multipart uploads on object storage)")
    doctor.add_argument("--repair", action="store_true", help="revert unreadable tables to their last readable version, remove leftovers")
    doctor.add_argument("--orphan-age-hours", type=float, default=6.0, help="temp files and uploads older than this have no live writer")
    doctor.set_defaults(run=cmd_doctor)
    serve = commands.add_parser("serve", help="the vector API, search over the sources, files by id, and a search page")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--api-keys", default=None, help="file of `key tenant_id` lines (default: $DLK_API_KEYS_FILE)")
    serve.add_argument("--no-warm-up", action="store_true", help="load each source's model on its first search instead")
    serve.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    serve.set_defaults(run=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    import warnings

    import dagster as dg

    # Dagster says when a feature we chose on purpose is beta (backfill policies); a terminal user
    # cannot act on that, so it stays out of the command's output.
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    from dotenv import load_dotenv

    from dlk_assets.retrieval.filters import InvalidSearchInput

    # The same settings as `dagster dev`, which reads .env from the folder it starts in; the environment wins.
    load_dotenv(Path.cwd() / ".env", override=False)
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (UsageError, InvalidSearchInput) as exc:
        print(f"dlk: {_one_line(exc)}", file=sys.stderr)
        return 2
    except (LookupError, ValueError) as exc:
        print(f"dlk: {_one_line(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 (a CLI error is one line, whatever raised it)
        print(f"dlk: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return " | ".join(line.strip() for line in text.splitlines() if line.strip())


if __name__ == "__main__":
    sys.exit(main())

"""`dlk`: run the demo and search the lake from a terminal."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _ensure_dagster_home() -> Path:
    # Default to ./dagster_home so `dlk demo` from the repo root matches `dagster dev` there.
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path("dagster_home").resolve()))).resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _coco_search(query: str, k: int, where: str | None) -> str:
    from dlk_assets.defs.coco.search import (
        coco_embeddings_table,
        coco_text_search,
        format_hits,
    )
    from dlk_assets.profile import profile_resources

    resources = profile_resources()
    encoder = resources["image_encoder"].encoder()
    table = coco_embeddings_table(resources["lake"].lake(), encoder)
    return format_hits(coco_text_search(table, encoder, query, k, where))


def _video_search(query: str, k: int, where: str | None) -> str:
    from dlk_assets.defs.smartspaces.search import (
        chunk_embeddings_table,
        format_clip_hits,
        video_text_search,
    )
    from dlk_assets.profile import profile_resources

    resources = profile_resources()
    encoder = resources["image_encoder"].encoder()
    table = chunk_embeddings_table(resources["lake"].lake(), encoder)
    return format_clip_hits(video_text_search(table, encoder, query, k, where))


def _memory_search(query: str, k: int, where: str | None, mode: str = "hybrid") -> str:
    from dlk_assets.defs.swe_traces.search import (
        format_memory_hits,
        memory_table,
        search_memory,
    )
    from dlk_assets.profile import profile_resources

    if where:
        raise ValueError("--where is not supported for memory search")
    resources = profile_resources()
    encoder = resources["text_encoder"].encoder()
    return format_memory_hits(search_memory(memory_table(resources["lake"].lake(), encoder), encoder, query, mode, k))


SEARCHES = {"coco": _coco_search, "videos": _video_search, "memory": _memory_search}


def cmd_demo(args: argparse.Namespace) -> int:
    import dagster as dg

    from dlk_assets.demo import materialize_everything
    from dlk_assets.profile import profile_resources

    home = _ensure_dagster_home()
    print(f"DAGSTER_HOME={home}")
    with dg.DagsterInstance.get() as instance:
        materialize_everything(instance, profile_resources())
    print(f'\nsearch coco "{args.query}" (k={args.k}):')
    print(_coco_search(args.query, args.k, None))
    print(f'\nsearch videos "{args.query}" (k={args.k}): chunks with their start/end seconds')
    print(_video_search(args.query, args.k, None))
    for mode in ("bm25", "vector", "hybrid"):
        print(f'\nsearch memory "{args.memory_query}" --mode {mode} (k={args.k}):')
        print(_memory_search(args.memory_query, args.k, None, mode))
    print(f"\nslices exported under {home / 'slices'}; open the UI with: DAGSTER_HOME={home} dagster dev")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    _ensure_dagster_home()
    if args.source not in SEARCHES:
        print(f"unknown source {args.source!r}; available: {', '.join(SEARCHES)}", file=sys.stderr)
        return 2
    if args.source == "memory":
        print(_memory_search(args.query, args.k, args.where, args.mode))
    elif args.mode != "hybrid":
        print(f"--mode applies to memory search only; {args.source} uses MaxSim", file=sys.stderr)
        return 2
    else:
        print(SEARCHES[args.source](args.query, args.k, args.where))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from dlk_assets.defs.swe_traces.replay import (
        format_runs,
        format_trace,
        recent_runs,
        traces_for_run,
    )
    from dlk_assets.defs.swe_traces.tables import SWE_TRACES
    from dlk_assets.profile import profile_resources
    from dlk_assets.retrieval.text_search import require_table

    _ensure_dagster_home()
    table = require_table(profile_resources()["lake"].lake(), SWE_TRACES, "materialize swe_traces (e.g. `dlk demo`) first")
    if args.list or not args.run_id:
        print(format_runs(recent_runs(table, args.limit)))
        return 0
    traces = traces_for_run(table, args.run_id)
    if not traces:
        print(f"dlk: no trace with run_id {args.run_id!r} (see `dlk replay --list`)", file=sys.stderr)
        return 1
    print("\n\n".join(format_trace(trace) for trace in traces))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dlk", description="dlk-assets: Deep Lake multimodal pipelines on Dagster")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="materialize the whole graph on the embedded default and search it")
    demo.add_argument("--query", default="a cat")
    demo.add_argument("--k", type=int, default=5)
    demo.add_argument("--memory-query", default="fix authentication bug")
    demo.set_defaults(run=cmd_demo)
    search = commands.add_parser("search", help="search an indexed source")
    search.add_argument("source", help="coco (images), videos (SmartSpaces chunks) or memory (agent traces)")
    search.add_argument("query")
    search.add_argument("--k", type=int, default=10)
    search.add_argument("--where", default=None, help="filter, e.g. \"width >= 300\" (coco) or \"scene_name = 'scene_001'\" (videos)")
    search.add_argument("--mode", default="hybrid", choices=("bm25", "vector", "hybrid"), help="memory search only")
    search.set_defaults(run=cmd_search)
    replay = commands.add_parser("replay", help="print an agent trace exactly as ingested")
    replay.add_argument("run_id", nargs="?", help="the trace's run_id")
    replay.add_argument("--list", action="store_true", help="show recent run ids")
    replay.add_argument("--limit", type=int, default=10)
    replay.set_defaults(run=cmd_replay)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (LookupError, ValueError) as exc:
        print(f"dlk: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

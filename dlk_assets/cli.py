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
    from dlk_assets.defs.coco.search import coco_embeddings_table, coco_text_search, format_hits
    from dlk_assets.profile import profile_resources

    resources = profile_resources()
    encoder = resources["image_encoder"].encoder()
    table = coco_embeddings_table(resources["lake"].lake(), encoder)
    return format_hits(coco_text_search(table, encoder, query, k, where))


def _video_search(query: str, k: int, where: str | None) -> str:
    from dlk_assets.defs.smartspaces.search import chunk_embeddings_table, format_clip_hits, video_text_search
    from dlk_assets.profile import profile_resources

    resources = profile_resources()
    encoder = resources["image_encoder"].encoder()
    table = chunk_embeddings_table(resources["lake"].lake(), encoder)
    return format_clip_hits(video_text_search(table, encoder, query, k, where))


SEARCHES = {"coco": _coco_search, "videos": _video_search}


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
    print(f"\nslices exported under {home / 'slices'}; open the UI with: DAGSTER_HOME={home} dagster dev")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    _ensure_dagster_home()
    if args.source not in SEARCHES:
        print(f"unknown source {args.source!r}; available: {', '.join(SEARCHES)}", file=sys.stderr)
        return 2
    print(SEARCHES[args.source](args.query, args.k, args.where))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dlk", description="dlk-assets: Deep Lake multimodal pipelines on Dagster")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="materialize the whole graph on the embedded default and search it")
    demo.add_argument("--query", default="a cat")
    demo.add_argument("--k", type=int, default=5)
    demo.set_defaults(run=cmd_demo)
    search = commands.add_parser("search", help="search an indexed source")
    search.add_argument("source", help="coco (images) or videos (SmartSpaces chunks)")
    search.add_argument("query")
    search.add_argument("--k", type=int, default=10)
    search.add_argument("--where", default=None, help="filter, e.g. \"width >= 300\" (coco) or \"scene_name = 'scene_001'\" (videos)")
    search.set_defaults(run=cmd_search)
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

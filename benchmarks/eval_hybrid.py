"""Agent-memory retrieval quality per search mode and probe split: precision@5 and hit@1.

Materializes the bundled SWE-trace sample (288 traces) into a throwaway DAGSTER_HOME the way the
pipeline does (ingest, MiniLM embeddings, indexes, cutover; about half a minute on a laptop CPU), or
reads one already built (`--home`), then runs every probe of each split through `search_memory` in
each mode at k = 5:

- tuning:      dlk_assets_tests/data/memory_probes_tuning.yaml (the fusion was chosen on it)
- held-out:    dlk_assets_tests/data/memory_probes_heldout.yaml (reported only)
- memory.yaml: dlk_assets/data/probes/memory.yaml (written with the sample; the cutover gate's probes)

A probe's precision@5 is the share of the top 5 that belong to its bug family (every family has 8
traces); hit@1 is whether the first hit does. Rows: bm25, vector, hybrid (the served fusion) and
`hybrid-rrf`, the earlier rank fusion (RRF 0.5 / 0.5 over the same legs) for comparison.
Usage: python benchmarks/eval_hybrid.py [--home DAGSTER_HOME] [--by-kind]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from dlk_assets.defs.swe_traces import search as memory_search
from dlk_assets.encoders.base import QueryCache
from dlk_assets.models.probes import Probe, load_probes, matches, probes_path
from dlk_assets.profile import profile_resources
from dlk_assets.retrieval import text_modes
from dlk_assets.retrieval.requests import Hit

REPO = Path(__file__).resolve().parent.parent
SPLITS = {
    "tuning": REPO / "dlk_assets_tests" / "data" / "memory_probes_tuning.yaml",
    "held-out": REPO / "dlk_assets_tests" / "data" / "memory_probes_heldout.yaml",
    "memory.yaml": probes_path("memory"),
}
K = 5


def precision_and_hit(probes: list[Probe], search: Callable[[str, int], list[Hit]], k: int = K) -> tuple[float, float]:
    """Mean precision@k (matching hits / k) and hit@1 over `probes`."""
    precision = hit = 0.0
    for probe in probes:
        relevant = [matches(h.values, probe.expect) for h in search(probe.query, k)[:k]]
        precision += sum(relevant) / k
        hit += bool(relevant and relevant[0])
    return precision / len(probes), hit / len(probes)


def searches(table, encoder) -> dict[str, Callable[[str, int], list[Hit]]]:
    """Each mode as `search(query, k)` on the memory table, plus the earlier rank fusion."""

    def rrf(query: str, k: int) -> list[Hit]:
        depth = text_modes.fusion_depth(k)
        keyword, semantic = memory_search.bm25_hits(table, query, depth), memory_search.vector_hits(table, encoder, query, depth)
        return text_modes.fuse(keyword, semantic, k)

    modes = {mode: (lambda q, k, mode=mode: memory_search.search_memory(table, encoder, q, mode, k))
             for mode in ("bm25", "vector", "hybrid")}
    return {**modes, "hybrid-rrf": rrf}


def build_memory(home: Path) -> None:
    """The memory source end to end into `home`, with the profile's resources (local by default)."""
    import dagster as dg

    from dlk_assets.defs.pipeline.build import build_definitions
    from dlk_assets.defs.sources import SOURCES
    from dlk_assets.defs.swe_traces.spec import MEMORY
    from dlk_assets.operations import Operator

    resources = profile_resources()
    defs = build_definitions(list(SOURCES.values()), resources["models"].registry(), resources)
    with dg.DagsterInstance.ephemeral() as instance:
        operator = Operator(instance, defs, resources, log=lambda _: None)
        operator.ingest(MEMORY)
        operator.build_index(MEMORY)
        operator.cutover(MEMORY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="a DAGSTER_HOME whose memory is already materialized")
    parser.add_argument("--by-kind", action="store_true", help="also split each probe set by kind")
    args = parser.parse_args()
    for name in ("DLK_MODELS_FILE", "DLK_TEXT_ENCODER", "DLK_LAKE_TENANT"):
        os.environ.pop(name, None)
    with tempfile.TemporaryDirectory() as root:
        home = args.home
        if home is None:
            home = Path(root) / "dagster_home"
            home.mkdir()
            shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
        os.environ["DAGSTER_HOME"] = str(home)
        if args.home is None:
            build_memory(home)
        from dlk_assets.defs.pipeline.serving import embeddings_table
        from dlk_assets.defs.swe_traces.spec import MEMORY

        resources = profile_resources()
        lake = resources["lake"].lake()
        encoder = QueryCache(resources["models"].registry().active(MEMORY, lake))
        table = embeddings_table(MEMORY, lake, encoder)
        columns = {}
        for split, path in SPLITS.items():
            probes = list(load_probes(path).probes)
            groups = {split: probes}
            if args.by_kind:
                groups |= {f"{split}/{kind}": [p for p in probes if p.kind == kind] for kind in sorted({p.kind for p in probes})}
            columns |= {name: group for name, group in groups.items() if group}
        print(f"agent memory, {len(table)} traces, {encoder.name}; precision@{K} / hit@1 (probes per split)")
        headers = [f"{name} ({len(group)})" for name, group in columns.items()]
        widths = [max(17, len(header)) + 3 for header in headers]
        print(f"{'mode':12}" + "".join(f"{header:>{width}}" for header, width in zip(headers, widths)))
        for mode, search in searches(table, encoder).items():
            scores = (precision_and_hit(group, search) for group in columns.values())
            print(f"{mode:12}" + "".join(f"{f'{p:.3f} / {h:.3f}':>{width}}" for (p, h), width in zip(scores, widths)))


if __name__ == "__main__":
    main()

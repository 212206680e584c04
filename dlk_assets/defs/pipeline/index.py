"""A source's index asset and the checks that guard what it serves: counts, vectors, index use, the gate."""


from typing import Any

import dagster as dg
import numpy as np

from dlk_assets.defs.gpu import GPU_STEP
from dlk_assets.defs.markdown import markdown_table
from dlk_assets.defs.pipeline.automation import INDEX_CONDITION
from dlk_assets.defs.pipeline.hits import hits_markdown
from dlk_assets.defs.pipeline.readiness import GateEvaluation, evaluate_gate
from dlk_assets.defs.pipeline.serving import (
    embeddings_table,
    search_table,
    served_encoder,
    serving_table,
)
from dlk_assets.defs.pipeline.spec import SourceSpec
from dlk_assets.defs.pipeline.table_metadata import table_metadata
from dlk_assets.defs.pipeline.versions import combined_version
from dlk_assets.encoders.base import Encoder
from dlk_assets.lake.inspection import partition_count_mismatches, vector_problems
from dlk_assets.lake.schema import Kind
from dlk_assets.lake.tables import Table
from dlk_assets.models.registry import ModelRegistry
from dlk_assets.retrieval.requests import VectorSearch


def _unique(encoders: list[Encoder]) -> list[Encoder]:
    return list({e.fingerprint: e for e in encoders}.values())


def plan_probe(table: Table, column: str) -> VectorSearch:
    """A one-row search on the vector column, to ask the engine whether it would use an index."""
    spec = table.schema.column(column)
    multi = spec.kind is Kind.MULTI_VECTOR
    query = np.ones((1, spec.dim) if multi else spec.dim, np.float32)
    return VectorSearch(column, query, "maxsim" if multi else "vector", 1)


def served_search_path(spec: SourceSpec, table: Table, wait: bool = True) -> str:
    """How a search of the source's vector column is answered at the table's version, with the recall it
    delivers (exact scan, or inverted file with its calibrated recall); `wait=False` does not wait for
    a structure still being built."""
    return table.describe_search(spec.vector_column, plan_probe(table, spec.vector_column).mode, wait=wait)


def build_indexes(spec: SourceSpec, table: Table) -> dict[str, bool]:
    """Make sure every index the source declares exists on `table`; True where one was created now."""
    return {column: table.create_index(column, kind) for column, kind in spec.indexes}


def gate_markdown(evaluation: GateEvaluation) -> str:
    """Recall per probe query, the target beside the active model."""
    target, active = evaluation.target_score, evaluation.active_score
    if target is None:
        return "no target embeddings to score yet"
    headers = ["query", f"{evaluation.target.name} recall@{target.k}"]
    rows = [[r.query, r.recall] for r in target.results]
    if active is not None and evaluation.active is not None:
        headers.append(f"{evaluation.active.name} recall@{active.k}")
        for row, result in zip(rows, active.results):
            row.append(result.recall)
    rows.append(["mean", target.recall, *([active.recall] if active else [])])
    return markdown_table(headers, rows)


def gate_metadata(evaluation: GateEvaluation) -> dict[str, Any]:
    """The gate's numbers for the UI: both encoders, both recalls, the margin, and the reason."""
    decision = evaluation.decision
    return {
        "target_encoder": evaluation.target.name, "target_fingerprint": evaluation.target.fingerprint,
        "active_encoder": evaluation.active.name if evaluation.active else "none (first cutover)",
        "target_recall": decision.target_recall if decision.target_recall is not None else "n/a",
        "active_recall": decision.active_recall if decision.active_recall is not None else "n/a",
        "min_recall_delta": decision.min_recall_delta, "items_missing": decision.items_missing,
        "recall_side_by_side": dg.MetadataValue.md(gate_markdown(evaluation)), "reason": decision.reason,
    }


def build_index(spec: SourceSpec, registry: ModelRegistry, embeddings: dg.AssetsDefinition
                ) -> tuple[dg.AssetsDefinition, list[dg.AssetChecksDefinition]]:
    """The index asset (indexes on the served and the target table) and its four checks."""
    target = registry.target(spec)
    index_kinds = ", ".join(f"{kind} on {column}" for column, kind in spec.indexes)

    @dg.asset(
        name=spec.asset_name("index"), deps=[embeddings], group_name=spec.group, kinds={"deeplake"}, **GPU_STEP,
        code_version=target.fingerprint, automation_condition=INDEX_CONDITION, required_resource_keys={"lake", "models"},
        description=f"The {spec.name} indexes ({index_kinds}) on the served model's table and on the target's, "
                    "with the query plan and a preview search in the metadata.",
    )
    def index(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        registry_now: ModelRegistry = context.resources.models.registry()
        lake = context.resources.lake.lake()
        served = served_encoder(spec, registry_now, lake)
        created, versions = {}, []
        for encoder in _unique([served, registry_now.target(spec)]):
            if lake.exists(spec.embeddings_table_name(encoder.fingerprint)):
                built = embeddings_table(spec, lake, encoder)
                created[encoder.name] = build_indexes(spec, built)
                versions.append(f"{encoder.fingerprint}@{built.version}")
        table = embeddings_table(spec, lake, served)  # opened after the index commits, so it sees them
        plan = table.explain(plan_probe(table, spec.vector_column))
        query = spec.probes.probes[0].query
        hits = search_table(spec, table, served, query, None, 5)
        context.log.info(f"{spec.name}: indexes {table.indexes()} on {table.schema.name}; plan: {plan.splitlines()[0]}")
        return dg.MaterializeResult(metadata={
            **table_metadata(table), "served_by": served.name, "encoder_fingerprint": served.fingerprint,
            "partitions": len(table.partition_counts()), "indexes": dg.MetadataValue.json(table.indexes()),
            "created_now": dg.MetadataValue.json(created), "query_plan": dg.MetadataValue.md(f"```\n{plan[:2000]}\n```"),
            "search_path": served_search_path(spec, table),
            "preview_query": query, "top_hits": dg.MetadataValue.md(hits_markdown(hits, spec.search.columns)),
        }, data_version=combined_version(versions))

    @dg.asset_check(asset=index, name=spec.asset_name("counts_match"), blocking=True, required_resource_keys={"lake", "models"},
                    description="Per partition, the served table has a vector for every row (and files agree with rows).")
    def counts_match(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        lake = context.resources.lake.lake()
        _, table = serving_table(spec, context.resources.models.registry(), lake)
        tables = (*spec.equal_count_tables, spec.rows_table)
        counts = [lake.table(schema).partition_counts() for schema in tables] + [table.partition_counts()]
        bad = partition_count_mismatches(*counts)
        labels = [schema.name for schema in tables] + [table.schema.name]
        # A partition whose source item is stored but produced no rows (a video without chunks) is missing too.
        empty = sorted({p for schema in spec.presence_tables for p in lake.table(schema).partition_counts()} - set(counts[-2]))
        problems = [f"{len(bad)} partition(s) disagree across {', '.join(labels)}: {dict(list(bad.items())[:10])}"] if bad else []
        problems += [f"no {spec.rows_table.name} rows for {empty[:10]}"] if empty else []
        return dg.AssetCheckResult(passed=not problems, metadata={
            "partitions": len(counts[-2]), "rows": sum(counts[-2].values()), "tables": ", ".join(labels),
            "mismatches": dg.MetadataValue.json({p: list(c) for p, c in bad.items()}),
            "partitions_without_rows": dg.MetadataValue.json(empty)}, description="; ".join(problems) or None)

    @dg.asset_check(asset=index, name=spec.asset_name("vectors_valid"), blocking=True, required_resource_keys={"lake", "models"},
                    description="Every served vector has the encoder's dimension and only finite values.")
    def vectors_valid(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        _, table = serving_table(spec, context.resources.models.registry(), context.resources.lake.lake())
        vector_columns = [c for c in table.schema.columns if c.is_vector]
        problems = [f"{c.name}: {p}" for c in vector_columns for p in vector_problems(table, c.name, c.dim)]
        return dg.AssetCheckResult(passed=not problems, metadata={
            "rows": len(table), "columns": ", ".join(c.name for c in vector_columns), "problems": dg.MetadataValue.json(problems[:50])})

    @dg.asset_check(asset=index, name=spec.asset_name("index_used"), blocking=True, required_resource_keys={"lake", "models"},
                    description=f"The served table has its indexes ({index_kinds}) and vector search uses them.")
    def index_used(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        _, table = serving_table(spec, context.resources.models.registry(), context.resources.lake.lake())
        present = table.indexes()
        missing = [f"{kind} on {column}" for column, kind in spec.indexes if present.get(column) != kind]
        plan = table.explain(plan_probe(table, spec.vector_column))
        used = "Index Scan" in plan
        return dg.AssetCheckResult(passed=not missing and used, metadata={
            "indexes": dg.MetadataValue.json(present), "missing": ", ".join(missing) or "none", "index_scan": used,
            "plan": dg.MetadataValue.md(f"```\n{plan[:2000]}\n```")})

    @dg.asset_check(asset=index, name=spec.asset_name("cutover_gate"), blocking=False, required_resource_keys={"lake", "models"},
                    **GPU_STEP,
                    description="The target encoder may serve: it has embedded every row, and its recall on the probe set "
                                "is not worse than the active model's by more than the configured margin.")
    def cutover_gate(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        evaluation = evaluate_gate(spec, context.resources.lake.lake(), context.resources.models.registry())
        return dg.AssetCheckResult(passed=evaluation.decision.passed, severity=dg.AssetCheckSeverity.ERROR,
                                   description=evaluation.decision.reason, metadata=gate_metadata(evaluation))

    return index, [counts_match, vectors_valid, index_used, cutover_gate]

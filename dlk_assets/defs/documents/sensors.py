"""Registers document folders as partitions and runs a folder again whenever its files change."""

import dagster as dg

from dlk_assets.defs.documents.discovery import parse_cursor, plan_folder_runs
from dlk_assets.defs.documents.partitions import document_folders
from dlk_assets.defs.gpu import ensure_gpu_pool
from dlk_assets.resources import DocumentSourceResource
from dlk_assets.sources.documents import folder_fingerprint

DOCUMENTS_JOB = "document_folder_job"


def _fingerprints(context: dg.SensorEvaluationContext, source: DocumentSourceResource) -> dict[str, str]:
    fingerprints = {}
    for folder in source.document_folders():
        try:
            fingerprints[folder.key] = folder_fingerprint(folder.path)
        except OSError as exc:  # a folder that is missing now (an unmounted disk) is not a folder with no files
            context.log.warning(f"{folder.key}: cannot list {folder.path}: {exc}; its stored documents are kept")
    return fingerprints


@dg.sensor(job_name=DOCUMENTS_JOB, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def document_folder_sensor(context: dg.SensorEvaluationContext, documents_source: DocumentSourceResource) -> dg.SensorResult:
    """Registers each configured folder as a partition and runs `document_folder_job` on it; afterwards runs a
    folder again when a file in it is added, edited or deleted (at most `max_runs_per_tick` runs per tick).

    Change detection reads only names, sizes and modification times. Run keys carry the folder's change
    number and fingerprint (`discovery.py`), so a tick evaluated twice launches nothing twice; a partition
    deleted in the UI is not registered again behind the user's back.
    """
    ensure_gpu_pool(context.instance)  # every tick: see register_new_shards
    fingerprints = _fingerprints(context, documents_source)
    registered = set(context.instance.get_dynamic_partitions(document_folders.name))
    plan = plan_folder_runs(fingerprints, registered, parse_cursor(context.cursor), documents_source.max_runs_per_tick)
    if plan.deferred:
        context.log.info(f"{len(plan.deferred)} changed folder(s) left for the next tick: {', '.join(plan.deferred)}")
    if not plan.runs:
        return dg.SensorResult(skip_reason=f"no new or changed document folders: {len(fingerprints)} listed, "
                                           f"{len(registered)} registered", cursor=plan.cursor())
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=run.partition_key, run_key=run.run_key) for run in plan.runs],
        dynamic_partitions_requests=[document_folders.build_add_request(plan.new_keys)] if plan.new_keys else [],
        cursor=plan.cursor(),
    )


def register_all_folders(instance: dg.DagsterInstance, source: DocumentSourceResource) -> list[str]:
    """Register every configured folder that exists (what the sensor does on its first tick); returns their
    keys in registration order."""
    keys = [folder.key for folder in source.document_folders() if folder.path.is_dir()]
    registered = instance.get_dynamic_partitions(document_folders.name)
    new = [key for key in keys if key not in registered]
    if new:
        instance.add_dynamic_partitions(document_folders.name, new)
    return [key for key in instance.get_dynamic_partitions(document_folders.name) if key in keys]

"""Registers newly listed SmartSpaces videos as partitions and asks for them to be ingested."""

import dagster as dg

from dlk_assets.defs.gpu import ensure_gpu_pool
from dlk_assets.defs.smartspaces.discovery import (
    cursor_for,
    new_video_ids,
    seen_from_cursor,
)
from dlk_assets.defs.smartspaces.partitions import smartspaces_videos
from dlk_assets.resources import SmartSpacesSourceResource

VIDEO_JOB = "smartspaces_video_job"


@dg.sensor(job_name=VIDEO_JOB, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.RUNNING)
def smartspaces_video_sensor(context: dg.SensorEvaluationContext, smartspaces_source: SmartSpacesSourceResource) -> dg.SensorResult:
    """Lists the source; registers at most `max_new_videos_per_tick` unseen videos per tick and runs them.

    The cursor remembers every video id it registered, so a partition deleted in the UI stays deleted;
    the run key is the video id, so a tick evaluated twice launches nothing twice.
    """
    ensure_gpu_pool(context.instance)  # every tick: see register_new_shards
    source = smartspaces_source.source()
    listed = [video.video_id for video in source.list_videos()]
    registered = set(context.instance.get_dynamic_partitions(smartspaces_videos.name))
    seen = seen_from_cursor(context.cursor)
    new = new_video_ids(listed, registered, seen, smartspaces_source.max_new_videos_per_tick)
    cursor = cursor_for(seen, registered, new)
    if not new:
        return dg.SensorResult(skip_reason=f"no new videos in {source.label}: {len(listed)} listed, all registered "
                                           f"or deleted before", cursor=cursor)
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=video_id, run_key=video_id) for video_id in new],
        dynamic_partitions_requests=[smartspaces_videos.build_add_request(new)],
        cursor=cursor,
    )


def register_all_videos(instance: dg.DagsterInstance, source: SmartSpacesSourceResource) -> list[str]:
    """Register every video the source lists (what the sensor does over several ticks)."""
    listed = [video.video_id for video in source.source().list_videos()]
    registered = set(instance.get_dynamic_partitions(smartspaces_videos.name))
    new = [video_id for video_id in listed if video_id not in registered]
    if new:
        instance.add_dynamic_partitions(smartspaces_videos.name, new)
    return sorted(registered | set(new))

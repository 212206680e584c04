"""Dagster entry point: the assets, checks, jobs and sensors, with resources for the current profile."""

import dagster as dg

from dlk_assets.defs.coco import assets as coco_assets
from dlk_assets.defs.coco import checks as coco_checks
from dlk_assets.defs.coco.sensors import coco_shard_sensor
from dlk_assets.defs.slices import assets as slice_assets
from dlk_assets.defs.smartspaces import assets as smartspaces_assets
from dlk_assets.defs.smartspaces import checks as smartspaces_checks
from dlk_assets.defs.smartspaces.sensors import smartspaces_video_sensor
from dlk_assets.defs.swe_traces import assets as swe_assets
from dlk_assets.defs.swe_traces import checks as swe_checks
from dlk_assets.defs.swe_traces.sensors import swe_shard_sensor
from dlk_assets.profile import profile_resources

ASSET_MODULES = [coco_assets, smartspaces_assets, swe_assets, slice_assets]
CHECK_MODULES = [coco_checks, smartspaces_checks, swe_checks]

defs = dg.Definitions(
    assets=[*dg.load_assets_from_modules(ASSET_MODULES)],
    asset_checks=[*dg.load_asset_checks_from_modules(CHECK_MODULES)],
    jobs=[coco_assets.coco_shard_job, smartspaces_assets.smartspaces_video_job, swe_assets.swe_shard_job],
    sensors=[coco_shard_sensor, smartspaces_video_sensor, swe_shard_sensor],
    resources=profile_resources(),
)

"""Dagster entry point: the assets, checks, jobs and sensors, with resources for the current profile."""

import dagster as dg

from dlk_assets.defs.coco import assets as coco_assets
from dlk_assets.defs.coco import checks as coco_checks
from dlk_assets.defs.coco.sensors import coco_shard_sensor
from dlk_assets.defs.slices import assets as slice_assets
from dlk_assets.profile import profile_resources

defs = dg.Definitions(
    assets=[*dg.load_assets_from_modules([coco_assets, slice_assets])],
    asset_checks=[*dg.load_asset_checks_from_modules([coco_checks])],
    jobs=[coco_assets.coco_shard_job],
    sensors=[coco_shard_sensor],
    resources=profile_resources(),
)

"""SmartSpaces partitions: one dynamic partition per video (`<scene>__<camera>`), registered by a sensor."""

import dagster as dg

smartspaces_videos = dg.DynamicPartitionsDefinition(name="smartspaces_videos")

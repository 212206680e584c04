"""Every source the project ingests, by the name the CLI, the registry and slices.yaml use."""

from dlk_assets.defs.coco.spec import COCO
from dlk_assets.defs.documents.spec import DOCUMENTS
from dlk_assets.defs.pipeline.spec import SourceSpec
from dlk_assets.defs.smartspaces.spec import VIDEOS
from dlk_assets.defs.swe_traces.spec import MEMORY

SOURCES: dict[str, SourceSpec] = {spec.name: spec for spec in (COCO, VIDEOS, MEMORY, DOCUMENTS)}


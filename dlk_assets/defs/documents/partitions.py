"""Document partitions: one dynamic partition per source folder, registered by `document_folder_sensor`."""

import dagster as dg

document_folders = dg.DynamicPartitionsDefinition(name="document_folders")

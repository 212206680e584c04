"""dlk-assets: Dagster assets over Deep Lake for multimodal data, embeddings, indexes and training slices."""

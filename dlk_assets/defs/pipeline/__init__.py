"""One asset pattern for every source: embeddings -> index -> checks -> cutover -> slices, built from a
source's small description (`SourceSpec`)."""

"""Training slices: named retrievals pinned to a table version and exported with a manifest."""

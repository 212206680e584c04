"""Training on slices: a linear probe per slice (`slice_finetune`), downstream of the slices it reads."""

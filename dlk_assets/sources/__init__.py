"""Readers for the raw sources (Hugging Face streams or the bundled samples of the same shape)."""

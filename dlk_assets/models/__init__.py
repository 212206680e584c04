"""Which encoders exist, which one each source is moving to (target) and which one serves (active)."""

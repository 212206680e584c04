"""Encoders behind one interface: text (MiniLM), image (EfficientNet-Lite0 bridged to text), ColQwen3."""

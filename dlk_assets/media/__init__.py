"""Media helpers: image inspection and thumbnails (video helpers join here for SmartSpaces)."""

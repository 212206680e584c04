"""Pure text handling for document sources: extraction per format, chunking and language detection."""

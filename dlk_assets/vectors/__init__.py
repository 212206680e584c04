"""Vector records (the second seed's schema): validation, metadata filters, batch writes and tenant-scoped search."""

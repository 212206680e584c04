"""Dagster definitions, one folder per source plus training slices."""

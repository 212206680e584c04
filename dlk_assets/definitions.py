"""Dagster entry point: every source's definitions with the resources and model registry of the profile."""

from dlk_assets.profile import load_definitions

defs = load_definitions()

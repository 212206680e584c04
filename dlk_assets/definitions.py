"""Dagster entry point: every source's definitions with the resources and model registry of the profile."""

import warnings

import dagster as dg

from dlk_assets.profile import load_definitions

# Backfill policies are beta in Dagster 1.13 and chosen on purpose; without this every run and step
# process of `dagster dev` logs the same warning for each asset that has one.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy` of function", category=dg.BetaWarning)

defs = load_definitions()

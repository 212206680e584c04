"""The model registry file: per source, the target encoder and the cutover gate's margin.

`$DAGSTER_HOME/models.yaml` by default (`DLK_MODELS_FILE` points elsewhere). `dlk migrate` writes
the target here; a source without an entry follows `DLK_IMAGE_ENCODER` / `DLK_TEXT_ENCODER`, then
the catalog default. Example:

    sources:
      coco:
        target: efficientnet-lite2
        min_recall_delta: -0.05   # the target may score at most 0.05 below the active model
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from dlk_assets.models.catalog import DEFAULT_ENCODER, canonical_name

DEFAULT_MIN_RECALL_DELTA = -0.05
_SOURCE_FIELDS = {"target", "min_recall_delta"}
_ENV_DEFAULTS = {"image": "DLK_IMAGE_ENCODER", "text": "DLK_TEXT_ENCODER"}


@dataclass(frozen=True)
class SourceModels:
    """One source's entry: the encoder its embeddings move to, and how much recall a cutover may lose."""

    target: str | None = None
    min_recall_delta: float = DEFAULT_MIN_RECALL_DELTA


@dataclass(frozen=True)
class ModelSettings:
    """The registry file's content, plus the per-modality defaults from the environment."""

    sources: dict[str, SourceModels] = field(default_factory=dict)
    env_targets: dict[str, str] = field(default_factory=dict)

    def target(self, source: str, modality: str) -> str:
        """The target encoder's name: the file's entry, else the environment default, else the catalog's."""
        entry = self.sources.get(source)
        if entry and entry.target:
            return canonical_name(entry.target, modality)
        if modality in self.env_targets:
            return canonical_name(self.env_targets[modality], modality)
        return DEFAULT_ENCODER[modality]

    def min_recall_delta(self, source: str) -> float:
        entry = self.sources.get(source)
        return entry.min_recall_delta if entry else DEFAULT_MIN_RECALL_DELTA


def default_settings_path() -> Path:
    """`DLK_MODELS_FILE`, else `$DAGSTER_HOME/models.yaml` (else ./dagster_home/models.yaml)."""
    if os.environ.get("DLK_MODELS_FILE"):
        return Path(os.environ["DLK_MODELS_FILE"])
    return Path(os.environ.get("DAGSTER_HOME") or "dagster_home") / "models.yaml"


def _env_targets() -> dict[str, str]:
    return {modality: os.environ[var] for modality, var in _ENV_DEFAULTS.items() if os.environ.get(var)}


def load_settings(path: str | Path | None = None) -> ModelSettings:
    """Read and validate the registry file (a missing file means no entries); errors name the field."""
    path = Path(path) if path else default_settings_path()
    document = yaml.safe_load(path.read_text()) if path.exists() else None
    document = document or {}
    if not isinstance(document, dict) or set(document) - {"sources"}:
        raise ValueError(f"{path}: expected a mapping with one key, 'sources'")
    entries = document.get("sources") or {}
    if not isinstance(entries, dict):
        raise ValueError(f"{path}: sources: expected a mapping of source name to its entry")  # noqa: TRY004 (a bad file)
    sources = {}
    for name, body in entries.items():
        where = f"{path}: sources.{name}"
        if not isinstance(body, dict):
            raise ValueError(f"{where}: expected a mapping with {sorted(_SOURCE_FIELDS)}")  # noqa: TRY004 (a bad file)
        unknown = set(body) - _SOURCE_FIELDS
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}")
        target = body.get("target")
        if target is not None:
            try:
                target = canonical_name(str(target))
            except ValueError as exc:
                raise ValueError(f"{where}.target: {exc}") from None
        delta = body.get("min_recall_delta", DEFAULT_MIN_RECALL_DELTA)
        if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not math.isfinite(delta) or not -1 <= delta <= 1:
            raise ValueError(f"{where}.min_recall_delta: expected a number from -1 to 1, got {delta!r}")
        sources[str(name)] = SourceModels(target, float(delta))
    return ModelSettings(sources, _env_targets())


def source_entry(source: str, path: str | Path | None = None) -> dict:
    """One source's entry as the file holds it (empty when the file or the entry is missing)."""
    path = Path(path) if path else default_settings_path()
    document = (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
    return dict((document.get("sources") or {}).get(source) or {})


def write_source_entry(source: str, path: str | Path | None = None, **changes) -> Path:
    """Set fields of one source's entry (a field set to None is removed, so the environment or the
    default decides it again), keeping everything else in the file; written atomically."""
    path = Path(path) if path else default_settings_path()
    load_settings(path)  # refuse to rewrite a file that does not validate
    document = (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
    entry = document.setdefault("sources", {}).setdefault(source, {})
    for name, value in changes.items():
        if value is None:
            entry.pop(name, None)
        else:
            entry[name] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".models-", suffix=".yaml", delete=False) as handle:
        yaml.safe_dump(document, handle, sort_keys=True)
    try:
        load_settings(handle.name)  # the new content must validate before it replaces the old
    except ValueError:
        os.unlink(handle.name)
        raise
    os.replace(handle.name, path)
    return path

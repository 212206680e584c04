"""The model registry: per source, the target encoder (configuration) and the active one (the lake)."""

from __future__ import annotations

from typing import Protocol

from dlk_assets.encoders.base import Encoder
from dlk_assets.lake.tables import Lake
from dlk_assets.models.active import ActiveModel, read_active
from dlk_assets.models.catalog import build_encoder
from dlk_assets.models.settings import ModelSettings


class ModelUser(Protocol):
    """A source as the registry sees it: a name and the kind of documents it embeds."""

    name: str
    modality: str


class ModelRegistry:
    """Answers which encoder a source's embedding assets write (target) and which one serves (active).

    The target comes from configuration; the active one from the last cutover recorded in the lake.
    Before a source's first cutover its target serves, so a fresh lake needs no extra step.
    """

    def __init__(self, settings: ModelSettings, device: str = "auto", model_path: str = ""):
        self.settings = settings
        self.device = device
        self.model_path = model_path

    def encoder(self, name: str) -> Encoder:
        """The encoder called `name` (built once per process)."""
        return build_encoder(name, self.device, self.model_path)

    def target_name(self, source: ModelUser) -> str:
        """The target encoder's catalog name (configuration only; no model is built)."""
        return self.settings.target(source.name, source.modality)

    def target(self, source: ModelUser) -> Encoder:
        """The encoder the source's embedding assets write."""
        return self.encoder(self.target_name(source))

    def active_record(self, source: ModelUser, lake: Lake) -> ActiveModel | None:
        """The last cutover recorded for the source, or None before its first."""
        return read_active(lake, source.name)

    def active(self, source: ModelUser, lake: Lake) -> Encoder:
        """The encoder that serves searches, slices and the API; the target before any cutover.

        A cutover pins an encoder's fingerprint: if the installed model no longer matches it (an
        upgraded package), serving would mix vector spaces, so this is refused with what to do.
        """
        record = self.active_record(source, lake)
        if record is None:
            return self.target(source)
        encoder = self._installed(record)
        if encoder is None:
            raise LookupError(
                f"{source.name}: the active encoder {record.encoder} was cut over at fingerprint {record.encoder_fingerprint}, "
                f"but the installed model is {self.encoder(record.encoder).fingerprint}; backfill the embeddings and run "
                f"the cutover (`dlk migrate {source.name} --to {record.encoder}`)")
        return encoder

    def installed_active(self, source: ModelUser, lake: Lake) -> Encoder | None:
        """The active encoder when one was cut over and the installed model still matches it, else None.

        The pipeline uses this where it can carry on without the active model (embedding the target,
        the gate): after a package upgrade changed the active model, the way out is a backfill and a
        cutover to the installed one, which must not fail on the old fingerprint.
        """
        record = self.active_record(source, lake)
        return self._installed(record) if record else None

    def _installed(self, record: ActiveModel) -> Encoder | None:
        encoder = self.encoder(record.encoder)
        return encoder if encoder.fingerprint == record.encoder_fingerprint else None

    def min_recall_delta(self, source: ModelUser) -> float:
        """How much probe recall the target may lose against the active model and still be cut over."""
        return self.settings.min_recall_delta(source.name)

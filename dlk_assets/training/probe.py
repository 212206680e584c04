"""A linear probe trained on a slice: the slice's items against items sampled from outside it.

Pure training logic (no Dagster): features in, a trained head, its metrics and reproducible weights
out. Reproducible means byte-identical weights for the same features, settings and seed: every
random choice comes from the seed, training is full-batch on the CPU with deterministic algorithms
in one thread, and the weights are serialized without the file name in the archive.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlk_assets.staged_folder import staged_folder

WEIGHTS = "weights.pt"
RECORD = "model.json"
# Changes whenever the same inputs would train different weights (shown as the asset's code version).
PROBE_VERSION = "linear-probe-1"


@dataclass(frozen=True)
class ProbeSettings:
    """What changes the trained weights besides the data."""

    seed: int = 0
    negatives_per_positive: int = 4  # items sampled from outside the slice per slice item (fewer if the table is small)
    held_out_fraction: float = 0.3  # of each class, at least one item when the class has two or more
    epochs: int = 300
    learning_rate: float = 0.05
    weight_decay: float = 1e-4

    def __post_init__(self):
        if self.negatives_per_positive < 1:
            raise ValueError(f"negatives_per_positive must be at least 1, got {self.negatives_per_positive}")
        if not 0 < self.held_out_fraction < 1:
            raise ValueError(f"held_out_fraction must be between 0 and 1, got {self.held_out_fraction}")
        if self.epochs < 1 or self.learning_rate <= 0 or self.weight_decay < 0:
            raise ValueError(f"epochs >= 1, learning_rate > 0 and weight_decay >= 0, got {self}")


@dataclass(frozen=True)
class ProbeData:
    """Labelled feature vectors: 1 for the slice's items, 0 for the sampled others."""

    row_keys: tuple[str, ...]
    features: np.ndarray  # (n, dim) float32
    labels: np.ndarray  # (n,) 0/1

    def __post_init__(self):
        if self.features.ndim != 2 or len(self.features) != len(self.labels) or len(self.labels) != len(self.row_keys):
            raise ValueError(f"{len(self.row_keys)} keys, features {self.features.shape} and {len(self.labels)} labels disagree")


@dataclass(frozen=True)
class ProbeResult:
    """The trained head and what it scored."""

    state_dict: dict[str, torch.Tensor]
    metrics: dict[str, float]
    train_keys: tuple[str, ...]
    held_out: list[dict[str, Any]]  # per held-out item: row_key, label, probability


def pooled_feature(value: np.ndarray) -> np.ndarray:
    """One unit vector for a row: a vector as it is, a multi-vector (tokens, dim) averaged over its tokens."""
    vector = np.asarray(value, dtype=np.float32)
    if vector.ndim == 2:
        vector = vector.mean(axis=0)
    norm = float(np.linalg.norm(vector))
    return (vector / max(norm, 1e-12)).astype(np.float32)


def sample_negatives(candidates: list[str], positives: set[str], count: int, seed: int) -> list[str]:
    """`count` row keys not in `positives` (all when fewer), chosen by `seed` from the sorted candidates.

    Sorting first makes the choice independent of the order the table returned its rows in.
    """
    pool = sorted(set(candidates) - positives)
    if count >= len(pool):
        return pool
    chosen = np.random.default_rng(seed).choice(len(pool), size=count, replace=False)
    return [pool[i] for i in sorted(int(i) for i in chosen)]


def split_held_out(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) indices, stratified: each class gives `fraction` of its items (at least one when it
    has two or more) to the held-out set, chosen by `seed`."""
    rng = np.random.default_rng(seed)
    train, held_out = [], []
    for label in (0, 1):
        members = np.flatnonzero(labels == label)
        members = members[rng.permutation(len(members))]
        take = max(1, round(fraction * len(members))) if len(members) >= 2 else 0
        held_out.extend(members[:take].tolist())
        train.extend(members[take:].tolist())
    return np.array(sorted(train), dtype=np.int64), np.array(sorted(held_out), dtype=np.int64)


@contextlib.contextmanager
def deterministic_cpu(seed: int) -> Iterator[None]:
    """Seeded, deterministic, single-threaded torch for the duration; the caller's settings come back after."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    with torch.random.fork_rng(devices=[]):  # the caller's global RNG state is left as it was
        torch.manual_seed(seed)
        torch.set_num_threads(1)  # one thread: float sums in the same order every run
        torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(deterministic)
            torch.set_num_threads(threads)


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float(((logits > 0).float() == labels).float().mean())


def _ranking_auc(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The share of (slice item, other item) pairs the probe scores in the right order (ties count half):
    a tiny held-out split can rank well while every probability stays under 0.5."""
    positive, negative = logits[labels == 1], logits[labels == 0]
    difference = positive[:, None] - negative[None, :]
    return float(((difference > 0).float() + 0.5 * (difference == 0).float()).mean())


def train_probe(data: ProbeData, settings: ProbeSettings) -> ProbeResult:
    """Train a logistic-regression head (one `torch.nn.Linear`) on a stratified split of `data`.

    Full-batch Adam on the class-balanced logistic loss; reports the mean (unweighted) loss and the
    accuracy on both splits, the majority-class accuracy of the held-out split as a baseline, and the
    held-out ranking AUC when both kinds were held out. A slice of one item trains on it and is judged
    on held-out others only (there is no second slice item to hold out).
    """
    positives, others = int(data.labels.sum()), int(len(data.labels) - data.labels.sum())
    train_idx, held_idx = split_held_out(data.labels, settings.held_out_fraction, settings.seed)
    if not positives or not others or not len(held_idx):
        raise ValueError(f"a probe needs a slice item and another item to train on, and one more of either to hold "
                         f"out; got {positives} slice item(s) and {others} other(s)")
    with deterministic_cpu(settings.seed):
        x = torch.from_numpy(np.ascontiguousarray(data.features, dtype=np.float32))
        y = torch.from_numpy(data.labels.astype(np.float32))
        head = torch.nn.Linear(x.shape[1], 1)
        train_pos = float(y[train_idx].sum())
        pos_weight = torch.tensor([(len(train_idx) - train_pos) / train_pos])  # balance the classes
        objective = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
        optimizer = torch.optim.Adam(head.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
        for _ in range(settings.epochs):
            optimizer.zero_grad()
            loss = objective(head(x[train_idx]).squeeze(1), y[train_idx])
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            logits = head(x).squeeze(1)
            mean_loss = torch.nn.functional.binary_cross_entropy_with_logits
            held_labels = y[held_idx]
            metrics = {
                "loss": float(mean_loss(logits[train_idx], y[train_idx])),
                "train_accuracy": _accuracy(logits[train_idx], y[train_idx]),
                "held_out_loss": float(mean_loss(logits[held_idx], held_labels)),
                "held_out_accuracy": _accuracy(logits[held_idx], held_labels),
                "held_out_baseline_accuracy": float(max(held_labels.mean(), 1 - held_labels.mean())),
            }
            if 0 < held_labels.sum() < len(held_labels):  # a ranking needs both kinds held out
                metrics["held_out_auc"] = _ranking_auc(logits[held_idx], held_labels)
            probabilities = torch.sigmoid(logits)
        state = {name: tensor.detach().clone().contiguous() for name, tensor in head.state_dict().items()}
    held_out = [{"row_key": data.row_keys[i], "label": int(data.labels[i]), "probability": round(float(probabilities[i]), 4)}
                for i in held_idx]
    return ProbeResult(state, {k: round(v, 6) for k, v in metrics.items()}, tuple(data.row_keys[i] for i in train_idx), held_out)


def weights_bytes(state_dict: dict[str, torch.Tensor]) -> bytes:
    """`torch.save` of the state dict into memory: the archive gets a fixed name, never the file's, so the same
    weights are the same bytes wherever they are written (`torch.load` reads them as usual)."""
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    return buffer.getvalue()


def save_probe(out_dir: Path, result: ProbeResult, record: dict[str, Any]) -> dict[str, Any]:
    """Write `weights.pt` and `model.json` (the record plus metrics and the weights' sha256) into `out_dir`.

    Both are written beside the folder and swapped in, so a killed run never leaves weights without
    their record. Returns the record as written.
    """
    data = weights_bytes(result.state_dict)
    record = {**record, "metrics": result.metrics, "weights": WEIGHTS, "weights_sha256": hashlib.sha256(data).hexdigest(),
              "train_row_keys": list(result.train_keys), "held_out": result.held_out}
    with staged_folder(out_dir) as staging:
        (staging / WEIGHTS).write_bytes(data)
        (staging / RECORD).write_text(json.dumps(record, indent=2, sort_keys=True))
    return record

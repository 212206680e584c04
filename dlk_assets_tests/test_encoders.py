"""Encoders on real models (MiniLM, EfficientNet-Lite0) and ColQwen3's behaviour without weights."""

import numpy as np
import pytest

from dlk_assets.encoders.base import resolve_device
from dlk_assets.encoders.colqwen import ColQwen3Encoder, WeightsNotAvailableError
from dlk_assets.encoders.registry import image_encoder
from dlk_assets.sources.coco_sample import skimage_photo


def test_minilm_gives_pooled_and_token_vectors():
    encoder = image_encoder("efficientnet-minilm", "cpu")
    pooled = encoder.text.encode_pooled(["a cat", "a dog"])
    tokens = encoder.encode_texts(["a cat on a mat"])[0]
    assert pooled.shape == (2, 384) and np.allclose(np.linalg.norm(pooled, axis=1), 1, atol=1e-5)
    assert tokens.shape[1] == 384 and tokens.shape[0] >= 5 and np.allclose(np.linalg.norm(tokens, axis=1), 1, atol=1e-5)


def test_image_encoder_sees_the_pixels_and_bridges_to_text():
    encoder = image_encoder("efficientnet-minilm", "cpu")
    bags, features, labels = encoder.encode_images_with_labels([skimage_photo("chelsea"), skimage_photo("coffee")])
    assert labels[0][0][0] in {"Egyptian cat", "tabby", "tiger cat"} and labels[1][0][0] == "espresso"
    assert features.shape == (2, 1280) and all(b.shape[1] == 384 for b in bags)
    query = encoder.encode_texts(["a cat"])[0]
    cat_score, coffee_score = ((query @ bag.T).max(axis=1).sum() for bag in bags)
    assert cat_score > coffee_score
    frames = encoder.encode_video_frames([skimage_photo("chelsea"), skimage_photo("coffee")])
    assert frames.shape == (len(bags[0]) + len(bags[1]), 384)


def test_colqwen3_without_weights_fails_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    encoder = ColQwen3Encoder(model="TomoroAI/tomoro-colqwen3-embed-4b", device="cpu")
    assert encoder.fingerprint.startswith("colqwen3-embed-4b@")
    with pytest.raises(WeightsNotAvailableError, match="not in the Hugging Face cache"):
        encoder.encode_texts(["a cat"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsNotAvailableError, match="no config.json"):
        _ = ColQwen3Encoder(model=str(tmp_path / "empty"), device="cpu").dim


def test_device_choice_is_automatic_or_forced():
    import torch

    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA device"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")

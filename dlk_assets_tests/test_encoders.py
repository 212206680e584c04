"""Encoders on real models (MiniLM, EfficientNet-Lite0 and Lite2) and ColQwen3's behaviour without weights."""

import numpy as np
import pytest

from dlk_assets.encoders.base import Output, resolve_device
from dlk_assets.encoders.colqwen import ColQwen3Encoder, WeightsNotAvailableError
from dlk_assets.models.catalog import build_encoder
from dlk_assets.sources.coco_sample import skimage_photo

CATS = {"Egyptian cat", "tabby", "tiger cat"}


def test_minilm_gives_pooled_and_token_vectors():
    encoder = build_encoder("minilm", "cpu")
    assert encoder.modality == "text" and encoder.outputs == {Output.POOLED}
    pooled = encoder.encode_pooled(["a cat", "a dog"])
    tokens = encoder.encode_query_tokens(["a cat on a mat"])[0]
    assert pooled.shape == (2, 384) and np.allclose(np.linalg.norm(pooled, axis=1), 1, atol=1e-5)
    assert tokens.shape[1] == 384 and tokens.shape[0] >= 5 and np.allclose(np.linalg.norm(tokens, axis=1), 1, atol=1e-5)
    with pytest.raises(NotImplementedError, match="minilm does not embed images"):
        encoder.encode_images([skimage_photo("chelsea")])


@pytest.mark.parametrize("name", ["efficientnet-lite0", "efficientnet-lite2"])
def test_efficientnet_encoders_see_the_pixels_and_bridge_to_text(name):
    encoder = build_encoder(name, "cpu")
    assert encoder.outputs == {Output.MULTI_VECTOR, Output.IMAGE_FEATURES, Output.LABELS} and encoder.feature_dim == 1280
    encoding = encoder.encode_images([skimage_photo("chelsea"), skimage_photo("coffee")])
    assert encoding.labels[0][0][0] in CATS and encoding.labels[1][0][0] == "espresso"
    assert encoding.features.shape == (2, 1280) and all(b.shape[1] == 384 for b in encoding.bags)
    query = encoder.encode_query_tokens(["a cat"])[0]
    cat_score, coffee_score = ((query @ bag.T).max(axis=1).sum() for bag in encoding.bags)
    assert cat_score > coffee_score


def test_the_two_efficientnet_variants_are_different_models():
    lite0, lite2 = build_encoder("efficientnet-lite0", "cpu"), build_encoder("efficientnet-lite2", "cpu")
    assert lite0.fingerprint.startswith("efficientnet-lite0+") and lite2.fingerprint.startswith("efficientnet-lite2+")
    assert (lite0.variant.image_size, lite2.variant.image_size) == (224, 260)
    photo = [skimage_photo("rocket")]
    assert not np.allclose(lite0.encode_images(photo).features, lite2.encode_images(photo).features, atol=1e-3)


def test_minilm_in_bfloat16_is_a_model_of_its_own_close_to_float32():
    full, half = build_encoder("minilm", "cpu"), build_encoder("minilm-bf16", "cpu")
    assert full.model_id == half.model_id == "all-MiniLM-L6-v2" and full.fingerprint != half.fingerprint
    texts = ["a cat asleep on the sofa", "the proxy ignored X-Forwarded-Host", "Gazpacho se sirve muy frío."]
    a, b = full.encode_pooled(texts), half.encode_pooled(texts)
    assert b.dtype == np.float32 and b.shape == (3, 384) and np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-3)
    assert not np.array_equal(a, b) and (a * b).sum(axis=1).min() > 0.99  # other vectors, the same meaning
    assert int(np.argmax(b @ full.encode_pooled(["a sleeping cat"])[0])) == 0


def test_colqwen3_says_what_it_produces_and_fails_clearly_without_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    encoder = ColQwen3Encoder(model="TomoroAI/tomoro-colqwen3-embed-4b", device="cpu")
    assert encoder.fingerprint.startswith("colqwen3-embed-4b@") and encoder.outputs == {Output.MULTI_VECTOR}
    with pytest.raises(WeightsNotAvailableError, match="not in the Hugging Face cache"):
        encoder.encode_query_tokens(["a cat"])
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

"""The shipped priority model: the ONNX graph computes the trained network, the network has
learned the urgency rule, and training is reproducible byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from pipeline.priority.features import FEATURES, WIDTH
from pipeline.priority.model import ModelMismatch, OnnxScorer
from pipeline.priority.rule import urgency_rule
from pipeline.priority.train import DEFAULT_PATH, Network, samples, to_onnx, train


def shipped_network() -> Network:
    weights = {
        t.name: numpy_helper.to_array(t).astype(np.float64)
        for t in onnx.load(DEFAULT_PATH).graph.initializer
    }
    return Network(weights["w1"], weights["b1"], weights["w2"], weights["b2"])


def test_the_onnx_scores_equal_the_trained_networks_on_a_sample_set() -> None:
    x = samples(np.random.default_rng(11), 2_000)
    onnx_scores = OnnxScorer(DEFAULT_PATH).score(x)
    network_scores = shipped_network().score(x)
    assert onnx_scores.shape == (2_000,)
    assert np.abs(onnx_scores - network_scores).max() < 1e-5


def test_the_model_has_learned_the_urgency_rule() -> None:
    x = samples(np.random.default_rng(12), 5_000)
    error = np.abs(OnnxScorer(DEFAULT_PATH).score(x) - urgency_rule(x))
    assert error.mean() < 0.02
    assert np.quantile(error, 0.99) < 0.08


def test_the_model_says_its_version_and_features() -> None:
    model = OnnxScorer(DEFAULT_PATH)
    assert model.version == "priority-1"
    meta = {p.key: p.value for p in onnx.load(DEFAULT_PATH).metadata_props}
    assert float(meta["held_out_mae"]) < 0.02


def test_a_model_taking_other_features_is_refused(tmp_path: Path) -> None:
    net = Network(np.zeros((WIDTH, 2)), np.zeros(2), np.zeros((2, 1)), np.zeros(1))
    path = tmp_path / "other.onnx"
    shuffled = json.dumps([FEATURES[1], FEATURES[0], *FEATURES[2:]])
    path.write_bytes(to_onnx(net, {"version": "x", "features": shuffled}).SerializeToString())
    with pytest.raises(ModelMismatch, match="features"):
        OnnxScorer(path)


def test_training_is_reproducible_byte_for_byte(tmp_path: Path) -> None:
    one, two = tmp_path / "one.onnx", tmp_path / "two.onnx"
    first = train(one, n=2_000, steps=150)
    second = train(two, n=2_000, steps=150)
    assert one.read_bytes() == two.read_bytes()
    assert first == second
    other = train(tmp_path / "three.onnx", n=2_000, steps=150, seed=8)
    assert other["weights_sha256"] != first["weights_sha256"]


def test_an_empty_batch_scores_nothing() -> None:
    assert OnnxScorer(DEFAULT_PATH).score(np.zeros((0, WIDTH), dtype=np.float32)).shape == (0,)

"""Train the priority model and write it as ONNX: ``python -m pipeline.priority.train``.

Reproducible: a fixed seed makes the same samples, the same initial weights and so the same
model file, byte for byte.  The samples are generated (documented distributions below, not
history: the platform has none to learn from yet), labelled by ``rule.urgency_rule``, and
fitted by a network small enough to read: 10 features -> 16 tanh units -> 1 sigmoid, full-
batch Adam on the mean squared error, in numpy.

The ONNX graph is the same arithmetic (Gemm, Tanh, Gemm, Sigmoid) with the weights as
initialisers; its metadata carries the version, the feature names and the fit on held-out
samples, which the model card (``models/priority.md``) reports.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from pipeline.priority.features import FEATURES, WIDTH
from pipeline.priority.rule import urgency_rule

SEED: Final = 7
SAMPLES: Final = 20_000
HIDDEN: Final = 16
STEPS: Final = 4_000
LEARNING_RATE: Final = 0.01
VERSION: Final = "priority-1"
DEFAULT_PATH: Final = Path(__file__).parent / "models" / "priority.onnx"
OPSET: Final = 17
IR_VERSION: Final = 8  # what onnxruntime has read for years: a newer runtime reads it too

Array = npt.NDArray[np.float64]


def samples(rng: np.random.Generator, n: int) -> npt.NDArray[np.float32]:
    """Feature vectors spread like intents could be (``features`` for the scales)."""
    x = np.zeros((n, WIDTH))
    x[:, 0] = rng.integers(0, 2, n)
    x[:, 1] = np.log10(1 + 10 ** rng.uniform(0, np.log10(5e6), n)) / 7  # 1 .. 5 M
    x[:, 2] = rng.uniform(3, np.log10(86_400_000), n) / 7  # 1 s .. 24 h left
    style = rng.integers(0, 3, n)
    x[np.arange(n), 3 + style] = 1
    x[:, 6] = rng.uniform(0.0005, 0.05, n)
    x[:, 7] = np.minimum(rng.exponential(0.006, n), 0.05)
    x[:, 8] = np.where(rng.random(n) < 0.3, 1.0, rng.uniform(0.3, 1.0, n))
    x[:, 9] = np.log10(1 + 10 ** rng.uniform(0, np.log10(5_000), n) * (rng.random(n) < 0.7)) / 4
    return x.astype(np.float32)


@dataclass
class Network:
    w1: Array
    b1: Array
    w2: Array
    b2: Array

    def forward(self, x: Array) -> tuple[Array, Array]:
        hidden = np.tanh(x @ self.w1 + self.b1)
        return hidden, 1 / (1 + np.exp(-(hidden @ self.w2 + self.b2)))

    def score(self, x: npt.NDArray[np.float32]) -> Array:
        return self.forward(x.astype(np.float64))[1][:, 0]


def fit(
    x: npt.NDArray[np.float32], y: Array, rng: np.random.Generator, steps: int = STEPS
) -> Network:
    net = Network(
        rng.normal(0, 1 / np.sqrt(WIDTH), (WIDTH, HIDDEN)),
        np.zeros(HIDDEN),
        rng.normal(0, 1 / np.sqrt(HIDDEN), (HIDDEN, 1)),
        np.zeros(1),
    )
    params = [net.w1, net.b1, net.w2, net.b2]
    moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    xs, target = x.astype(np.float64), y[:, None]
    for step in range(1, steps + 1):
        hidden, out = net.forward(xs)
        d_out = 2 * (out - target) / len(xs) * out * (1 - out)
        d_hidden = (d_out @ net.w2.T) * (1 - hidden**2)
        grads = [xs.T @ d_hidden, d_hidden.sum(0), hidden.T @ d_out, d_out.sum(0)]
        for p, g, (m, v) in zip(params, grads, moments, strict=True):
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            p -= LEARNING_RATE * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
    return net


def to_onnx(net: Network, metadata: dict[str, str]) -> onnx.ModelProto:
    def init(name: str, value: Array) -> onnx.TensorProto:
        return numpy_helper.from_array(value.astype(np.float32), name)

    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["features", "w1", "b1"], ["z1"]),
            helper.make_node("Tanh", ["z1"], ["h1"]),
            helper.make_node("Gemm", ["h1", "w2", "b2"], ["z2"]),
            helper.make_node("Sigmoid", ["z2"], ["score"]),
        ],
        "priority",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["n", WIDTH])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["n", 1])],
        [init("w1", net.w1), init("b1", net.b1), init("w2", net.w2), init("b2", net.b2)],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="sep pipeline.priority.train",
    )
    model.ir_version = IR_VERSION
    helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    return model


def train(
    path: Path = DEFAULT_PATH, *, n: int = SAMPLES, steps: int = STEPS, seed: int = SEED
) -> dict[str, str]:
    """Train, write the model to ``path``; the metadata written with it.  (``n`` and
    ``steps`` smaller than the defaults only to test that training is reproducible.)"""
    rng = np.random.default_rng(seed)
    x = samples(rng, n)
    y = urgency_rule(x)
    held_out = samples(rng, 5_000)
    net = fit(x, y, rng, steps)
    error = net.score(held_out) - urgency_rule(held_out)
    weights = b"".join(p.astype(np.float32).tobytes() for p in (net.w1, net.b1, net.w2, net.b2))
    metadata = {
        "version": VERSION,
        "weights_sha256": hashlib.sha256(weights).hexdigest()[:16],
        "features": json.dumps(FEATURES),
        "seed": str(seed),
        "held_out_mae": f"{np.abs(error).mean():.4f}",
        "held_out_max_error": f"{np.abs(error).max():.4f}",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(to_onnx(net, metadata).SerializeToString())
    return metadata


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_PATH, help="where to write the model")
    args = parser.parse_args()
    metadata = train(args.out)
    print(json.dumps({"path": str(args.out), **metadata}, indent=2))


if __name__ == "__main__":
    main()

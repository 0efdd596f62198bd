"""The momentum signal: the packaged ONNX model, scored with onnxruntime.

    features (n x 6, float32) --momentum.onnx (StandardScaler + LogisticRegression)-->
        probabilities (n x 2) --[:, 1]--> P(log return over the next 5 bars > 0)

The model file ships inside the package (``model/momentum.onnx``, made by ``train.py``) and
is read from there, never from a network.  Its version is in the model's metadata
(``version``).  onnxruntime is imported when a model is loaded, not when the plugin is: a
machine without it still lists and validates the plugin, and the strategy fails at its
start with the reason.  One intra-op thread: a 6-feature logistic model is microseconds of
work, and the runner's process must not spawn a thread pool per core for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any

MODEL_FILE = "momentum.onnx"


def packaged_model() -> bytes:
    return (resources.files("plugins.strategies.momentum") / "model" / MODEL_FILE).read_bytes()


class SignalModel:
    def __init__(self, model: bytes | None = None) -> None:
        try:
            import numpy as np
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - both are dependencies
            raise RuntimeError(
                "the momentum strategy needs onnxruntime and numpy (pip install onnxruntime)"
            ) from exc
        self._np = np
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            model if model is not None else packaged_model(),
            sess_options=options,
            providers=["CPUExecutionProvider"],
        )
        self._input = self._session.get_inputs()[0].name
        meta = self._session.get_modelmeta().custom_metadata_map
        self.version: str = meta.get("version", "unknown")
        self.features: tuple[str, ...] = tuple(meta.get("features", "").split(","))

    def score(self, rows: Sequence[Sequence[float]]) -> list[float]:
        """P(up) for each feature row (one call for the whole batch)."""
        if not rows:
            return []
        x: Any = self._np.asarray(rows, dtype=self._np.float32)
        _labels, probabilities = self._session.run(None, {self._input: x})
        return [float(p) for p in probabilities[:, 1]]

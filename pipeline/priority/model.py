"""The priority model at run time: an ONNX file scored by onnxruntime, loaded once per worker
and called once per batch.

The file's metadata says its version and the features it expects, in order; a model whose
features differ from ``features.FEATURES`` is refused at load (a silently shifted column
would score every intent wrong).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime

from pipeline.priority.features import FEATURES, WIDTH


class ModelMismatch(ValueError):
    """The model file does not take this code's features."""


class OnnxScorer:
    """``score(x)``: one score in [0, 1] per row of the (n, 10) feature matrix."""

    def __init__(self, path: Path) -> None:
        options = onnxruntime.SessionOptions()
        # One thread: a worker scores a batch at a time on a 2-core machine, and onnxruntime's
        # own pool would compete with the worker's loop for the cores.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        meta = self._session.get_modelmeta().custom_metadata_map
        features = tuple(json.loads(meta.get("features", "[]")))
        if features != FEATURES:
            raise ModelMismatch(
                f"{path}: the model takes features {list(features)}, this code makes "
                f"{list(FEATURES)}"
            )
        self.version: str = meta.get("version", "unknown")
        self.path = path
        self._input = self._session.get_inputs()[0].name

    def score(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        if x.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        if x.shape[1] != WIDTH:
            raise ValueError(f"expected {WIDTH} features per row, got {x.shape[1]}")
        (out,) = self._session.run(None, {self._input: x})
        return np.asarray(out, dtype=np.float32)[:, 0]

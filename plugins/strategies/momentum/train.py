"""Train the momentum model, reproducibly, and write it into the package.

    python -m plugins.strategies.momentum.train        (needs scikit-learn, skl2onnx, onnx:
                                                        the ``train`` extra; not the runtime)

Data: generated prices, not market history (none ships with the repository): a random walk
whose one-bar log returns follow an AR(1) with a drift that switches between up, down and
flat regimes, so that momentum carries information, as it does in trending markets.  Seeded
(``SEED``): the same data, the same model, every run.

    prices --features.features (the strategy's own code)--> X (6 per bar)
           --log return over the next HORIZON bars > 0--> y
    first 80 % of the bars (time order) --StandardScaler + LogisticRegression--> model
    last 20 % --> accuracy, ROC AUC, log loss (metrics.json, MODEL_CARD.md)

Written to ``model/``: ``momentum.onnx`` (skl2onnx, probabilities as a plain tensor, the
version in its metadata), ``samples.json`` (64 feature rows with scikit-learn's own
probabilities: a test checks onnxruntime gives the same), ``metrics.json``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from plugins.strategies.momentum.features import BARS_NEEDED, FEATURE_NAMES, features

SEED = 20261206
BARS = 60_000
HORIZON = 5
VERSION = "momentum-lr-2026.12.1"
MODEL_DIR = Path(__file__).parent / "model"


def generate_prices(seed: int = SEED, bars: int = BARS) -> list[float]:
    import numpy as np

    rng = np.random.default_rng(seed)
    drifts = (0.0004, -0.0004, 0.0)
    regime, price, last = 2, 3000.0, 0.0
    prices = [price]
    for _ in range(bars):
        if rng.random() < 0.01:  # ~100 bars per regime on average
            regime = int(rng.integers(0, 3))
        step = 0.15 * last + drifts[regime] + rng.normal(0.0, 0.002)
        price *= math.exp(step)
        prices.append(price)
        last = step
    return prices


def dataset(prices: list[float]) -> tuple[list[list[float]], list[int]]:
    rows: list[list[float]] = []
    labels: list[int] = []
    for t in range(len(prices) - HORIZON):
        x = features(prices[max(0, t + 1 - BARS_NEEDED) : t + 1])
        if x is None:
            continue
        rows.append(x)
        labels.append(int(prices[t + HORIZON] > prices[t]))
    return rows, labels


def main() -> dict[str, Any]:
    import numpy as np
    import onnx
    import onnxruntime as ort
    import skl2onnx
    import sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rows, labels = dataset(generate_prices())
    x = np.asarray(rows, dtype=np.float32)
    y = np.asarray(labels)
    cut = int(len(x) * 0.8)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
    model.fit(x[:cut], y[:cut])
    p_test = model.predict_proba(x[cut:])[:, 1]
    metrics = {
        "version": VERSION,
        "seed": SEED,
        "bars": BARS,
        "horizon_bars": HORIZON,
        "train_rows": cut,
        "test_rows": len(x) - cut,
        "test_accuracy": round(float(accuracy_score(y[cut:], p_test > 0.5)), 4),
        "test_roc_auc": round(float(roc_auc_score(y[cut:], p_test)), 4),
        "test_log_loss": round(float(log_loss(y[cut:], p_test)), 4),
        "base_rate_up": round(float(y[cut:].mean()), 4),
        "features": list(FEATURE_NAMES),
        "sklearn": sklearn.__version__,
        "skl2onnx": skl2onnx.__version__,
    }
    onx = skl2onnx.to_onnx(
        model,
        initial_types=[("features", FloatTensorType([None, len(FEATURE_NAMES)]))],
        options={id(model.steps[-1][1]): {"zipmap": False}},
        target_opset=17,
    )
    onnx.helper.set_model_props(
        onx, {"version": VERSION, "seed": str(SEED), "features": ",".join(FEATURE_NAMES)}
    )
    onx.doc_string = "P(log return over the next 5 bars > 0) from momentum features"
    MODEL_DIR.mkdir(exist_ok=True)
    (MODEL_DIR / "momentum.onnx").write_bytes(onx.SerializeToString())
    # Samples spread over the test set, with scikit-learn's probabilities, for the test that
    # the ONNX graph computes what the trained model does.
    picks = np.linspace(cut, len(x) - 1, 64).astype(int)
    samples = {
        "features": x[picks].tolist(),
        "probability_up": model.predict_proba(x[picks])[:, 1].tolist(),
    }
    (MODEL_DIR / "samples.json").write_text(json.dumps(samples, indent=1) + "\n")
    session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    onnx_p = session.run(None, {"features": x[picks]})[1][:, 1]
    metrics["max_abs_diff_onnx_vs_sklearn"] = float(
        np.max(np.abs(onnx_p - np.asarray(samples["probability_up"])))
    )
    (MODEL_DIR / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    return metrics


if __name__ == "__main__":
    print(json.dumps(main(), indent=1))

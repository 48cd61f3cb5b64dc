"""A calibrated linear classifier reduced to arrays, for fast single-message prediction.

scikit-learn's CalibratedClassifierCV validates its input once per class and per fold, which
costs milliseconds per message; the model itself is a few matrix products. This keeps exactly
its arithmetic (Platt sigmoid per class, normalised, averaged over folds) in plain numpy.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.calibration import CalibratedClassifierCV

from nlu.one_text import Row


class CalibratedLinear:
    def __init__(
        self,
        classes: np.ndarray,
        weights: np.ndarray,
        intercepts: np.ndarray,
        slopes: np.ndarray,
        offsets: np.ndarray,
    ) -> None:
        self.classes_ = classes
        self.weights = weights  # folds x features x classes
        self.intercepts = intercepts  # folds x classes
        self.slopes = slopes  # folds x classes
        self.offsets = offsets  # folds x classes

    @classmethod
    def from_sklearn(cls, model: CalibratedClassifierCV) -> CalibratedLinear:
        weights, intercepts, slopes, offsets = [], [], [], []
        for fold in model.calibrated_classifiers_:
            est = fold.estimator
            if est.coef_.shape[0] != len(model.classes_):
                raise ValueError("only multiclass (three or more classes) models are supported")
            weights.append(est.coef_.T.astype(np.float32))
            intercepts.append(est.intercept_.astype(np.float32))
            slopes.append(np.array([c.a_ for c in fold.calibrators], dtype=np.float32))
            offsets.append(np.array([c.b_ for c in fold.calibrators], dtype=np.float32))
        return cls(
            model.classes_,
            np.stack(weights),
            np.stack(intercepts),
            np.stack(slopes),
            np.stack(offsets),
        )

    def scale_features(self, scale: np.ndarray) -> None:
        """Make the model take unscaled input when it was fitted on x * scale (per feature)."""
        self.weights *= scale.astype(np.float32)[None, :, None]

    def predict_proba(self, x: sparse.csr_matrix | np.ndarray | Row) -> np.ndarray:
        if isinstance(x, Row):
            return self._predict_row(x.indices, x.data)
        if sparse.issparse(x) and x.shape[0] == 1:
            x = x.tocsr()
            return self._predict_row(x.indices, x.data)
        total = np.zeros((x.shape[0], len(self.classes_)), dtype=np.float64)
        for w, b, a, c in zip(
            self.weights, self.intercepts, self.slopes, self.offsets, strict=True
        ):
            total += _calibrated(np.asarray(x @ w) + b, a, c)
        return total / len(self.weights)

    def _predict_row(self, indices: np.ndarray, data: np.ndarray) -> np.ndarray:
        """One message: gather only the rows of its non-zero features."""
        total = np.zeros((1, len(self.classes_)), dtype=np.float64)
        for w, b, a, c in zip(
            self.weights, self.intercepts, self.slopes, self.offsets, strict=True
        ):
            total += _calibrated((data @ w[indices])[None, :] + b, a, c)
        return total / len(self.weights)

    def predict(self, x: sparse.csr_matrix | np.ndarray) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(x), axis=1)]


def _calibrated(scores: np.ndarray, a: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Platt's sigmoid per class, normalised over the classes."""
    p = 1.0 / (1.0 + np.exp(a * scores + c))
    norm = p.sum(axis=1, keepdims=True)
    return np.where(norm > 0, p / np.where(norm > 0, norm, 1), 1.0 / p.shape[1])

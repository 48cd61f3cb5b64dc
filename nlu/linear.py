"""A calibrated linear classifier reduced to arrays, for fast single-message prediction.

scikit-learn's CalibratedClassifierCV validates its input once per class and per fold, which
costs milliseconds per message; the model itself is a few matrix products. This keeps exactly
its arithmetic (Platt sigmoid per class, normalised, averaged over folds) in plain numpy.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.calibration import CalibratedClassifierCV


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

    def predict_proba(self, x: sparse.csr_matrix | np.ndarray) -> np.ndarray:
        total = np.zeros((x.shape[0], len(self.classes_)), dtype=np.float64)
        one_sparse_row = sparse.issparse(x) and x.shape[0] == 1
        if one_sparse_row:
            x = x.tocsr()
        for w, b, a, c in zip(
            self.weights, self.intercepts, self.slopes, self.offsets, strict=True
        ):
            # one message: gather only the rows of its non-zero features
            scores = (
                (x.data @ w[x.indices])[None, :] + b if one_sparse_row else np.asarray(x @ w) + b
            )
            p = 1.0 / (1.0 + np.exp(a * scores + c))
            norm = p.sum(axis=1, keepdims=True)
            p = np.where(norm > 0, p / np.where(norm > 0, norm, 1), 1.0 / p.shape[1])
            total += p
        return total / len(self.weights)

    def predict(self, x: sparse.csr_matrix | np.ndarray) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(x), axis=1)]

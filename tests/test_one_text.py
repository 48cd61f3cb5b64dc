"""The one-message transforms (nlu/one_text.py) give scikit-learn's numbers bit for bit: the
parse uses them instead of TfidfVectorizer.transform, scipy's hstack and
LogisticRegression.predict_proba/predict. Fast: small models fitted here, no database."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from nlu.emergency import EmergencyClassifier, training_rows
from nlu.features import TextFeatures, words
from nlu.one_text import OneText, Row, decision

ROOT = Path(__file__).resolve().parent.parent


def _texts() -> list[str]:
    rows = [json.loads(line) for line in (ROOT / "nlu/data/heldout.jsonl").open(encoding="utf-8")]
    texts = [r["text"] for r in rows[:300]]
    # what a parse meets too: nothing in the vocabulary, spaces, Latin letters, repeats
    return texts + ["", "   ", "zzzz qqqq", "ＡＢＣ abc ABC", "路灯路灯路灯不亮", "？？？"]


def _vectorizers() -> list[TfidfVectorizer]:
    return [
        TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, min_df=1),
        TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True),
        TfidfVectorizer(
            tokenizer=words,
            lowercase=False,
            token_pattern=None,
            ngram_range=(1, 2),
            sublinear_tf=True,
        ),
        TfidfVectorizer(analyzer="char", ngram_range=(1, 2)),  # plain tf
    ]


@pytest.mark.parametrize("index", range(4))
def test_tfidf_row_is_sklearns_row(index: int) -> None:
    texts = _texts()
    vectorizer = _vectorizers()[index].fit(texts[::2])  # half the texts unseen
    one = OneText(vectorizer)
    for text in texts:
        expected = vectorizer.transform([text]).tocsr()
        row = one.row(text)
        assert row.width == expected.shape[1]
        assert np.array_equal(row.indices, expected.indices), text
        assert np.array_equal(row.data, expected.data), text  # exact, not approximately


def test_stacked_row_is_hstack_and_dense_blocks_drop_zeros() -> None:
    texts = _texts()
    a, b = _vectorizers()[0].fit(texts), _vectorizers()[2].fit(texts)
    dense = np.array([0.0, 0.25, 0.0, -1.5], dtype=np.float32)
    for text in texts[:50]:
        expected = sparse.hstack(
            [a.transform([text]), b.transform([text]), sparse.csr_matrix(dense[None, :])],
            format="csr",
        )
        row = Row.stack([OneText(a).row(text), OneText(b).row(text), Row.dense(dense)])
        assert row.width == expected.shape[1]
        assert np.array_equal(row.indices, expected.indices)
        assert np.array_equal(row.data, expected.data)
        assert row.data.dtype == expected.data.dtype == np.float64


def test_decision_is_logistic_regressions() -> None:
    texts = _texts()
    vectorizer = _vectorizers()[1].fit(texts)
    x = vectorizer.transform(texts)
    binary = LogisticRegression(max_iter=500).fit(x, [len(t) % 2 for t in texts])
    three = LogisticRegression(max_iter=500).fit(x, [str(len(t) % 3) for t in texts])
    one = OneText(vectorizer)
    for text in texts[:80]:
        row = one.row(text)
        xt = vectorizer.transform([text])
        assert np.array_equal(
            decision(binary.coef_, binary.intercept_, row), binary.decision_function(xt)
        )
        scores = decision(three.coef_, three.intercept_, row)
        assert np.array_equal(scores, three.decision_function(xt)[0])
        assert three.classes_[int(np.argmax(scores))] == three.predict(xt)[0]


def test_features_transform_one_equals_transform() -> None:
    texts = _texts()
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(len(texts), 8)).astype(np.float32)
    features = TextFeatures(embedding_weight=2.0)
    features.fit(texts[::2], vectors[::2])
    for text, vector in zip(texts, vectors, strict=True):
        expected = features.transform([text], vector[None, :])
        row = features.transform_one(text, vector)
        assert np.array_equal(row.indices, expected.indices)
        assert np.array_equal(row.data, expected.data)


def test_emergency_judge_equals_the_sklearn_path() -> None:
    """The emergency classifier's one-row judge against its batch features and sklearn's
    predict_proba / predict (n-grams and signs; no sentence vectors here)."""
    rows = training_rows()[::4]
    clf = EmergencyClassifier().fit(
        [t for t, _, _ in rows], [y for _, y, _ in rows], [n for _, _, n in rows]
    )
    for text in _texts()[:120] + [t for t, _, _ in rows[:40]]:
        x = clf._features([text])
        p, first = clf.judge(text)
        assert p == float(clf.model.predict_proba(x)[0, 1])
        assert first == str(clf.number_model.predict(x)[0])


def test_dialogue_acts_classify_equals_the_sklearn_path() -> None:
    """The dialogue-act model's one-row scores against its vectoriser and SVM, every state."""
    from nlu.dialogue_acts import STATES, _doc, default_model, read_heldout

    model = default_model()
    for row in read_heldout()[:150]:
        for state in STATES:
            found = model.classify(row["text"], state)
            x = model.vectoriser.transform([_doc(row["text"], state, None)])
            scores = model.model.decision_function(x)[0]
            allowed = model._mask[state]
            e = np.where(allowed, np.exp(3.0 * (scores - scores[allowed].max())), 0.0)
            best = int(np.argmax(e))
            assert found.act == str(model.model.classes_[best])
            assert found.confidence == float(e[best] / e.sum())


def test_cpca_record_is_the_transform_record() -> None:
    """nlu.entities.cpca_record skips cpca's one-row DataFrame and gives the same record."""
    import warnings

    from nlu.entities import cpca_record

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import cpca

    places = [
        "石狮市湖滨街道振狮路",
        "福建省泉州市石狮市宝盖镇",
        "泉州市洛江区万安塘西工业区",
        "徐汇区虹漕路461号58号楼5楼",
        "朝阳区",
        "新华路中段",
        "",
        "上海",
        "石狮",
    ]
    for place in places:
        expected = cpca.transform([place]).to_dict("records")[0]
        assert cpca_record(cpca, place) == expected, place

"""`hotline nlu eval-csv --embed-chars N`: the embedder sees only the opening of each text."""

from __future__ import annotations

import hashlib

import numpy as np

from nlu.evaluate import evaluate_csv


class RecordingEmbedder:
    """A deterministic embedder (a hash of each character, averaged) that keeps what it saw."""

    name = "recording"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.seen.extend(texts)
        out = np.zeros((len(texts), 16), dtype=np.float32)
        for row, text in enumerate(texts):
            for ch in text:
                digest = hashlib.sha256(ch.encode()).digest()
                out[row] += np.frombuffer(digest[:16], dtype=np.uint8) / 255.0
            out[row] /= max(np.linalg.norm(out[row]), 1e-9)
        return out


def _data() -> tuple[tuple[list[str], list[str]], tuple[list[str], list[str]]]:
    road = "路灯不亮道路坑洼" * 3
    school = "学校收费食堂卫生" * 3
    train = ([f"{road}{i}号路段" for i in range(6)] + [f"{school}{i}年级" for i in range(6)],)
    labels = ["交通"] * 6 + ["教育"] * 6
    test = ([f"{road}九号", f"{school}九班"], ["交通", "教育"])
    return (train[0], labels), test


def test_embed_chars_truncates_what_the_embedder_sees_and_still_classifies():
    train, test = _data()
    embedder = RecordingEmbedder()
    report = evaluate_csv(train, test, embedder=embedder, embed_chars=5, baseline=False)
    assert embedder.seen, "the embedder was not used"
    assert all(len(t) <= 5 for t in embedder.seen)
    assert len(embedder.seen) == len(train[0]) + len(test[0])
    assert report["engine"]["embed_chars"] == 5
    assert report["engine"]["accuracy"] == 1.0


def test_without_embed_chars_the_embedder_sees_whole_texts():
    train, test = _data()
    embedder = RecordingEmbedder()
    evaluate_csv(train, test, embedder=embedder, baseline=False)
    assert max(len(t) for t in embedder.seen) > 5

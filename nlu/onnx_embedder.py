"""The default sentence encoder at run time: the int8 ONNX export of the e5 folder on
onnxruntime, with the folder's own `tokenizers` tokenizer. No torch is imported here.

See nlu/onnx_export.py for why and how the file is made.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

DEFAULT_MAX_TOKENS = 512


class OnnxEmbedder:
    """Encodes texts into L2-normalised float32 vectors (one row per text)."""

    def __init__(
        self, session, tokenizer, name: str, *, query_prefix: str, batch_size: int
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.session = session
        self.tokenizer = tokenizer
        self.name = name
        self.query_prefix = query_prefix
        self.batch_size = batch_size
        width = session.get_outputs()[0].shape[-1]  # static in the exported graph
        self.dim = width if isinstance(width, int) else int(self.encode(["维度"]).shape[1])

    @classmethod
    def open(
        cls,
        onnx_file: Path,
        model_dir: Path,
        *,
        name: str | None = None,
        query_prefix: str,
        num_threads: int,
        batch_size: int = 32,
    ) -> OnnxEmbedder:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        # idle pool threads sleep instead of spinning for work: measured with 2 threads on 2
        # cores, spinning bought 7% more parses/s for 50% more CPU taken from other processes
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # its warnings about unused initialisers are noise
        session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        tokenizer = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=_max_tokens(Path(model_dir)))
        pad = _pad_token(Path(model_dir))
        pad_id = tokenizer.token_to_id(pad)
        if pad_id is None:
            raise ValueError(f"{model_dir}: the tokenizer has no padding token {pad!r}")
        tokenizer.enable_padding(pad_id=pad_id, pad_token=pad)
        return cls(
            session,
            tokenizer,
            name or Path(model_dir).name,
            query_prefix=query_prefix,
            batch_size=batch_size,
        )

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed `texts` (each with the query prefix); shape (len(texts), dim), unit rows."""
        items = checked_texts(texts)
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Sorting by length keeps padding (wasted work) small inside each batch.
        order = sorted(range(len(items)), key=lambda i: len(items[i]))
        out: np.ndarray | None = None
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            encodings = self.tokenizer.encode_batch([self.query_prefix + items[i] for i in chunk])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            vectors = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
            if out is None:
                out = np.empty((len(items), vectors.shape[1]), dtype=np.float32)
            out[chunk] = vectors
        assert out is not None
        # The graph normalises already; this only removes float drift from int8 arithmetic.
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def __repr__(self) -> str:
        return f"OnnxEmbedder(name={self.name!r}, dim={self.dim})"


def checked_texts(texts: Sequence[str]) -> list[str]:
    """The texts as a list, or TypeError: one string or a non-string item is a caller's bug."""
    if isinstance(texts, str):
        raise TypeError("encode() takes a list of texts, not a single string")
    items = list(texts)
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, not str")
    return items


def _max_tokens(model_dir: Path) -> int:
    try:
        config = json.loads((model_dir / "sentence_bert_config.json").read_text(encoding="utf-8"))
        return int(config.get("max_seq_length") or DEFAULT_MAX_TOKENS)
    except (OSError, ValueError):
        return DEFAULT_MAX_TOKENS


def _pad_token(model_dir: Path) -> str:
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        try:
            config = json.loads((model_dir / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        pad = config.get("pad_token")
        if isinstance(pad, dict):
            pad = pad.get("content")
        if isinstance(pad, str) and pad:
            return pad
    return "<pad>"

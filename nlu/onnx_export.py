"""Export a local sentence-transformers folder to one int8 ONNX file that onnxruntime runs.

Why: in this service the encoder sits on every message's path. Measured on the 2-core
machine (bench/embeddings.py), sentence-transformers on torch costs ~3.4 s of imports
before the first sentence and ~24 ms p50 / 31 ms p99 per sentence, which alone breaks the
NLU's 5 s start-up and 30 ms parse budgets. The same weights exported to ONNX with the
linear layers dynamically quantised to int8 run in ~5 ms p50 / 7 ms p99 under onnxruntime,
which imports and loads in ~0.3 s; vectors keep a cosine of >= 0.98 with the float32 model.

The export is a one-off (about 15 s) done with torch, transformers and sentence-transformers
themselves: the folder is loaded by sentence-transformers, its transformer is traced together
with its pooling and normalisation, and the result is checked against sentence-transformers'
own vectors before it is kept. The file lives in `<folder>/onnx/` with a marker naming the
source it was made from, so a changed or rebuilt folder is exported again.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# Bump when the exported graph or the quantisation changes: older exports are then redone.
EXPORT_FORMAT = 1
ONNX_DIR = "onnx"
ONNX_FILE = "model_qint8.onnx"
ONNX_MARKER = "export.json"
# Vectors of the int8 graph must stay this close to sentence-transformers' float32 ones.
MIN_COSINE = 0.95
_PROBES = (
    "我家楼下饭店油烟很大，晚上根本没法开窗",
    "社保卡丢了怎么补办？",
    "请问公积金提取需要什么材料",
    "工地晚上十一点还在打桩，吵得睡不着",
    "路灯坏了好几天了没人修",
    "hello，我想问一下居住证怎么办理",
)


class ExportError(RuntimeError):
    """The folder cannot be exported to ONNX (unsupported pooling, missing files, bad result)."""


def onnx_path(model_dir: Path) -> Path:
    return Path(model_dir) / ONNX_DIR / ONNX_FILE


def source_signature(model_dir: Path) -> dict:
    """What the export depends on: the weight files' sizes and times and the pooling config."""
    model_dir = Path(model_dir)
    weights = sorted(
        p for p in model_dir.iterdir() if p.suffix in (".safetensors", ".bin") and p.is_file()
    )
    if not weights:
        raise ExportError(f"{model_dir} has no model weights (*.safetensors or *.bin)")
    return {
        "format": EXPORT_FORMAT,
        "weights": [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in weights],
        "pooling": pooling_mode(model_dir),
    }


def read_export_marker(model_dir: Path) -> dict | None:
    try:
        return json.loads((Path(model_dir) / ONNX_DIR / ONNX_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_current_export(model_dir: Path) -> bool:
    marker = read_export_marker(model_dir)
    if marker is None or not onnx_path(model_dir).is_file():
        return False
    try:
        return marker.get("source") == source_signature(model_dir)
    except (ExportError, OSError):
        return False


def pooling_mode(model_dir: Path) -> str:
    """'mean' or 'cls' from the folder's Pooling module; other poolings are not exported."""
    model_dir = Path(model_dir)
    try:
        modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportError(f"{model_dir}/modules.json unreadable: {exc}") from exc
    pooling = [m for m in modules if str(m.get("type", "")).endswith("Pooling")]
    if not pooling:
        raise ExportError(f"{model_dir} has no Pooling module")
    config_file = model_dir / pooling[0].get("path", "") / "config.json"
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportError(f"{config_file} unreadable: {exc}") from exc
    modes = [k for k, v in config.items() if k.startswith("pooling_mode_") and v is True]
    if modes == ["pooling_mode_mean_tokens"]:
        return "mean"
    if modes == ["pooling_mode_cls_token"]:
        return "cls"
    raise ExportError(
        f"{model_dir}: pooling {modes} cannot be exported; use the sentence-transformers backend"
    )


def export_int8(model_dir: Path) -> Path:
    """Export `model_dir` to `<model_dir>/onnx/model_qint8.onnx` (replacing an old export)."""
    model_dir = Path(model_dir)
    started = time.perf_counter()
    signature = source_signature(model_dir)
    try:
        import torch
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ExportError(f"exporting to ONNX needs torch, onnx and onnxruntime: {exc}") from exc

    st = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    st.eval()
    transformer = st[0].auto_model
    graph = _pooled_encoder(transformer, signature["pooling"], torch)
    sample = st.tokenizer(["query: " + _PROBES[0]], return_tensors="pt")
    target = model_dir / ONNX_DIR
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target) as tmp:
        fp32 = Path(tmp) / "model_fp32.onnx"
        int8 = Path(tmp) / ONNX_FILE
        with torch.inference_mode(), warnings.catch_warnings():
            # the tracer warns about Python-side shape checks that hold for every input here
            warnings.simplefilter("ignore")
            torch.onnx.export(
                graph,
                (sample["input_ids"], sample["attention_mask"]),
                str(fp32),
                input_names=["input_ids", "attention_mask"],
                output_names=["embedding"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "tokens"},
                    "attention_mask": {0: "batch", 1: "tokens"},
                    "embedding": {0: "batch"},
                },
                opset_version=17,
                dynamo=False,  # the TorchScript exporter needs no onnxscript
            )
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
        cosine = _check_against(st, int8, model_dir)
        if cosine < MIN_COSINE:
            raise ExportError(
                f"the int8 export of {model_dir} drifts from the model (min cosine {cosine:.3f})"
            )
        os.replace(int8, onnx_path(model_dir))
    marker = {
        "source": signature,
        "min_cosine_vs_sentence_transformers": round(cosine, 5),
        "torch": torch.__version__,
        "onnxruntime": metadata.version("onnxruntime"),
        "seconds": round(time.perf_counter() - started, 1),
    }
    tmp_marker = target / (ONNX_MARKER + ".tmp")
    tmp_marker.write_text(json.dumps(marker, indent=2), encoding="utf-8")
    tmp_marker.replace(target / ONNX_MARKER)
    log.info(
        "exported %s to int8 ONNX in %.1f s (min cosine %.4f)", model_dir, marker["seconds"], cosine
    )
    return onnx_path(model_dir)


def remove_export(model_dir: Path) -> None:
    shutil.rmtree(Path(model_dir) / ONNX_DIR, ignore_errors=True)


def _pooled_encoder(transformer, pooling: str, torch):
    """The transformer with its pooling and normalisation, as one module to trace."""

    class PooledEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids, attention_mask):
            hidden = self.transformer(
                input_ids=input_ids, attention_mask=attention_mask
            ).last_hidden_state
            if pooling == "cls":
                pooled = hidden[:, 0]
            else:
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    return PooledEncoder().eval()


def _check_against(st, int8: Path, model_dir: Path) -> float:
    from nlu.onnx_embedder import OnnxEmbedder

    texts = ["query: " + t for t in _PROBES]
    reference = st.encode(
        texts, prompt="", normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    candidate = OnnxEmbedder.open(int8, model_dir, query_prefix="", num_threads=1).encode(
        list(texts)
    )
    return float(np.min(np.sum(reference * candidate, axis=1)))

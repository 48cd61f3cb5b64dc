"""Bulk import and export of entries and providers: JSONL, CSV and XLSX (Excel).

Reading never touches the database: a file becomes rows with their row numbers, each row
becomes a validated record or an error naming the row and the reason. Whether anything is
written is the caller's decision (all or nothing unless a partial import is asked for).

Row numbers are what a person sees: the line in a JSONL file, the spreadsheet row in CSV and
XLSX (the header is row 1, so the first record is row 2).

In CSV and XLSX, list columns (alternatives, tags, keywords) hold items separated by "|" or
line breaks, or a JSON array. Headers may be the field names or their Chinese labels
(问题, 相似问法, 答案, 单位, ... and what cities' exports say: 知识标题, 答复口径, 主办单位, ...);
a unit may be given by code or by name. A spreadsheet without an id column (most cities')
gets ids derived from the questions, stable across re-imports.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from knowledgebase.models import FaqEntry, Provider
from knowledgebase.store import ENTRY_FIELDS, PROVIDER_FIELDS
from knowledgebase.text import normalise

Kind = Literal["entries", "providers"]
FORMATS = ("jsonl", "csv", "xlsx")
MAX_ROWS = 100_000
MAX_ERRORS_SHOWN = 200

LIST_FIELDS = {"alternatives", "tags", "keywords"}

HEADER_ALIASES = {
    "编号": "id",
    "知识编号": "id",
    "问题": "question",
    "标准问题": "question",
    # what cities' knowledge-base exports call the question and the answer
    "知识标题": "question",
    "标题": "question",
    "知识内容": "answer",
    "答复口径": "answer",
    "答复内容": "answer",
    "标准答案": "answer",
    "主办单位": "unit",
    "所属部门": "unit",
    "责任部门": "unit",
    "相似问法": "alternatives",
    "其他问法": "alternatives",
    "相似问题": "alternatives",
    "答案": "answer",
    "答复": "answer",
    "回答": "answer",
    "单位": "unit",
    "承办单位": "unit",
    "责任单位": "unit",
    "标签": "tags",
    "生效日期": "valid_from",
    "有效期起": "valid_from",
    "失效日期": "valid_until",
    "有效期止": "valid_until",
    "状态": "status",
    "名称": "name",
    "服务商": "name",
    "类别": "category",
    "服务类别": "category",
    "电话": "phone",
    "联系电话": "phone",
    "区域": "area",
    "服务区域": "area",
    "营业时间": "hours",
    "关键词": "keywords",
    "启用": "active",
}
STATUS_ALIASES = {"草稿": "draft", "已发布": "published", "发布": "published", "已下架": "retired"}
TRUE_WORDS = {"1", "true", "yes", "y", "是", "启用"}
FALSE_WORDS = {"0", "false", "no", "n", "否", "停用"}


class ImportFileError(ValueError):
    """The file as a whole cannot be read (format, encoding, header)."""


@dataclass
class RowError:
    row: int
    reason: str
    id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "id": self.id, "reason": self.reason}


@dataclass
class Parsed:
    kind: Kind
    format: str
    records: list[tuple[int, BaseModel]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.records) + len(self.errors)


def format_of(name: str | None, declared: str | None = None) -> str:
    if declared:
        fmt = declared.lower().lstrip(".")
    else:
        suffix = Path(name or "").suffix.lower().lstrip(".")
        fmt = {"ndjson": "jsonl", "jsonl": "jsonl", "csv": "csv", "xlsx": "xlsx"}.get(suffix, "")
    if fmt not in FORMATS:
        raise ImportFileError(
            f"cannot tell the format of {name or 'the upload'}: use a .jsonl, .csv or .xlsx "
            "file (or say which with format=)"
        )
    return fmt


# -- reading -------------------------------------------------------------------------------------


def _jsonl_rows(data: bytes) -> Iterable[tuple[int, dict | RowError]]:
    text = _decode(data)
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, RowError(number, f"not valid JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(value, dict):
            yield number, RowError(number, "a line must be a JSON object")
            continue
        yield number, value


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            f"the file is not UTF-8 text (byte {exc.start}); save it as UTF-8 (Excel: "
            "'CSV UTF-8') or upload the .xlsx"
        ) from exc


def _header(cells: list[Any]) -> list[str | None]:
    names: list[str | None] = []
    for cell in cells:
        name = str(cell).strip() if cell is not None else ""
        names.append(HEADER_ALIASES.get(name, name.lower()) if name else None)
    seen = [n for n in names if n]
    dupes = sorted({n for n in seen if seen.count(n) > 1})
    if dupes:
        raise ImportFileError(f"the header names {', '.join(dupes)} more than once")
    if not seen:
        raise ImportFileError("the first row must be a header naming the columns")
    return names


def _table_rows(
    header: list[str | None], rows: Iterable[tuple[int, list[Any]]]
) -> Iterable[tuple[int, dict]]:
    for number, cells in rows:
        if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
            continue
        record = {}
        for name, cell in zip(header, cells, strict=False):
            if name is not None:
                record[name] = cell
        if len(cells) > len(header) and any(c not in (None, "") for c in cells[len(header) :]):
            record["__extra__"] = True
        yield number, record


def _csv_rows(data: bytes) -> tuple[list[str | None], Iterable[tuple[int, dict]]]:
    reader = csv.reader(io.StringIO(_decode(data), newline=""))
    try:
        header = _header(next(reader))
    except StopIteration as exc:
        raise ImportFileError("the file is empty") from exc
    except csv.Error as exc:
        raise ImportFileError(f"not a readable CSV file: {exc}") from exc

    def records() -> Iterable[tuple[int, list[Any]]]:
        number = 1
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise ImportFileError(f"row {number + 1}: not readable CSV: {exc}") from exc
            number += 1
            yield number, cells

    return header, _table_rows(header, records())


def _xlsx_rows(data: bytes) -> tuple[list[str | None], Iterable[tuple[int, dict]]]:
    import zipfile

    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ImportFileError(f"not a readable .xlsx workbook: {exc}") from exc
    sheet = book.worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    try:
        header = _header(list(next(rows)))
    except StopIteration as exc:
        raise ImportFileError("the first sheet is empty") from exc
    return header, _table_rows(header, ((n, list(r)) for n, r in enumerate(rows, start=2)))


# -- turning raw rows into records ---------------------------------------------------------------


def _kind_of(keys: set[str]) -> Kind:
    if {"question", "answer"} & keys:
        return "entries"
    if {"name", "phone", "category"} & keys:
        return "providers"
    raise ImportFileError(
        "cannot tell whether the file holds FAQ entries (question, answer, ...) or providers "
        "(name, category, phone, ...)"
    )


def _as_list(value: Any) -> Any:
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError:
                parsed = None
            if isinstance(parsed, list):
                return parsed
        return [p.strip() for p in text.replace("\r", "\n").replace("|", "\n").split("\n")]
    return value


def _as_date(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, str):
        text = value.strip().replace("/", "-").replace(".", "-")
        return text or None
    return value


def _as_bool(value: Any) -> Any:
    if isinstance(value, str):
        word = value.strip().lower()
        if not word:
            return True
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    if value is None:
        return True
    return value


def _cell_text(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return value.strip() or None
    return value


def _normalise(raw: dict, kind: Kind, tabular: bool, units: dict[str, str] | None) -> dict:
    record: dict[str, Any] = {}
    for key, value in raw.items():
        if key in LIST_FIELDS:
            value = _as_list(value) if tabular or isinstance(value, str) else value
        elif key in ("valid_from", "valid_until"):
            value = _as_date(value)
        elif key == "active":
            value = _as_bool(value)
        elif tabular:
            value = _cell_text(value)
        if key == "status" and isinstance(value, str):
            value = STATUS_ALIASES.get(value.strip(), value.strip().lower())
        record[key] = value
    if kind == "entries" and "id" in record and record["id"] is not None:
        record["id"] = str(record["id"]).strip()
    if kind == "entries" and units is not None and isinstance(record.get("unit"), str):
        record["unit"] = units.get(record["unit"].strip(), record["unit"].strip())
    if kind == "entries" and record.get("status") is None:
        record.pop("status", None)
    return record


def explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "row"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing" or (
            err.get("input", "") is None and err["type"].endswith("_type")
        ):
            message = "is required"
        elif err["type"] == "extra_forbidden":
            message = "is not a known field"
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def derived_id(question: str) -> str:
    """The id of an entry imported without one: the same question gets the same id, so a
    city can re-import its spreadsheet (which has no ids of ours) to update it."""
    return "q-" + hashlib.sha1(normalise(question).encode("utf-8")).hexdigest()[:12]


def parse(
    data: bytes,
    fmt: str,
    *,
    kind: Kind | None = None,
    unit_codes: set[str] | None = None,
    unit_names: dict[str, str] | None = None,
) -> Parsed:
    """Validate every row of a file. `unit_codes` (when given) are the units entries may name;
    `unit_names` maps unit names to codes, for spreadsheets written with names."""
    ignored: list[str] = []
    if fmt == "jsonl":
        raw_rows = list(_jsonl_rows(data))
        tabular = False
        keys = set().union(*(r.keys() for _, r in raw_rows if isinstance(r, dict)))
    else:
        header, rows = _csv_rows(data) if fmt == "csv" else _xlsx_rows(data)
        raw_rows = list(rows)
        tabular = True
        keys = {h for h in header if h}
    if len(raw_rows) > MAX_ROWS:
        raise ImportFileError(f"the file has {len(raw_rows)} rows; at most {MAX_ROWS} at once")
    if not raw_rows:
        raise ImportFileError("the file has no records")
    kind = kind or _kind_of(keys)
    model: type[BaseModel] = FaqEntry if kind == "entries" else Provider
    known = set(ENTRY_FIELDS if kind == "entries" else PROVIDER_FIELDS)
    if tabular:
        # spreadsheets often carry notes columns: say they were ignored instead of failing
        ignored = sorted(keys - known)
    names = {**(unit_names or {})}
    # most cities' spreadsheets have no id column: each entry is then named by its question
    derive_ids = kind == "entries" and "id" not in keys
    out = Parsed(kind=kind, format=fmt, ignored_columns=ignored)
    first_row: dict[str, int] = {}
    for number, raw in raw_rows:
        if isinstance(raw, RowError):
            out.errors.append(raw)
            continue
        if raw.pop("__extra__", False):
            out.errors.append(RowError(number, "the row has more cells than the header"))
            continue
        if tabular:
            raw = {k: v for k, v in raw.items() if k in known}
        record = _normalise(raw, kind, tabular, names)
        if derive_ids and isinstance(record.get("question"), str) and record["question"].strip():
            record["id"] = derived_id(record["question"])
        row_id = record.get("id") if isinstance(record.get("id"), str) else None
        try:
            item = model(**record)
        except ValidationError as exc:
            out.errors.append(RowError(number, explain(exc), row_id))
            continue
        except TypeError as exc:
            out.errors.append(RowError(number, str(exc), row_id))
            continue
        if item.id in first_row:
            what = "the same question" if derive_ids else f"id {item.id}"
            out.errors.append(
                RowError(number, f"{what} is already on row {first_row[item.id]}", item.id)
            )
            continue
        if (
            kind == "entries"
            and unit_codes is not None
            and item.unit
            and item.unit not in unit_codes
        ):
            out.errors.append(RowError(number, f"unit: unknown unit {item.unit!r}", item.id))
            continue
        first_row[item.id] = number
        out.records.append((number, item))
    return out


# -- export ----------------------------------------------------------------------------------------


def _row_values(item: BaseModel, columns: tuple[str, ...], tabular: bool) -> list[Any]:
    data = item.model_dump(mode="json")
    values = []
    for column in columns:
        value = data.get(column)
        if tabular and column in LIST_FIELDS:
            items = value or []
            # "|" and line breaks separate items; an item holding one needs the JSON form
            if any("|" in v or "\n" in v for v in items):
                value = json.dumps(items, ensure_ascii=False)
            else:
                value = "|".join(items)
        elif tabular and value is None:
            value = ""
        values.append(value)
    return values


def export(items: list[BaseModel], kind: Kind, fmt: str) -> bytes:
    columns = ENTRY_FIELDS if kind == "entries" else PROVIDER_FIELDS
    if fmt == "jsonl":
        lines = [json.dumps(i.model_dump(mode="json"), ensure_ascii=False) for i in items]
        return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
    if fmt == "csv":
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer)
        writer.writerow(columns)
        for item in items:
            writer.writerow(_row_values(item, columns, True))
        # with a BOM, Excel opens the file as UTF-8
        return ("\ufeff" + buffer.getvalue()).encode("utf-8")
    if fmt == "xlsx":
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet(kind)
        sheet.append(list(columns))
        for item in items:
            sheet.append(_row_values(item, columns, True))
        buffer = io.BytesIO()
        book.save(buffer)
        return buffer.getvalue()
    raise ImportFileError(f"unknown format {fmt!r}")

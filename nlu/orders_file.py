"""A city's historical work orders as labelled examples: CSV or XLSX with a text, a unit and a
request type per row (`hotline nlu import-orders`).

Reading never touches the database. Every row becomes an example or an error naming the row
(the spreadsheet row: the header is row 1) and the reason, as the knowledge-base import does.
Headers may be English (text, unit, request_type) or the usual Chinese column names; a unit
may be given by code or by name, a request type by code or in Chinese (投诉, 举报, ...).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from nlu.types import REQUEST_TYPE_LABELS, REQUEST_TYPES

MAX_ROWS = 200_000
MAX_TEXT_CHARS = 4000

HEADER_ALIASES = {
    "text": "text",
    "content": "text",
    "内容": "text",
    "诉求内容": "text",
    "工单内容": "text",
    "来电内容": "text",
    "留言详情": "text",
    "留言主题": "text",
    "标题": "text",
    "unit": "unit",
    "单位": "unit",
    "承办单位": "unit",
    "责任单位": "unit",
    "主办单位": "unit",
    "request_type": "request_type",
    "type": "request_type",
    "类型": "request_type",
    "诉求类型": "request_type",
    "工单类型": "request_type",
}
TYPE_ALIASES = {label: code for code, label in REQUEST_TYPE_LABELS.items()} | {
    "求助": "seek_help",
    "建言": "suggest",
    "建议": "suggest",
    "表扬": "praise",
    "感谢": "praise",
}


class OrdersFileError(ValueError):
    """The file as a whole cannot be read (format, encoding, header)."""


@dataclass(frozen=True)
class LabelledOrder:
    row: int
    text: str
    unit: str | None
    request_type: str | None


@dataclass
class RowError:
    row: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "reason": self.reason}


@dataclass
class ParsedOrders:
    orders: list[LabelledOrder] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def format_of(name: str) -> str:
    lower = name.lower()
    for ext in ("csv", "xlsx"):
        if lower.endswith("." + ext):
            return ext
    raise OrdersFileError(f"{name}: not a .csv or .xlsx file")


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise OrdersFileError("the CSV is neither UTF-8 nor GB18030 text")


def _csv_rows(data: bytes) -> Iterable[tuple[int, list[Any]]]:
    try:
        yield from enumerate(csv.reader(io.StringIO(_decode(data), newline="")), 1)
    except csv.Error as exc:
        raise OrdersFileError(f"not a readable CSV: {exc}") from exc


def _xlsx_rows(data: bytes) -> Iterable[tuple[int, list[Any]]]:
    from zipfile import BadZipFile

    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (BadZipFile, OSError, KeyError, ValueError) as exc:
        raise OrdersFileError(f"not a readable .xlsx workbook: {exc}") from exc
    try:
        for number, cells in enumerate(book.worksheets[0].iter_rows(values_only=True), 1):
            yield number, list(cells)
    finally:
        book.close()


def _header(cells: list[Any]) -> dict[str, int]:
    columns: dict[str, int] = {}
    for i, cell in enumerate(cells):
        name = str(cell).strip() if cell is not None else ""
        key = HEADER_ALIASES.get(name, HEADER_ALIASES.get(name.lower()))
        if key and key not in columns:
            columns[key] = i
    if "text" not in columns:
        raise OrdersFileError(
            "the header (row 1) names no text column (text, 内容, 诉求内容, 工单内容, ...)"
        )
    if "unit" not in columns and "request_type" not in columns:
        raise OrdersFileError(
            "the header (row 1) names neither a unit column (unit, 承办单位, ...) nor a "
            "request-type column (request_type, 诉求类型, ...)"
        )
    return columns


def _cell(cells: list[Any], index: int | None) -> str:
    if index is None or index >= len(cells) or cells[index] is None:
        return ""
    return str(cells[index]).strip()


def parse_orders(data: bytes, fmt: str, resolve_unit: Callable[[str], str | None]) -> ParsedOrders:
    """Rows of a CSV or XLSX file as labelled orders, and the rows that are not.

    `resolve_unit` turns a unit code or name into a unit code, or None when unknown."""
    rows = _csv_rows(data) if fmt == "csv" else _xlsx_rows(data)
    parsed = ParsedOrders()
    columns: dict[str, int] | None = None
    for number, cells in rows:
        if columns is None:
            columns = _header(cells)
            continue
        if all(c is None or not str(c).strip() for c in cells):
            continue
        if number > MAX_ROWS + 1:
            raise OrdersFileError(f"more than {MAX_ROWS} rows; split the file")
        text = _cell(cells, columns.get("text"))
        unit_cell = _cell(cells, columns.get("unit"))
        type_cell = _cell(cells, columns.get("request_type"))
        if not text:
            parsed.errors.append(RowError(number, "empty text"))
            continue
        if len(text) > MAX_TEXT_CHARS:
            parsed.errors.append(RowError(number, f"text longer than {MAX_TEXT_CHARS} characters"))
            continue
        unit = resolve_unit(unit_cell) if unit_cell else None
        if unit_cell and unit is None:
            parsed.errors.append(RowError(number, f"unknown unit {unit_cell!r}"))
            continue
        request_type = TYPE_ALIASES.get(type_cell, type_cell.lower()) if type_cell else None
        if request_type is not None and request_type not in REQUEST_TYPES:
            parsed.errors.append(
                RowError(
                    number,
                    f"unknown request type {type_cell!r} (one of {', '.join(REQUEST_TYPES)} "
                    "or 咨询/投诉/求助/建议/举报/表扬)",
                )
            )
            continue
        if unit is None and request_type is None:
            parsed.errors.append(RowError(number, "neither a unit nor a request type"))
            continue
        parsed.orders.append(LabelledOrder(number, text, unit, request_type))
    if columns is None:
        raise OrdersFileError("the file is empty (no header row)")
    return parsed

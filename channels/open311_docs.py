"""The Open311 documents in their two formats: JSON, and the XML it is mapped from.

GeoReport v2 defines XML and maps JSON from it by the Spark convention: a list in JSON is a
wrapper element in XML with one child per item (services/service, service_requests/request,
attributes/attribute, values/value, errors/error, endpoints/endpoint, formats/format), null
is an empty element, true/false are the words. Both are UTF-8, the XML with its declaration.
"""

from __future__ import annotations

import json
from typing import Any
from xml.etree import ElementTree as ET

from aiohttp import web

FORMATS = ("json", "xml")
XML_DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>\n'
CONTENT_TYPES = {"json": "application/json", "xml": "text/xml"}
# the element of each item of a list, by the list's name
ITEMS = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fill(element: ET.Element, value: Any) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            _fill(ET.SubElement(element, key), child)
    elif isinstance(value, list):
        item = ITEMS[element.tag]
        for child in value:
            _fill(ET.SubElement(element, item), child)
    else:
        element.text = _text(value)


def to_xml(root: str, value: Any) -> bytes:
    element = ET.Element(root)
    _fill(element, value)
    return XML_DECLARATION + ET.tostring(element, encoding="unicode").encode("utf-8")


def render(fmt: str, root: str, value: Any, status: int = 200) -> web.Response:
    """`value` as the document `root` (services, service_requests, ...) in `fmt`."""
    if fmt == "xml":
        body = to_xml(root, value)
    else:
        body = json.dumps(value, ensure_ascii=False).encode("utf-8")
    return web.Response(body=body, status=status, content_type=CONTENT_TYPES[fmt], charset="utf-8")


def errors(fmt: str, status: int, items: list[tuple[str | int, str]]) -> web.Response:
    """The spec's error document: a list of {code, description}."""
    return render(
        fmt,
        "errors",
        [{"code": code, "description": description} for code, description in items],
        status,
    )

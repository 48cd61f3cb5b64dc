"""The OpenAPI 3 document of every JSON API, built from the running app's router, never kept
by hand: each route under /api/ appears with its method and path parameters; a handler that
carries a declaration (`@documented(...)`) adds its summary, request and response models
(pydantic's JSON schemas) and query parameters; one without still appears, with a generic
JSON object body and response. Every operation lists the one error shape of the service
(services/http/errors.py: {"error", "reason"})."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from services.http.requests import respond

OPENAPI_PATH = "/api/openapi.json"
# the WebSocket route is not a JSON API; OpenAPI cannot describe it
SKIPPED = ("/api/agent/ws", "/api/chat/ws")
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "reason"],
    "properties": {"error": {"type": "string"}, "reason": {"type": "string"}},
}
ANY_OBJECT: dict[str, Any] = {"type": "object"}
_PARAM = re.compile(r"\{([^}:]+)(?::([^}]+))?\}")


@dataclass(frozen=True)
class Doc:
    """What a handler declares about itself for the document."""

    summary: str = ""
    request: type[BaseModel] | None = None
    responses: dict[int, type[BaseModel] | None] = field(default_factory=dict)
    query: dict[str, dict[str, Any]] = field(default_factory=dict)


Handler = Callable[..., Any]


def documented(
    summary: str = "",
    request: type[BaseModel] | None = None,
    responses: dict[int, type[BaseModel] | None] | None = None,
    query: dict[str, dict[str, Any]] | None = None,
) -> Callable[[Handler], Handler]:
    """Attach a declaration to a handler (functools.wraps carries it through require_role)."""

    def attach(handler: Handler) -> Handler:
        handler.__openapi__ = Doc(summary, request, dict(responses or {}), dict(query or {}))
        return handler

    return attach


def _path_parameters(raw: str) -> tuple[str, list[dict[str, Any]]]:
    """`/a/{id}/{action:x|y}` -> ("/a/{id}/{action}", the parameters, an enum for a|b|c)."""
    params = []
    for name, regex in _PARAM.findall(raw):
        schema: dict[str, Any] = {"type": "string"}
        if regex and re.fullmatch(r"[\w-]+(\|[\w-]+)*", regex):
            schema["enum"] = regex.split("|")
        elif regex:
            schema["pattern"] = f"^{regex}$"
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", raw), params


def _raw_path(resource: web.AbstractResource) -> str:
    info = resource.get_info()
    if "path" in info:
        return info["path"]
    # a dynamic resource: its formatter has the names, the original regexes are in its parts
    pattern = getattr(resource, "_orig_path", None)
    return pattern or info.get("formatter", "")


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        components[name] = sub
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _operation(
    handler: Handler, path: str, params: list[dict[str, Any]], method: str, components: dict
) -> dict:
    doc: Doc = getattr(handler, "__openapi__", None) or Doc()
    roles = getattr(handler, "__roles__", ())
    op: dict[str, Any] = {
        "operationId": method + re.sub(r"[^A-Za-z0-9]+", "_", path).rstrip("_"),
        "summary": doc.summary or (handler.__doc__ or "").strip().split("\n")[0][:120],
    }
    query = [
        {"name": name, "in": "query", "required": False, "schema": schema}
        for name, schema in doc.query.items()
    ]
    if params or query:
        op["parameters"] = params + query
    if method in ("post", "put", "patch"):
        body = _schema(doc.request, components) if doc.request else ANY_OBJECT
        op["requestBody"] = {"required": doc.request is not None, "content": _json(body)}
    responses: dict[str, Any] = {}
    for status, model in (doc.responses or {200: None}).items():
        schema = _schema(model, components) if model else ANY_OBJECT
        responses[str(status)] = {"description": "success", "content": _json(schema)}
    responses["default"] = {
        "description": "an error",
        "content": _json({"$ref": "#/components/schemas/Error"}),
    }
    op["responses"] = responses
    if roles:
        op["security"] = [{"bearer": []}]
        op["description"] = f"Roles: {', '.join(roles)}"
    return op


def build_document(app: web.Application, title: str = "12345 hotline") -> dict[str, Any]:
    """The document of every route under /api/ of `app`."""
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        method = route.method.lower()
        if method in ("head", "options", "*") or route.resource is None:
            continue
        raw = _raw_path(route.resource)
        if not raw.startswith("/api/") or raw in SKIPPED:
            continue
        path, params = _path_parameters(raw)
        paths.setdefault(path, {})[method] = _operation(
            route.handler, path, params, method, components
        )
    return {
        "openapi": "3.1.0",  # pydantic's JSON schemas are those of OpenAPI 3.1
        "info": {"title": title, "version": "1"},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


DOCUMENT = web.AppKey("openapi_document", dict)


async def get_document(request: web.Request) -> web.Response:
    """This document (built once, from the routes as they were at the first request)."""
    cache = request.app[DOCUMENT]
    if not cache:
        cache.update(build_document(request.app))
    return respond(cache)


def add_routes(app: web.Application) -> None:
    app[DOCUMENT] = {}  # filled at the first request, when every route is in
    app.router.add_get(OPENAPI_PATH, get_document)

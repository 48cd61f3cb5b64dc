"""The OpenAPI document at /api/openapi.json: valid OpenAPI 3, covering every JSON route of the
running app, and, fuzzed by schemathesis against the real service, never a 5xx and every 4xx
a JSON error with a reason."""

from __future__ import annotations

import collections

import aiohttp
from openapi_spec_validator import validate

from services.http.openapi import SKIPPED, _path_parameters, _raw_path


async def fetch_document(url: str) -> dict:
    async with aiohttp.ClientSession() as http, http.get(url + "/api/openapi.json") as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        return await resp.json()


async def test_the_document_is_valid_openapi_3(service):
    document = await fetch_document(service.url)
    validate(document)  # raises on any violation of the OpenAPI 3.0 schema
    assert document["openapi"].startswith("3.")
    login = document["paths"]["/api/auth/login"]["post"]
    body = login["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/LoginRequest"}
    schema = document["components"]["schemas"]["LoginRequest"]
    assert set(schema["required"]) == {"username", "password"}
    assert document["components"]["schemas"]["Error"]["required"] == ["error", "reason"]


async def test_every_api_route_of_the_app_is_in_the_document(service):
    document = await fetch_document(service.url)
    app = service.runner.app
    routes = set()
    for route in app.router.routes():
        raw = _raw_path(route.resource)
        if (
            raw.startswith("/api/")
            and raw not in SKIPPED
            and route.method not in ("HEAD", "OPTIONS")
        ):
            routes.add((route.method.lower(), _path_parameters(raw)[0]))
    assert len(routes) > 40
    documented = {(m, p) for p, ops in document["paths"].items() for m in ops}
    assert routes - documented == set()
    assert documented - routes == set()
    # a staff route says it needs a bearer token; a public one does not
    assert document["paths"]["/api/kb/entries"]["post"]["security"] == [{"bearer": []}]
    assert "security" not in document["paths"]["/api/public/figures"]["get"]


FUZZ_EXAMPLES = 10  # per operation: ~50 operations, the whole run within about a minute
# logging the fuzzer's own token out would turn every later request into a 401
NOT_FUZZED = {("POST", "/api/auth/logout")}


def fuzz(document: dict, base_url: str, tokens: dict[str, str]) -> list[str]:
    """Every operation with generated requests (schemathesis + hypothesis), against the real
    service: the problems found, each once."""
    import schemathesis

    schema = schemathesis.openapi.from_dict(document)
    problems: dict[str, str] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) not in NOT_FUZZED:
            # the token of a role the operation names (the document's "Roles: ..."), so the
            # requests reach the handler; a supervisor's where it names none
            op = document["paths"][operation.path][operation.method.lower()]
            named = op.get("description", "").removeprefix("Roles: ")
            role = next((r for r in named.split(", ") if r in tokens), "supervisor")
            fuzz_one(operation, base_url, tokens[role], problems)
    return problems


def fuzz_one(operation, base_url: str, token: str, problems: dict[str, str]) -> None:
    import hypothesis
    from hypothesis import HealthCheck, Phase

    if True:  # noqa: SIM108 - keeps the decorated function local to this operation

        @hypothesis.settings(
            max_examples=FUZZ_EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @hypothesis.given(case=operation.as_strategy())
        def run(case) -> None:
            headers = {"Authorization": f"Bearer {token}"}
            response = case.call(base_url=base_url, headers=headers, timeout=60)
            where = f"{operation.method.upper()} {operation.path}"
            status = response.status_code
            problems.setdefault("_statuses", [])
            problems["_statuses"].append(status)
            if status >= 500:
                problems.setdefault(
                    f"{where} {status}", f"{case.formatted_path} {response.text[:300]}"
                )
            elif status >= 400:
                try:
                    body = response.json()
                except ValueError:
                    body = None
                if not (isinstance(body, dict) and {"error", "reason"} <= body.keys()):
                    problems.setdefault(f"{where} {status} not a JSON error", response.text[:300])

        run()


async def test_fuzzed_requests_get_no_5xx_and_json_errors(
    database_url, tmp_path, clock, nlu_engine
):
    import asyncio

    from services.staff import accounts
    from tests.support.service import settings_for, start_service

    # limits far above what the fuzzer sends, so a 429 never hides an answer
    settings = settings_for(database_url, tmp_path / "data").with_overrides(
        rate_chat_session="100000/minute",
        rate_chat_address="100000/minute",
        rate_login_address="100000/minute",
        rate_login_account="100000/minute",
        rate_address="100000/minute",
    )
    service = await start_service(settings, clock, nlu_engine)
    try:
        unit = service.ctx.units.units[0].code
        tokens = {}
        async with aiohttp.ClientSession() as http:
            for role in accounts.ROLES:
                async with service.ctx.pool.acquire() as conn:
                    await accounts.create_user(
                        conn,
                        f"fuzz-{role}",
                        "fuzz-password-12345",
                        role,
                        unit if role == "unit_handler" else None,
                    )
                async with http.post(
                    service.url + "/api/auth/login",
                    json={"username": f"fuzz-{role}", "password": "fuzz-password-12345"},
                ) as resp:
                    tokens[role] = (await resp.json())["token"]
        document = await fetch_document(service.url)
        problems = await asyncio.to_thread(fuzz, document, service.url, tokens)
    finally:
        await service.stop()
    statuses = problems.pop("_statuses")
    print(sorted(collections.Counter(statuses).items()))
    # the fuzzer really reached the handlers, with a token that worked
    assert len(statuses) >= 5 * len(document["paths"])
    assert sum(1 for s in statuses if 200 <= s < 300) >= 20
    assert statuses.count(401) < len(statuses) / 4
    assert problems == {}, "\n".join(f"{k}: {v}" for k, v in problems.items())

"""The OpenAPI description tells the truth (issue 13, item 11), and the docs work offline.

Each test reads the document the server publishes (/openapi.json) and checks one promise:
every operation is described, every error is `application/problem+json` with its codes, a POST
that changes state declares the Idempotency-Key it requires (and the server requires exactly
the keys it declares), no response is an untyped object, and /docs and /redoc load nothing
from outside this server.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, get_type_hints

import pytest
from fastapi.testclient import TestClient

from kassa.api import create_app
from kassa.api.openapi import problems_for
from kassa.api.problems import PROBLEM_JSON
from kassa.api.schemas import BreakdownOut, DecisionOut, RuleOutcomeOut
from kassa.apikeys import service as apikeys
from kassa.clock import ManualClock
from kassa.config import Settings
from kassa.db import Database, make_engine
from kassa.policy.outcome import BreakdownRecord, DecisionRecord, RuleRecord

Operation = tuple[str, str, dict[str, Any]]
NOW = datetime(2026, 11, 20, 14, 3, 11, tzinfo=UTC)


@pytest.fixture(scope="module")
def client(sqlite_template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    path = tmp_path_factory.mktemp("openapi") / "kassa.sqlite3"
    shutil.copyfile(sqlite_template, path)
    db = Database(make_engine(f"sqlite:///{path}"))
    with TestClient(create_app(Settings(), database=db, clock=ManualClock(NOW))) as client:
        yield client
    db.dispose()


@pytest.fixture(scope="module")
def document(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operations(document: dict[str, Any]) -> list[Operation]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        *_, kind, name = schema["$ref"].split("/")
        schema = document["components"][kind][name]
    return schema


def parameters(document: dict[str, Any], operation: dict[str, Any]) -> list[dict[str, Any]]:
    return [resolve(document, p) for p in operation.get("parameters", [])]


def declares_key_required(document: dict[str, Any], operation: dict[str, Any]) -> bool:
    return any(
        p["name"] == "Idempotency-Key" and p["in"] == "header" and p.get("required") is True
        for p in parameters(document, operation)
    )


def test_every_operation_has_a_description_and_an_example(document: dict[str, Any]) -> None:
    undescribed = [f"{m} {p}" for m, p, op in operations(document) if not op.get("description")]
    assert undescribed == []
    for method, path, operation in operations(document):
        errors = {s: r for s, r in operation["responses"].items() if int(s) >= 400}
        for status, response in errors.items():
            for media, content in response.get("content", {}).items():
                schema = resolve(document, content["schema"])
                has_example = "example" in content or "examples" in content or "examples" in schema
                assert has_example, f"{method} {path} {status} {media} has no example"


def test_state_changing_posts_declare_the_idempotency_key_required(
    document: dict[str, Any],
) -> None:
    posts = [(path, op) for method, path, op in operations(document) if method == "POST"]
    assert len(posts) >= 20
    changing = [(path, op) for path, op in posts if not path.endswith("/quote")]
    assert [path for path, op in changing if not declares_key_required(document, op)] == []


def test_the_server_requires_exactly_the_keys_it_declares(
    client: TestClient, document: dict[str, Any]
) -> None:
    """Every POST, sent with a valid admin key and no Idempotency-Key, is refused with
    `400 idempotency_key_required` if and only if the document declares the key required."""
    with client.app.state.kassa.database.transaction() as conn:  # type: ignore[attr-defined]
        _key, token = apikeys.create_key(
            conn, name="openapi-admin", scopes=["admin"], customer_account_id=None, now=NOW
        )
    for method, path, operation in operations(document):
        if method != "POST":
            continue
        url = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
        response = client.post(url, json={}, headers={"Authorization": f"Bearer {token}"})
        refused = response.status_code == 400 and response.json()["code"] == (
            "idempotency_key_required"
        )
        assert refused == declares_key_required(document, operation), (path, response.text)


def test_every_error_is_documented_as_problem_json_with_its_codes(
    document: dict[str, Any],
) -> None:
    for method, path, operation in operations(document):
        responses = operation["responses"]
        # Every /v1 operation checks a key; the load balancers' probes are public.
        expected = {"401", "403", "500"} if path.startswith("/v1/") else {"500"}
        assert expected <= set(responses), f"{method} {path}"
        if operation.get("parameters") or operation.get("requestBody"):
            assert "422" in responses, f"{method} {path}"
        for status, response in responses.items():
            if int(status) < 400:
                continue
            assert list(response["content"]) == [PROBLEM_JSON], f"{method} {path} {status}"
            content = response["content"][PROBLEM_JSON]
            codes = content["schema"]["allOf"][1]["properties"]["code"]["enum"]
            assert codes, f"{method} {path} {status}"
            for code in codes:
                assert f"`{code}`" in response["description"]
                assert content["examples"][code]["value"]["status"] == int(status)


def _untyped(document: dict[str, Any], schema: dict[str, Any], where: str) -> Iterator[str]:
    """Every place under `schema` that is an object (or anything) with no declared fields,
    unless its description says it is free-form on purpose."""
    if "$ref" in schema:
        yield from _untyped(document, resolve(document, schema), where)
        return
    if "free-form" in schema.get("description", "").lower():
        return
    for key in ("anyOf", "oneOf", "allOf"):
        for member in schema.get(key, []):
            yield from _untyped(document, member, where)
    if "items" in schema:
        yield from _untyped(document, schema["items"], f"{where}[]")
    for name, member in schema.get("properties", {}).items():
        yield from _untyped(document, member, f"{where}.{name}")
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        yield from _untyped(document, extra, f"{where}{{}}")
    typed = {"type", "properties", "$ref", "anyOf", "oneOf", "allOf", "enum", "const"}
    is_object = schema.get("type") == "object" and not schema.get("properties")
    if (is_object and extra in (None, True, {})) or not typed & set(schema):
        yield where


def test_no_response_is_an_untyped_object(document: dict[str, Any]) -> None:
    found = [
        spot
        for method, path, operation in operations(document)
        for status, response in operation["responses"].items()
        for content in response.get("content", {}).values()
        for spot in _untyped(document, content["schema"], f"{method} {path} {status}")
    ]
    assert found == []


def test_patterns_enums_and_minimums_are_declared(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    external_id = schemas["AccountCreateIn"]["properties"]["external_id"]
    assert external_id["pattern"] == "^[A-Za-z0-9._:@-]{1,128}$"
    assert external_id["maxLength"] == 128
    assert set(schemas["HoldStatus"]["enum"]) == {"pending", "captured", "voided", "expired"}
    assert schemas["AccountOut"]["properties"]["status"]["enum"]
    for name in ("charged_events", "duplicate_events"):
        assert schemas["UsageBatchOut"]["properties"][name]["minimum"] == 0
    events = schemas["UsageBatchIn"]["properties"]["events"]
    assert (events["minItems"], events["maxItems"]) == (1, 1000)


def test_decision_models_name_exactly_the_recorded_fields() -> None:
    """The typed decision in the API and the record the policy stores describe the same keys."""
    for record, model in (
        (DecisionRecord, DecisionOut),
        (BreakdownRecord, BreakdownOut),
        (RuleRecord, RuleOutcomeOut),
    ):
        assert set(get_type_hints(record)) == set(model.model_fields), model.__name__


def test_problems_for_refuses_a_code_without_a_status() -> None:
    with pytest.raises(ValueError, match="no_such_code"):
        problems_for("hold_not_found", "no_such_code")
    assert set(problems_for("hold_not_found", "insufficient_funds")) == {404, 409}


def _local_urls(html: str) -> list[str]:
    found: list[tuple[str, str]] = re.findall(
        r"""(?:src|href)=["']([^"']+)["']|url:\s*["']([^"']+)["']""", html
    )
    return [a or b for a, b in found]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_this_servers_assets(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    html = response.text
    assert "http://" not in html and "https://" not in html.replace("https://swagger.io", "")
    urls = _local_urls(html)
    assert urls, html
    for url in urls:
        assert url.startswith("/"), url
        fetched = client.get(url)
        assert fetched.status_code == 200, url
        assert fetched.content, url


def test_docs_assets_are_served(client: TestClient) -> None:
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        response = client.get(f"/docs/static/{name}")
        assert response.status_code == 200
        assert len(response.content) > 10_000


def test_a_body_that_is_not_json_is_a_documented_problem(
    client: TestClient, document: dict[str, Any]
) -> None:
    """Found by schemathesis: a malformed body answered `400 http_error`, a code no route
    documented. It is `malformed_body` now, and documented on every operation with a body."""
    response = client.post(
        "/v1/accounts",
        content=b"\xff{",
        headers={"Content-Type": "application/json", "Authorization": "Bearer x"},
    )
    assert response.status_code in (400, 401)
    with client.app.state.kassa.database.transaction() as conn:  # type: ignore[attr-defined]
        _key, token = apikeys.create_key(
            conn, name="body-admin", scopes=["admin"], customer_account_id=None, now=NOW
        )
    response = client.post(
        "/v1/accounts",
        content=b"\xff{",
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token}",
            "Idempotency-Key": "k1",
        },
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["code"] == "malformed_body"
    documented = document["paths"]["/v1/accounts"]["post"]["responses"]["400"]
    assert (
        "malformed_body"
        in documented["content"][PROBLEM_JSON]["schema"]["allOf"][1]["properties"]["code"]["enum"]
    )

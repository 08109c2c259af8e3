"""The OpenAPI document describes every Flask route, is served without a token, and its schemas are the
ones the handlers enforce (an admin body refused by the schema is refused by the handler, with its path)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from jsonschema import Draft202012Validator
from prometheus_client import CollectorRegistry

from receiver.api.openapi import OPERATIONS, build_spec
from receiver.app import create_app
from tests.support.receiver_server import ADMIN_TOKEN, make_settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    settings = make_settings(tmp_path / "data", REPO / "runbooks", responses=False)
    app = create_app(settings, metrics_registry=CollectorRegistry(), start_worker=False)
    yield app
    app.extensions["receiver"].close()


def _flask_routes(app: Flask) -> set[tuple[str, str, str]]:
    out = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[^:>]+:)?([a-zA-Z_]+)>", r"{\1}", rule.rule)
        for method in rule.methods or ():
            if method not in ("HEAD", "OPTIONS"):
                out.add((method.lower(), path, rule.endpoint))
    return out


def test_every_flask_route_is_in_the_spec(app: Flask) -> None:
    routes = _flask_routes(app)
    spec = build_spec()
    described = {(m, p, op["operationId"]) for p, ops in spec["paths"].items() for m, op in ops.items()}
    missing = {(m, p, e) for m, p, e in routes if (m, p, e.replace(".", "_")) not in described}
    assert missing == set(), "add these routes to receiver/api/openapi.py OPERATIONS"
    stale = {(m, p) for m, p, _ in described} - {(m, p) for m, p, _ in routes}
    assert stale == set(), "the spec describes routes the app does not have"
    assert len(routes) == len(OPERATIONS)


def test_spec_is_openapi_3_1_with_valid_schemas() -> None:
    import schemathesis

    spec = build_spec()
    assert spec["openapi"].startswith("3.1")
    for schema in spec["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)  # raises naming the bad part
    refs = set(re.findall(r'"#/components/schemas/([A-Za-z]+)"', str(spec).replace("'", '"')))
    assert refs <= set(spec["components"]["schemas"])
    loaded = schemathesis.openapi.from_dict(spec)  # schemathesis parses every operation
    assert len(list(loaded.get_all_operations())) == len(OPERATIONS)


def test_served_without_a_token(app: Flask) -> None:
    answer = app.test_client().get("/api/v1/openapi.json")
    assert answer.status_code == 200
    assert answer.get_json() == build_spec()


def test_admin_body_is_checked_by_the_published_schema(app: Flask) -> None:
    client = app.test_client()
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    bad = client.post("/api/v1/incidents/1/recover", json={"actor": 7, "dry_run": "yes"}, headers=auth)
    assert bad.status_code == 400
    problems = bad.get_json()["error"]["problems"]
    assert any(p.startswith("$.actor:") for p in problems) and any(
        p.startswith("$.dry_run:") for p in problems
    )
    # the same body is refused by the schema the spec publishes for that operation
    spec = build_spec()
    schema = spec["components"]["schemas"]["RecoverBody"]
    assert not Draft202012Validator(schema).is_valid({"actor": 7, "dry_run": "yes"})


def test_responses_disabled_is_503_not_500(app: Flask) -> None:
    answer = app.test_client().post(
        "/api/v1/incidents/1/ack", json={}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert answer.status_code == 503
    assert "503" in build_spec()["paths"]["/api/v1/incidents/{incident_id}/ack"]["post"]["responses"]

"""The OpenAPI schema: it generates without a warning, documents every endpoint's errors, and Swagger UI
is served from the sidecar with no CDN."""

from __future__ import annotations

import re
from io import StringIO

import pytest
import yaml
from django.contrib.staticfiles import finders
from django.core.management import call_command

from testing.api import awaiting, jwt_client, make_user, put_tasks
from testing.factories import EscalationFactory

pytestmark = pytest.mark.django_db

# What every operation answers: its own codes, and those of the layers around it (authentication 401,
# DRF's content negotiation 406, DRF's throttle 429, a database outage 503, a body's 400/413/415).
ENDPOINTS = {
    ("/api/tasks/", "get"): {200, 400, 401, 403, 406, 429, 503},
    ("/api/tasks/{task_id}/", "get"): {200, 401, 403, 404, 406, 429, 503},
    ("/api/tasks/{task_id}/approve/", "post"): {200, 400, 401, 403, 404, 406, 409, 413, 415, 422, 429, 503},
    ("/api/tasks/{task_id}/reject/", "post"): {200, 400, 401, 403, 404, 406, 409, 413, 415, 422, 429, 503},
    ("/api/tasks/{task_id}/override/", "post"): {200, 400, 401, 403, 404, 406, 409, 413, 415, 422, 429, 503},
    ("/api/tasks/{task_id}/decision/", "get"): {200, 400, 401, 403, 404, 503},
    ("/api/messages/", "get"): {200, 400, 401, 403, 406, 429, 503},
    ("/api/messages/", "post"): {200, 201, 400, 401, 403, 406, 409, 413, 415, 422, 429, 503},
    ("/api/messages/{msg_id}/ack/", "post"): {200, 401, 403, 404, 406, 409, 429, 503},
    ("/api/agents/", "get"): {200, 400, 401, 403, 406, 429, 503},
    ("/api/agents/{name}/heartbeat/", "post"): {200, 401, 403, 406, 429, 503},
    ("/api/health/", "get"): {200, 401, 403, 406, 429, 503},
    ("/api/escalations/", "get"): {200, 400, 401, 403, 406, 429, 503},
    ("/api/escalations/{id}/acknowledge/", "post"): {200, 401, 403, 404, 406, 409, 429, 503},
    ("/api/escalations/{id}/resolve/", "post"): {200, 400, 401, 403, 404, 406, 409, 413, 415, 422, 429, 503},
    ("/api/audit/", "get"): {200, 400, 401, 403, 406, 429, 503},
    ("/api/sync/", "get"): {200, 401, 403, 406, 429, 503},
    ("/api/sync/", "post"): {200, 400, 401, 403, 406, 413, 415, 429, 503},
    ("/api/amp/schema.json", "get"): {200, 406, 429},
    ("/api/policy/", "get"): {200, 401, 403, 406, 429, 503},
    ("/api/policy/schema.json", "get"): {200, 406, 429},
    ("/api/token/", "post"): {200, 400, 401, 406, 413, 415, 429, 503},
    ("/api/token/refresh/", "post"): {200, 400, 401, 406, 413, 415, 429, 503},
    ("/api/keys/", "get"): {200, 400, 401, 403, 406, 429, 503},
    ("/api/keys/", "post"): {201, 400, 401, 403, 406, 413, 415, 422, 429, 503},
    ("/api/keys/{key_id}/", "delete"): {200, 401, 403, 404, 406, 429, 503},
}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        out = StringIO()
        call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    return yaml.safe_load(out.getvalue())


def test_the_schema_generates_and_validates_with_no_warning(schema):
    assert schema["openapi"].startswith("3.")


@pytest.mark.parametrize(("path", "method"), sorted(ENDPOINTS))
def test_every_endpoint_documents_its_answers(schema, path, method):
    operation = schema["paths"][path][method]
    documented = {int(code) for code in operation["responses"]}
    assert documented == ENDPOINTS[(path, method)]
    for code in documented - {200, 201}:
        content = operation["responses"][str(code)]["content"]["application/json"]["schema"]
        assert content == {"$ref": "#/components/schemas/Error"}


def test_no_endpoint_is_left_undocumented(schema):
    assert {(path, method) for path, item in schema["paths"].items() for method in item} == set(ENDPOINTS)


@pytest.mark.parametrize(
    "path", ["/api/tasks/", "/api/health/", "/api/amp/schema.json", "/api/policy/schema.json"]
)
def test_an_accept_header_the_api_cannot_satisfy_is_the_documented_406(schema, path):
    """DRF answers 406 to any operation when `Accept` names nothing it renders (found by schemathesis)."""
    response = jwt_client(make_user("operator")).get(path, headers={"Accept": "H,7)cX2"})
    assert response.status_code == 406
    assert response.json()["code"] == "not_acceptable"
    assert "406" in schema["paths"][path]["get"]["responses"]


def test_request_bodies_are_documented(schema):
    def body(path: str) -> dict:
        ref = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]

    assert set(body("/api/tasks/{task_id}/override/")["properties"]) == {"reason", "status", "expected_sha"}
    assert {"msg_id", "from", "to", "payload"} <= set(body("/api/messages/")["properties"])
    assert set(body("/api/escalations/{id}/resolve/")["properties"]) == {"reason"}


def test_the_decision_long_poll_is_documented_as_it_answers(schema, store, api_settings):
    put_tasks(store, awaiting("T-1"))
    answer = jwt_client(make_user("approver")).get("/api/tasks/T-1/decision/").json()
    documented = schema["components"]["schemas"]["TaskDecision"]
    assert set(answer) == set(documented["properties"]) == set(documented["required"])
    wait = next(
        p
        for p in schema["paths"]["/api/tasks/{task_id}/decision/"]["get"]["parameters"]
        if p["name"] == "wait"
    )
    assert wait["schema"]["maximum"] == 90


@pytest.mark.parametrize(("path", "method"), sorted(ENDPOINTS))
def test_throttled_and_unavailable_answers_say_when_to_come_back(schema, path, method):
    responses = schema["paths"][path][method]["responses"]
    for code in {"429", "503"} & set(responses):
        assert "Retry-After" in responses[code]["headers"]


def test_the_health_map_is_documented_as_a_map(schema, store, api_settings):
    documented = schema["paths"]["/api/health/"]["get"]["responses"]["200"]["content"]["application/json"]
    entry = documented["schema"]["additionalProperties"]
    answer = jwt_client(make_user("staff")).get("/api/health").json()
    assert set(answer) >= {"coordinator", "executor", "reviewer"}
    for name, health in answer.items():
        assert set(health) == set(entry["properties"]) == set(entry["required"])
        assert health["name"] == name


@pytest.mark.parametrize(
    ("path", "component"),
    [
        ("/api/tasks/T-1/reject/", "RejectRequestRequest"),
        ("/api/tasks/T-1/override/", "OverrideRequestRequest"),
        ("/api/escalations/{id}/resolve/", "ResolveRequestRequest"),
    ],
)
@pytest.mark.parametrize("body", [{}, {"reason": None}, {"reason": "  "}])
def test_a_reason_the_schema_requires_is_a_422_when_missing(
    schema, store, api_settings, path, component, body
):
    put_tasks(store, awaiting("T-1"))
    escalation = EscalationFactory.create()
    documented = schema["components"]["schemas"][component]
    assert "reason" in documented["required"]
    assert documented["properties"]["reason"]["minLength"] == 1
    response = jwt_client(make_user("operator")).post(
        path.replace("{id}", str(escalation.pk)), body, format="json"
    )
    assert response.status_code == 422
    assert response.json()["code"] == "reason_required"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "bad_request"),
        ({"username": "nobody", "password": "wrong"}, 401, "no_active_account"),
    ],
)
def test_token_errors_have_the_documented_shape(schema, body, status, code):
    response = jwt_client(None).post("/api/token/", body, format="json")
    assert response.status_code == status
    assert response.json()["code"] == code
    assert str(status) in schema["paths"]["/api/token/"]["post"]["responses"]


def test_the_schema_is_served(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/tasks/{task_id}/decision/" in response.content


def test_swagger_ui_is_served_from_the_sidecar_without_a_cdn(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert not re.search(r"cdn|jsdelivr|unpkg|cloudflare", html, re.IGNORECASE)
    assets = re.findall(r"""(?:src|href)=["']/static/([^"']+)["']""", html)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
    for asset in assets:
        assert finders.find(asset), asset
    assert client.get("/api/docs").status_code == 200

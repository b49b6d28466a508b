"""Every API path answers every method and a garbage body with a 4xx or a 2xx, never a 500."""

from __future__ import annotations

import pytest

from testing.api import awaiting, jwt_client, make_user, put_tasks

pytestmark = pytest.mark.django_db

PATHS = [
    "/api/tasks/",
    "/api/tasks/T-1/",
    "/api/tasks/T-1/approve/",
    "/api/tasks/T-1/reject",
    "/api/tasks/T-1/override/",
    "/api/tasks/T-1/decision/",
    "/api/messages/",
    "/api/messages/task_result-T-1-1/ack/",
    "/api/agents/",
    "/api/agents/executor/heartbeat/",
    "/api/health",
    "/api/escalations/",
    "/api/escalations/1/acknowledge/",
    "/api/escalations/1/resolve/",
    "/api/audit/",
    "/api/sync/",
    "/api/amp/schema.json",
    "/api/policy/",
    "/api/policy/schema.json",
    "/api/token/",
    "/api/token/refresh/",
]
GARBAGE = [b"", b"{", b"[]", b"null", b'{"reason": {"a": 1}, "status": [], "full": "x"}', b"\x00\xff"]


@pytest.fixture(autouse=True)
def tasks(store, api_settings):
    put_tasks(store, awaiting("T-1"))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"])
def test_every_method_is_answered_without_a_500(path, method):
    for user in (None, make_user("operator"), make_user("executor")):
        client = jwt_client(user)
        client.raise_request_exception = False
        assert client.generic(method, path).status_code < 500, (method, path, user)


@pytest.mark.parametrize("path", PATHS)
def test_garbage_bodies_are_answered_without_a_500(path):
    client = jwt_client(make_user("operator"))
    client.raise_request_exception = False
    for raw in GARBAGE:
        response = client.generic("POST", path, raw, content_type="application/json")  # type: ignore[arg-type]  # Django takes bytes; the DRF stubs say str
        assert response.status_code < 500, (path, raw, response.content[:200])
        assert response["Content-Type"].startswith("application/json")

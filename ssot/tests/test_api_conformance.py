"""schemathesis against the published schema (/api/schema/): every operation, with an admin's and an agent's
token, answers only what the schema says (status, content type, body), and never a 5xx.

Bounded and deterministic: a fixed seed, a fixed number of examples per operation and generation mode
(positive: what the schema allows; negative: what it forbids), no example database between runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from ssot import audit
from testing.api import awaiting, make_user, put_tasks, token_for
from testing.content import commit, dispatch
from testing.factories import AgentFactory, EscalationFactory

pytestmark = pytest.mark.django_db

EXAMPLES = 8
CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 20261130,
        "generation": {"max-examples": EXAMPLES, "deterministic": True, "database": "none"},
        "checks": {
            "enabled": False,
            "not_a_server_error": {"enabled": True},
            "status_code_conformance": {"enabled": True},
            "content_type_conformance": {"enabled": True},
            "response_schema_conformance": {"enabled": True},
            "response_headers_conformance": {"enabled": True},
        },
    }
)


@pytest.fixture
def world(store, api_settings):
    """Tasks awaiting approval, messages, an open escalation and the agents, mirrored from a real SSOT."""
    put_tasks(store, awaiting("T-1"), awaiting("T-2"), awaiting("T-3"))
    commit(store, {f"messages/{message['msg_id']}.json": message for message in [dispatch("T-1")]})
    audit.audit_queue(actor="system", action="note", detail="conformance run")
    for name in ("coordinator", "executor", "reviewer"):
        AgentFactory(name=name)
    EscalationFactory()
    return store


def bearer(role: str) -> dict[str, str]:
    """A real JWT for an admin with every permission (an operator) or for an agent."""
    return {"Authorization": f"Bearer {token_for(make_user(role).get_username())}"}


@pytest.fixture
def admin_bearer(world) -> dict[str, str]:
    return bearer("operator")


@pytest.fixture
def agent_bearer(world) -> dict[str, str]:
    return bearer("executor")


@contextlib.contextmanager
def connection_kept() -> Iterator[None]:
    """As Django's test client does: requests leave the test's connection (its transaction) open."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


# The schema as /api/schema/ serves it; its operations are called through Django's WSGI handler in process.
# (Loaded when the module is: schemathesis's lazy loader does not run on pytest 9; serving it reads no row.)
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application(), config=CONFIG)


BOUNDS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)


@schema.parametrize()
@BOUNDS
def test_every_answer_to_an_admin_is_one_the_schema_describes(case, admin_bearer):
    with connection_kept():
        case.call_and_validate(headers=admin_bearer)


@schema.parametrize()
@BOUNDS
def test_every_answer_to_an_agent_is_one_the_schema_describes(case, agent_bearer):
    with connection_kept():
        case.call_and_validate(headers=agent_bearer)

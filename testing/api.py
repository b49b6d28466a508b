"""Helpers of the API and admin tests: users by role, clients with real JWTs, tasks in a real SSOT."""

from __future__ import annotations

from typing import Any

from rest_framework.test import APIClient

from ssot.stores.base import Store
from ssot.sync import sync
from testing.content import commit, task_doc
from testing.factories import UserFactory

PASSWORD = "correct horse battery staple"

# role -> (groups, is_staff); agents are named after themselves.
ROLES: dict[str, tuple[list[str], bool]] = {
    "staff": ([], True),
    "approver": (["approvers"], True),
    "operator": (["operators"], True),
    "outsider": ([], False),
    "coordinator": (["agents"], False),
    "executor": (["agents"], False),
    "reviewer": (["agents"], False),
}
AGENTS = ("coordinator", "executor", "reviewer")


def make_user(role: str, *, username: str | None = None, **fields: Any) -> Any:
    groups, staff = ROLES[role]
    return UserFactory(
        username=username or (role if role in AGENTS else f"{role}-user"),
        is_staff=staff,
        groups=groups,
        password=PASSWORD,
        **fields,
    )


def token_for(username: str, password: str = PASSWORD) -> str:
    """An access token obtained the way an agent does: POST /api/token/."""
    response = APIClient().post("/api/token/", {"username": username, "password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["access"]


def jwt_client(user: Any | None) -> APIClient:
    """An API client carrying a real JWT for `user` (None: anonymous)."""
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user.get_username())}")
    return client


def put_tasks(store: Store, *documents: dict[str, Any], author: str = "coordinator") -> None:
    """Commit task documents to the SSOT and mirror them."""
    commit(store, {f"tasks/{doc['task_id']}.json": doc for doc in documents}, author=author)
    sync()


def awaiting(task_id: str, **fields: Any) -> dict[str, Any]:
    return task_doc(task_id, status="awaiting_approval", **fields)

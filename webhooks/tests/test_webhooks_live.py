"""The real path: `git push` -> post-receive hook -> daphne -> django-q2 worker -> rows (SPEC 4, 8)."""

from __future__ import annotations

import http.client
import json
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from ssot.models import Task
from ssot.stores.factory import webhook_repo_name
from ssot.stores.hook import install_post_receive_hook
from ssot.sync import sync
from ssot.verify import differences
from testing.content import commit, task_doc
from testing.git import clone, git, push
from testing.server import ControlPlane, database_url
from testing.webhooks import github_headers, payload
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "live-webhook-secret"
WAIT_SEC = 30


def environment(ssot_path: Path, settings) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url(connection.settings_dict),
        "AGENTOS_VAR_DIR": str(settings.VAR_DIR),
        "SSOT_BACKEND": "local",
        "SSOT_LOCAL_PATH": str(ssot_path),
        "GITHUB_WEBHOOK_SECRET": SECRET,
        "XCODE_WEBHOOK_SECRET": "live-xcode-token",
    }


def post(url: str, event: str, body: bytes, *, guid: str | None = None, content_type: str = "") -> int:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    headers = github_headers(body, event=event, secret=SECRET, guid=guid)
    if content_type:
        headers["Content-Type"] = content_type
    try:
        conn.request("POST", "/webhooks/github", body=body, headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def wait_for(condition, what: str) -> float:
    """Seconds until `condition()` held (polling the database the server processes write to)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > WAIT_SEC:
            raise AssertionError(f"{what} did not happen within {WAIT_SEC} s")
        time.sleep(0.01)
    return time.monotonic() - started


def write_json(work: Path, path: str, document: dict) -> None:
    (work / path).parent.mkdir(parents=True, exist_ok=True)
    (work / path).write_text(json.dumps(document, indent=2) + "\n")
    git(work, "add", path)


def test_a_git_push_reaches_the_rows_through_the_hook_and_the_webhook(ssot_path, store, settings, tmp_path):
    commit(store, {"tasks/T-1.json": task_doc("T-1"), "tasks/T-2.json": task_doc("T-2")})
    sync()
    secret_file = tmp_path / "webhook_secret"
    secret_file.write_text(SECRET + "\n")
    with ControlPlane(environment(ssot_path, settings)) as plane:
        install_post_receive_hook(
            ssot_path,
            python=sys.executable,
            hook_url=f"{plane.url}/webhooks/github",
            secret_file=secret_file,
            repo_full_name=webhook_repo_name(),
            branch="main",
        )
        # The worker is up once it has processed something.
        ping = str(uuid.uuid4())
        assert post(plane.url, "ping", json.dumps(payload("ping")).encode(), guid=ping) == 200
        wait_for(lambda: WebhookDelivery.objects.filter(guid=ping, state="done").exists(), "the ping")

        work = tmp_path / "work"
        clone(ssot_path, work)
        write_json(work, "tasks/T-3.json", task_doc("T-3", last_writer="executor"))
        git(work, "commit", "-q", "-m", "add T-3")
        write_json(work, "tasks/T-1.json", task_doc("T-1", status="awaiting_approval"))
        git(work, "commit", "-q", "-m", "T-1 awaits approval")
        git(work, "rm", "-q", "tasks/T-2.json")
        git(work, "commit", "-q", "-m", "drop T-2")

        started = time.monotonic()
        pushed = push(work)
        assert pushed.returncode == 0, pushed.stderr
        assert "control plane not reachable" not in pushed.stderr
        wait_for(
            lambda: (
                dict(Task.objects.values_list("task_id", "status"))
                == {"T-1": "awaiting_approval", "T-3": "in_progress"}
            ),
            "the pushed tasks in the rows",
        )
        elapsed = time.monotonic() - started
        wait_for(lambda: WebhookDelivery.objects.filter(event="push", state="done").exists(), "the push done")

    delivery = WebhookDelivery.objects.get(event="push")
    assert (delivery.state, delivery.source, delivery.headers["User-Agent"]) == (
        "done",
        "github",
        "agentos-post-receive",
    )
    assert differences(store) == []
    # Push to rows: the hook, the 202, the worker's poll of its queue (0.5 s on the ORM broker), the sync.
    assert elapsed < 3.0, f"push to rows took {elapsed:.2f} s"


def test_a_chunked_body_over_the_limit_is_413_over_real_http(ssot_path, settings):
    with ControlPlane(environment(ssot_path, settings), worker=False) as plane:
        host, port = plane.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        chunk = b" " * (1024 * 1024)
        chunks = settings.WEBHOOK_MAX_BODY_BYTES // len(chunk) + 1
        headers = github_headers(b"{}", event="push", secret=SECRET)
        conn.request(
            "POST",
            "/webhooks/github",
            body=(chunk for _ in range(chunks)),
            headers=headers,
            encode_chunked=True,
        )
        response = conn.getresponse()
        assert response.status == 413
        assert json.loads(response.read()) == {"detail": "The body is over the limit of 26214400 bytes."}
        conn.close()
    assert not WebhookDelivery.objects.exists()


def test_a_form_encoded_delivery_reaches_django_whole_over_real_http(ssot_path, settings):
    """daphne's Twisted no longer parses form bodies (agentos_site/serving.py): Django still gets the
    body as sent, signature and all."""
    from urllib.parse import urlencode

    body = urlencode({"payload": json.dumps(payload("issues_opened"))}).encode()
    with ControlPlane(environment(ssot_path, settings), worker=False) as plane:
        status = post(
            plane.url, "issues", body, guid="form-live", content_type="application/x-www-form-urlencoded"
        )
    assert status == 202
    assert WebhookDelivery.objects.get(guid="form-live").action == "opened"

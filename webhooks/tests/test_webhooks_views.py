"""The webhook endpoints over HTTP: who is let in, what is stored, what is answered (SPEC section 8)."""

from __future__ import annotations

import io
import json
import random

import pytest
from django.test import Client
from django_q.brokers import get_broker

from testing.webhooks import Poster, github_headers, payload
from webhooks.models import WebhookDelivery
from webhooks.verify import github_signature

pytestmark = pytest.mark.django_db

SECRET, OLD_SECRET, TOKEN = "new-webhook-secret", "old-webhook-secret", "xcode-token-7Qk2"


def some_address() -> str:
    """A source address of its own per test: the unverified-request counters live in a shared cache."""
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


@pytest.fixture
def poster(client, settings) -> Poster:
    settings.GITHUB_WEBHOOK_SECRETS = [SECRET, OLD_SECRET]
    settings.XCODE_WEBHOOK_SECRET = TOKEN
    return Poster(client, secret=SECRET, token=TOKEN, address=some_address())


# -- GitHub: verification ------------------------------------------------------------------------------


def test_a_signed_delivery_is_stored_and_answered_202(poster):
    response = poster.github("issues", payload("issues_opened"), guid="d1e2f3a4-0000-11f0-8000-000000000001")

    assert response.status_code == 202
    assert response.json() == {"ok": True, "guid": "d1e2f3a4-0000-11f0-8000-000000000001", "event": "issues"}
    delivery = WebhookDelivery.objects.get()
    assert (delivery.source, delivery.event, delivery.action, delivery.state) == (
        "github",
        "issues",
        "opened",
        "pending",
    )
    assert json.loads(bytes(delivery.body)) == payload("issues_opened")
    assert delivery.next_attempt_at is not None


def test_both_paths_with_and_without_the_trailing_slash_work(poster):
    assert poster.github("issues", payload("issues_opened"), path="/webhooks/github").status_code == 202
    assert poster.github("issues", payload("issues_opened"), path="/webhooks/github/").status_code == 202


def test_the_stored_headers_keep_githubs_and_drop_the_signature(poster):
    poster.github("issues", payload("issues_opened"), guid="guid-headers")
    headers = WebhookDelivery.objects.get().headers
    assert headers["X-Github-Event"] == "issues"
    assert headers["X-Github-Delivery"] == "guid-headers"
    assert headers["User-Agent"].startswith("GitHub-Hookshot/")
    assert not any("signature" in name.lower() for name in headers)


def test_the_previous_secret_still_verifies_during_a_rotation(poster):
    assert poster.github("issues", payload("issues_opened"), secret=OLD_SECRET).status_code == 202


def test_a_wrong_signature_is_401_and_nothing_is_stored(poster):
    response = poster.github("issues", payload("issues_opened"), secret="not-the-secret")
    assert response.status_code == 401
    assert response.json() == {
        "detail": "The X-Hub-Signature-256 signature does not match the body under any secret."
    }
    assert not WebhookDelivery.objects.exists()


def test_a_missing_signature_is_401(poster):
    response = poster.github("issues", payload("issues_opened"), headers={"X-Hub-Signature-256": None})
    assert response.status_code == 401
    assert response.json() == {"detail": "The X-Hub-Signature-256 header is missing."}


@pytest.mark.parametrize(
    "header",
    ["sha1=0a4d55a8d778e5022fab701977c5d840bbc486d0", "sha256=", "sha256=xyz", "Bearer abc"],
)
def test_a_malformed_signature_header_is_401(poster, header):
    response = poster.github("issues", payload("issues_opened"), headers={"X-Hub-Signature-256": header})
    assert response.status_code == 401


def test_a_body_changed_after_signing_is_401(poster, client):
    body = json.dumps(payload("issues_opened")).encode()
    headers = github_headers(body, event="issues", secret=SECRET)
    response = client.post(
        "/webhooks/github",
        data=body.replace(b"opened", b"closed"),
        content_type="application/json",
        headers={k: v for k, v in headers.items() if k != "Content-Type"},
        REMOTE_ADDR=poster.address,
    )
    assert response.status_code == 401


def test_the_signature_is_checked_before_the_json(poster):
    response = poster.github("issues", b"{not json", secret="wrong")
    assert response.status_code == 401


def test_no_session_or_csrf_token_is_needed(poster, settings):
    poster.client = Client(enforce_csrf_checks=True)
    assert poster.github("issues", payload("issues_opened")).status_code == 202


def test_get_is_not_allowed(client):
    response = client.get("/webhooks/github")
    assert response.status_code == 405
    assert response["Allow"] == "POST, OPTIONS"
    assert response.json() == {"detail": "Method GET not allowed; webhooks are POSTed."}


# -- GitHub: malformed deliveries ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dropped", "message"),
    [
        ("X-GitHub-Event", "The X-GitHub-Event header is missing."),
        ("X-GitHub-Delivery", "The X-GitHub-Delivery header is missing."),
    ],
)
def test_a_signed_delivery_without_event_or_guid_is_400(poster, dropped, message):
    response = poster.github("issues", payload("issues_opened"), headers={dropped: None})
    assert response.status_code == 400
    assert response.json() == {"detail": message}
    assert not WebhookDelivery.objects.exists()


def test_a_signed_delivery_that_is_not_json_is_400(poster):
    response = poster.github("issues", b"{not json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Malformed delivery: not valid JSON")


def test_a_signed_json_array_is_400(poster):
    response = poster.github("issues", b"[]")
    assert response.json() == {"detail": "Malformed delivery: must be a JSON object, not an array."}
    assert response.status_code == 400


REFUSED_BODIES = {
    "deep nesting": (b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested 100001 deep"),
    "NaN": (b'{"action": NaN}', "NaN is not a JSON number"),
    "lone surrogate": (b'{"action": "\\udc80"}', "lone surrogate"),
    "duplicate key": (b'{"action": "a", "action": "b"}', "duplicate key 'action'"),
    "long number": (b'{"number": ' + b"9" * 101 + b"}", "a number of 101 digits"),
    "float overflow": (b'{"number": 1e400}', "too large for a 64-bit float"),
    "byte order mark": (b'\xef\xbb\xbf{"action": "opened"}', "byte order mark"),
    "trailing data": (b'{"action": "opened"} {}', "data after the JSON value"),
    "empty": (b"", "empty"),
}


@pytest.mark.parametrize("kind", REFUSED_BODIES)
def test_a_signed_delivery_whose_body_is_refused_is_400_and_stored_as_failed_for_good(poster, kind):
    body, reason = REFUSED_BODIES[kind]
    response = poster.github("issues", body, guid="refused-1")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Malformed delivery: ")
    assert reason in response.json()["detail"]
    delivery = WebhookDelivery.objects.get(guid="refused-1")
    assert (delivery.state, delivery.next_attempt_at, bytes(delivery.body)) == ("failed", None, body)
    assert reason in delivery.error
    # GitHub's redelivery of the same GUID gets the same answer and stores nothing twice.
    assert poster.github("issues", body, guid="refused-1").status_code == 400
    assert WebhookDelivery.objects.count() == 1


def test_a_replay_of_a_refused_delivery_fails_again_without_a_retry(poster):
    from webhooks.processing import process_delivery

    poster.github("issues", b'{"action": NaN}', guid="refused-2")
    delivery = WebhookDelivery.objects.get()
    assert process_delivery(delivery.pk, force=True) == "failed"
    delivery.refresh_from_db()
    assert (delivery.state, delivery.next_attempt_at) == ("failed", None)
    assert "NaN is not a JSON number" in delivery.error


def test_an_xcode_delivery_whose_body_is_refused_is_400_and_stored_as_failed(poster):
    response = poster.xcode(b'{"ciBuildRun": ' + b"[" * 5000 + b"]" * 5000 + b"}")
    assert response.status_code == 400
    assert "nested 5001 deep" in response.json()["detail"]
    delivery = WebhookDelivery.objects.get()
    assert (delivery.source, delivery.state, delivery.next_attempt_at) == ("xcode", "failed", None)


def test_an_overlong_delivery_guid_is_400(poster):
    assert poster.github("issues", payload("issues_opened"), guid="g" * 129).status_code == 400


def test_a_form_encoded_delivery_is_accepted(poster):
    from urllib.parse import urlencode

    body = urlencode({"payload": json.dumps(payload("issues_opened"))}).encode()
    response = poster.github(
        "issues", body, headers={"Content-Type": "application/x-www-form-urlencoded"}, guid="form-1"
    )
    assert response.status_code == 202
    assert WebhookDelivery.objects.get().action == "opened"


class Unreadable(io.RawIOBase):
    """A request body that fails the test if anyone reads it."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        raise AssertionError("the oversized body was read")


def test_a_body_declared_over_the_limit_is_413_without_being_read(poster, client, settings):
    declared = settings.WEBHOOK_MAX_BODY_BYTES + 1
    headers = github_headers(b"{}", event="push", secret=SECRET)
    response = client.post(
        "/webhooks/github",
        data=b"{}",
        content_type="application/json",
        headers={k: v for k, v in headers.items() if k != "Content-Type"},
        REMOTE_ADDR=poster.address,
        CONTENT_LENGTH=str(declared),
        **{"wsgi.input": Unreadable()},
    )
    assert response.status_code == 413
    assert response.json() == {"detail": "The body is over the limit of 26214400 bytes."}
    assert not WebhookDelivery.objects.exists()


def test_a_body_at_the_limit_is_accepted_and_one_byte_more_is_413(poster, settings):
    body = json.dumps(payload("issues_opened")).encode()
    settings.WEBHOOK_MAX_BODY_BYTES = len(body)
    assert poster.github("issues", body).status_code == 202
    assert poster.github("issues", body + b" ").status_code == 413


# -- GitHub: storing once -------------------------------------------------------------------------------


def test_a_redelivery_of_a_known_guid_is_a_200_no_op(poster):
    first = poster.github("issues", payload("issues_opened"), guid="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    again = poster.github("issues", payload("issues_opened"), guid="72d3162e-cc78-11e3-81ab-4c9367dc0958")

    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json() == {"ok": True, "duplicate": True, "guid": "72d3162e-cc78-11e3-81ab-4c9367dc0958"}
    assert WebhookDelivery.objects.count() == 1


def test_a_ping_is_answered_200_with_githubs_zen(poster):
    response = poster.github("ping", payload("ping"), guid="ping-1")
    assert response.status_code == 200
    assert response.json() == {
        "ok": True,
        "guid": "ping-1",
        "event": "ping",
        "zen": "Responsive is better than fast.",
    }


def test_processing_is_queued_for_the_worker_not_run_in_the_request(
    poster, django_capture_on_commit_callbacks
):
    broker = get_broker()
    before = broker.queue_size()
    with django_capture_on_commit_callbacks(execute=True):
        response = poster.github("issues", payload("issues_opened"))
    assert response.status_code == 202
    assert broker.queue_size() == before + 1
    assert WebhookDelivery.objects.get().state == "pending"  # the worker, not the request, processes it
    broker.purge_queue()


# -- Xcode Cloud -------------------------------------------------------------------------------------


def test_an_xcode_delivery_with_the_token_header_is_stored(poster):
    response = poster.xcode(payload("xcode_build_completed"))

    assert response.status_code == 202
    delivery = WebhookDelivery.objects.get()
    assert (delivery.source, delivery.guid, delivery.event, delivery.action) == (
        "xcode",
        "xcode:56c512e6-111e-4067-8e88-640c28ce91a7:BUILD_COMPLETED",
        "BUILD_COMPLETED",
        "COMPLETE",
    )
    assert TOKEN not in json.dumps(delivery.headers)


def test_an_xcode_delivery_with_the_token_in_the_url_is_stored(poster):
    assert poster.xcode(payload("xcode_build_started"), in_url=True).status_code == 202
    assert poster.xcode(payload("xcode_build_completed"), path=f"/webhooks/xcode/{TOKEN}/").status_code == 202
    assert WebhookDelivery.objects.count() == 2


def test_the_token_apple_echoes_in_the_payload_is_not_stored(poster):
    data = payload("xcode_build_completed")
    data["webhook"]["url"] = f"https://agentos.example.com/webhooks/xcode/{TOKEN}"
    assert poster.xcode(data, in_url=True).status_code == 202
    stored = json.loads(bytes(WebhookDelivery.objects.get().body))
    assert stored["webhook"]["url"] == "https://agentos.example.com/webhooks/xcode/[token]"
    assert TOKEN.encode() not in bytes(WebhookDelivery.objects.get().body)


def test_an_xcode_resend_is_a_200_no_op(poster):
    assert poster.xcode(payload("xcode_build_completed")).status_code == 202
    resend = poster.xcode(payload("xcode_build_completed"), in_url=True)
    assert resend.status_code == 200
    assert resend.json()["duplicate"] is True
    assert WebhookDelivery.objects.count() == 1


@pytest.mark.parametrize(
    ("token", "in_url", "message"),
    [
        ("", False, "The webhook token is missing."),
        ("xcode-token-7Qk", False, "The webhook token is wrong."),
        ("xcode-token-7Qk2x", True, "The webhook token is wrong."),
    ],
)
def test_an_xcode_delivery_without_the_right_token_is_401(poster, token, in_url, message):
    response = poster.xcode(payload("xcode_build_completed"), token=token, in_url=in_url)
    assert response.status_code == 401
    assert response.json() == {"detail": message}
    assert not WebhookDelivery.objects.exists()


def test_an_xcode_token_is_never_accepted_when_none_is_configured(poster, settings):
    settings.XCODE_WEBHOOK_SECRET = ""
    assert poster.xcode(payload("xcode_build_completed"), token="").status_code == 401


def test_an_xcode_delivery_that_is_not_json_is_400(poster):
    response = poster.xcode(b"<xml/>")
    assert response.status_code == 400


def test_an_xcode_delivery_without_a_build_run_is_deduplicated_by_its_body(poster):
    body = json.dumps({"metadata": {"attributes": {"eventType": "UNRECOGNIZED"}}}).encode()
    assert poster.xcode(body).status_code == 202
    assert poster.xcode(body).status_code == 200
    assert WebhookDelivery.objects.get().guid.startswith("xcode:")


def test_the_github_signature_does_not_open_the_xcode_endpoint(poster, client):
    body = json.dumps(payload("xcode_build_completed")).encode()
    response = client.post(
        "/webhooks/xcode",
        data=body,
        content_type="application/json",
        headers={"X-Hub-Signature-256": github_signature(body, SECRET)},
        REMOTE_ADDR=poster.address,
    )
    assert response.status_code == 401

"""Every door answers any body with a defined status, never a 500, and commits nothing it refused."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from ssot.models import Message
from ssot.sync import sync
from testing.api import jwt_client, make_user
from testing.content import dispatch
from testing.strategies import documents, encodings, examples, json_values
from testing.webhooks import Poster
from webhooks.models import WebhookDelivery

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_settings")]

_examples = itertools.count()


def _message(n: int) -> st.SearchStrategy[str]:
    envelope = dispatch(f"T-{n}", n=n)
    return documents({key: json.dumps(value) for key, value in envelope.items()})


@hypothesis_settings(max_examples=examples(40))
@given(data=st.data())
def test_any_message_body_is_answered_without_a_500_and_only_a_201_commits(store, data):
    coordinator = jwt_client(make_user("coordinator"))
    n = next(_examples)
    body = data.draw(encodings(st.one_of(_message(n), json_values)))
    head = store.head()

    response = coordinator.generic("POST", "/api/messages/", body, content_type="application/json")

    assert response.status_code in (200, 201, 400, 403, 409, 422), response.content
    assert response.json()["detail" if response.status_code >= 400 else "ok"]
    if response.status_code != 201:
        assert store.head() == head
    sync()
    assert coordinator.get("/api/messages/").status_code == 200
    if response.status_code == 201:
        msg_id = response.json()["msg_id"]
        assert Message.objects.filter(msg_id=msg_id).exists()
        assert coordinator.get(f"/api/tasks/{response.json()['message']['task_id']}/").status_code in (
            200,
            404,
        )


@hypothesis_settings(max_examples=examples(40))
@given(body=encodings(st.one_of(documents({"action": '"opened"', "zen": '"hi"'}), json_values)))
def test_any_signed_webhook_body_is_stored_and_answered_without_a_500(client, settings, body):
    settings.GITHUB_WEBHOOK_SECRETS = ["secret"]
    poster = Poster(client, secret="secret", token="unused", address="10.9.8.7")
    guid = f"property-{next(_examples)}"

    response = poster.github("issues", body, guid=guid)

    assert response.status_code in (202, 400), response.content
    delivery = WebhookDelivery.objects.get(guid=guid)
    if response.status_code == 400:
        assert (delivery.state, delivery.next_attempt_at) == ("failed", None)
        assert delivery.error and response.json()["detail"].startswith("Malformed delivery: ")
    else:
        assert delivery.state in ("pending", "done", "ignored")

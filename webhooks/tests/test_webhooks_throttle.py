"""Rate limits: unverified webhook floods per source address, and the API per user (SPEC section 8)."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
import time_machine
from django.core.cache import cache
from django.test import RequestFactory
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from core.throttling import ApiUserRateThrottle, client_address, parse_rate
from testing.factories import UserFactory
from testing.webhooks import Poster, payload
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db

SECRET, TOKEN = "throttle-test-secret", "throttle-test-token"


def some_address() -> str:
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


@pytest.fixture
def poster(client, settings) -> Poster:
    settings.GITHUB_WEBHOOK_SECRETS = [SECRET]
    settings.XCODE_WEBHOOK_SECRET = TOKEN
    settings.WEBHOOK_UNVERIFIED_RATE = "3/min"
    return Poster(client, secret=SECRET, token=TOKEN, address=some_address())


def flood(poster: Poster, count: int) -> list[int]:
    return [poster.github("push", payload("push"), secret="forged").status_code for _ in range(count)]


def test_an_unverified_flood_from_one_address_gets_429_with_retry_after(poster):
    with time_machine.travel(timezone.now().replace(second=10, microsecond=0), tick=False):
        codes = flood(poster, 5)
        refused = poster.github("push", payload("push"), secret="forged")

    assert codes == [401, 401, 401, 429, 429]
    assert refused.status_code == 429
    assert refused["Retry-After"] == "50"
    assert refused.json() == {"detail": "Too many unverified webhook requests; retry in 50 s."}


def test_a_verified_delivery_during_the_flood_is_still_stored(poster):
    flood(poster, 5)
    response = poster.github("issues", payload("issues_opened"), guid="during-the-flood")
    assert response.status_code == 202
    assert WebhookDelivery.objects.filter(guid="during-the-flood").exists()


def test_an_unsigned_request_from_a_flooding_address_is_refused_before_its_body_is_read(poster):
    flood(poster, 3)
    response = poster.github("push", payload("push"), headers={"X-Hub-Signature-256": None})
    assert response.status_code == 429


def test_other_addresses_are_not_limited_by_one_flood(poster, client):
    flood(poster, 5)
    other = Poster(client, secret=SECRET, token=TOKEN, address=some_address())
    assert other.github("push", payload("push"), secret="forged").status_code == 401


def test_the_limit_lifts_in_the_next_window(poster):
    start = timezone.now().replace(second=0, microsecond=0) + timedelta(minutes=1)
    with time_machine.travel(start, tick=False):
        assert flood(poster, 4)[-1] == 429
    with time_machine.travel(start + timedelta(minutes=1), tick=False):
        assert flood(poster, 1) == [401]


def test_wrong_xcode_tokens_count_too_and_a_right_one_gets_through(poster):
    codes = [poster.xcode(payload("xcode_build_completed"), token="guess").status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    assert poster.xcode(payload("xcode_build_completed"), token="", in_url=False).status_code == 429
    assert poster.xcode(payload("xcode_build_completed")).status_code == 202


def test_behind_a_trusted_proxy_the_forwarded_client_is_limited(client, settings):
    settings.GITHUB_WEBHOOK_SECRETS = [SECRET]
    settings.WEBHOOK_UNVERIFIED_RATE = "2/min"
    settings.TRUSTED_PROXY_COUNT = 1
    proxy, attacker, bystander = some_address(), some_address(), some_address()

    def forged(client_ip: str, spoofed: str = "1.2.3.4") -> int:
        return client.post(
            "/webhooks/github",
            data=b"{}",
            content_type="application/json",
            headers={
                "X-Hub-Signature-256": "sha256=" + "0" * 64,
                "X-Forwarded-For": f"{spoofed}, {client_ip}",
            },
            REMOTE_ADDR=proxy,
        ).status_code

    # The attacker cannot escape by writing another address at the left of the header.
    assert [forged(attacker, spoofed=some_address()) for _ in range(3)] == [401, 401, 429]
    assert forged(bystander) == 401


def test_the_source_address_is_remote_addr_unless_proxies_are_trusted(settings):
    request = RequestFactory().post(
        "/webhooks/github", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="198.51.100.7, 203.0.113.5"
    )
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_address(request) == "192.0.2.1"
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_address(request) == "203.0.113.5"
    settings.TRUSTED_PROXY_COUNT = 2
    assert client_address(request) == "198.51.100.7"
    settings.TRUSTED_PROXY_COUNT = 5
    assert client_address(request) == "198.51.100.7"


def test_rates_read_like_drfs():
    assert parse_rate("30/min") == (30, 60)
    assert parse_rate("5/s") == (5, 1)
    assert parse_rate("100/hour") == (100, 3600)
    assert parse_rate("1000/day") == (1000, 86400)
    with pytest.raises(ValueError, match="a rate is N/s, N/min, N/hour or N/day, not '30 per minute'"):
        parse_rate("30 per minute")


# -- the API, per user ------------------------------------------------------------------------------


class Probe(APIView):
    """An API view with the project's default authentication, permissions and throttles."""

    def get(self, request):
        return Response({"ok": True})


def test_the_api_default_throttle_is_the_per_user_one():
    assert [type(t) for t in Probe().get_throttles()] == [ApiUserRateThrottle]


def test_the_api_is_limited_per_user_with_retry_after(settings):
    settings.API_USER_RATE = "2/min"
    alice, bob = UserFactory.create(), UserFactory.create()
    factory = APIRequestFactory()

    def get(user) -> Response:
        request = factory.get("/api/probe/")
        force_authenticate(request, user=user)
        return Probe.as_view()(request)

    for user in (alice, bob):
        cache.delete(f"throttle_user_{user.pk}")
    codes = [get(alice).status_code for _ in range(3)]
    refused = get(alice)

    assert codes == [200, 200, 429]
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused.data["detail"].startswith("Request was throttled.")
    assert get(bob).status_code == 200

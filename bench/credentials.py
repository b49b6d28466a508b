"""What revocable credentials cost per request (issue 15): authenticating `GET /api/tasks/` with an API key
(one row read, SHA-256 of the secret), with a JWT checked against the user's cutoff (one more row read),
and with simplejwt's plain check, for comparison. Prints the median and p95 per request, in ms.

    .venv/bin/python -m bench.credentials [N]
"""

from __future__ import annotations

import sys
import time

from bench.setup import django_for_bench, percentile


def main(count: int = 500) -> None:
    django_for_bench("credentials")
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import override_settings
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import AccessToken

    from ssot import credentials

    settings.API_USER_RATE = "1000000/min"
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    user = get_user_model().objects.create_user("executor")
    user.groups.add(Group.objects.get(name="agents"))
    key = credentials.apikey_create(owner=user, actor="bench").plaintext
    jwt = str(AccessToken.for_user(user))

    def measure(credential: str, classes: list[str] | None = None) -> list[float]:
        if classes is None:
            return timed(credential)
        with override_settings(
            REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_AUTHENTICATION_CLASSES": classes}
        ):
            return timed(credential)

    def timed(credential: str) -> list[float]:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {credential}")
        timings = []
        for _ in range(count):
            started = time.perf_counter()
            response = client.get("/api/tasks/?limit=1")
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.content
        return timings

    results = {
        "API key": measure(key),
        "JWT + cutoff": measure(jwt),
        "JWT, simplejwt alone": measure(jwt, ["rest_framework_simplejwt.authentication.JWTAuthentication"]),
    }
    print(f"GET /api/tasks/?limit=1, {count} requests each, in-process (Django test client), ms per request:")
    for name, timings in results.items():
        print(f"  {name:22} median {percentile(timings, 0.5):6.2f}   p95 {percentile(timings, 0.95):6.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)

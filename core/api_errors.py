"""One exception handler turns every service and DRF error into the JSON answers of SPEC section 7.

A database that cannot be reached is a 503 `database_unavailable` with Retry-After on every path, not a
500: in DRF views through `exception_handler`, in any other view through `DatabaseOutageMiddleware`, and
where neither sees the error (a middleware failing) through `server_error`, the 500 handler, which also
answers JSON under /api/ and /webhooks/. The answer never names the database, its host or its path, nor
any filesystem path or credentials in a URL (core/redact.py).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin
from django.views.defaults import server_error as django_server_error
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from core.errors import Invalid, ServiceError, SsotUnavailable
from core.parsers import serializer_errors
from core.redact import public

log = logging.getLogger(__name__)

# Errors of the connection, not of a statement: the server is down, restarting, refusing connections,
# or the pool found none in time (psycopg_pool's PoolTimeout is an OperationalError); on SQLite, a file
# that cannot be opened or a lock held past the timeout. IntegrityError, DataError and ProgrammingError
# are bugs of ours and stay 500s.
DATABASE_OUTAGE = (OperationalError, InterfaceError)
DATABASE_RETRY_AFTER_SEC = 5
DATABASE_UNAVAILABLE = {
    "detail": "The database is unavailable. Try again shortly.",
    "code": "database_unavailable",
}
SERVER_ERROR = {"detail": "A server error occurred.", "code": "server_error"}
# Paths whose callers are programs: they get JSON, whatever went wrong.
MACHINE_PATHS = ("/api/", "/webhooks/", "/metrics")


def _outage_logged(exc: BaseException) -> None:
    # The driver's message names the host, the port or the file: only the kind of error is logged.
    log.warning("database unavailable: %s", type(exc).__name__)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ServiceError):
        body: dict[str, Any] = {"detail": public(exc.detail), "code": exc.code}
        if isinstance(exc, Invalid):
            body["errors"] = exc.errors
        headers = None
        if isinstance(exc, SsotUnavailable) and exc.retry_after is not None:
            headers = {"Retry-After": str(exc.retry_after)}
        return Response(body, status=exc.status, headers=headers)
    if isinstance(exc, DATABASE_OUTAGE):
        _outage_logged(exc)
        set_rollback()
        return Response(
            DATABASE_UNAVAILABLE,
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SEC)},
        )
    if isinstance(exc, exceptions.ValidationError):
        # Raised by views that are not ours (the token views): the same shape as every other bad body.
        return Response(
            {
                "detail": "Invalid request body.",
                "code": "bad_request",
                "errors": serializer_errors(exc.detail),
            },
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, exceptions.ParseError):
        return Response(
            {"detail": f"Malformed request body: {exc.detail}"}, status=status.HTTP_400_BAD_REQUEST
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        response.status_code = status.HTTP_401_UNAUTHORIZED
    # Every error carries a machine `code` beside its `detail` (DRF adds one only to some).
    codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else None
    if isinstance(response.data, dict) and "code" not in response.data and isinstance(codes, str):
        response.data["code"] = codes
    return response


def _machine(request: HttpRequest) -> bool:
    return request.path.startswith(MACHINE_PATHS)


def database_unavailable(request: HttpRequest) -> HttpResponse:
    """The 503 of a database outage: JSON for programs, a line of text for a browser."""
    if _machine(request):
        response: HttpResponse = JsonResponse(DATABASE_UNAVAILABLE, status=503)
    else:
        response = HttpResponse(
            "503 Service Unavailable: the database is unavailable. Try again shortly.\n",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_SEC)
    return response


class DatabaseOutageMiddleware(MiddlewareMixin):
    """A view (DRF's or not, sync or async) that meets a database outage answers 503, not 500."""

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DATABASE_OUTAGE):
            _outage_logged(exception)
            return database_unavailable(request)
        return None


def server_error(request: HttpRequest) -> HttpResponse:
    """The 500 handler (`handler500`): 503 for an outage, JSON under /api/ and /webhooks/, else Django's page.

    Django calls it inside the `except` of the failure on the sync chain, where the exception is still
    current; on the async chain it is not (the handler runs in another thread), and the answer is a 500.
    """
    exc = sys.exc_info()[1]
    if isinstance(exc, DATABASE_OUTAGE):
        return database_unavailable(request)
    if _machine(request):
        return JsonResponse(SERVER_ERROR, status=500)
    return django_server_error(request)

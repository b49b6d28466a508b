"""One exception handler turns every service and DRF error into the JSON answers of SPEC section 7."""

from __future__ import annotations

import logging
from typing import Any

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from ssot.errors import Invalid, ServiceError

log = logging.getLogger(__name__)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ServiceError):
        body: dict[str, Any] = {"detail": exc.detail, "code": exc.code}
        if isinstance(exc, Invalid):
            body["errors"] = exc.errors
        return Response(body, status=exc.status)
    if isinstance(exc, exceptions.ParseError):
        return Response(
            {"detail": f"Malformed request body: {exc.detail}"}, status=status.HTTP_400_BAD_REQUEST
        )
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        response = drf_exception_handler(exc, context)
        if response is not None:
            response.status_code = status.HTTP_401_UNAUTHORIZED
        return response
    return drf_exception_handler(exc, context)

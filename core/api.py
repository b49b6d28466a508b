"""What every app's API shares: the error answers it documents, body validation, and the base views
(strict JSON bodies, django-filter with JSON errors, read access by default)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse, QueryDict
from django.views.defaults import page_not_found
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import permissions
from core.filters import FilterBackend
from core.parsers import BadRequest, PayloadTooLarge, StrictJSONParser, serializer_errors


class ViolationSerializer(serializers.Serializer):
    path = serializers.CharField(help_text="Where the problem is: a field path, or `$` for the whole body.")
    message = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    """Every error answer: a readable `detail`, a machine `code`, and for invalid input every violation."""

    detail = serializers.CharField()
    code = serializers.CharField(required=False)
    # DRF's metaclass takes declared fields off the class, so Serializer.errors (the property) is intact.
    errors = ViolationSerializer(many=True, required=False)  # type: ignore[assignment]


def error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


UNAUTHENTICATED = error("No credentials, or an invalid or expired token.")
FORBIDDEN = error("Authenticated, but without the permission this needs.")
BAD_REQUEST = error("A malformed body (not JSON, not an object) or a field of the wrong type.")
READ_ERRORS = {400: error("Invalid filter values."), 401: UNAUTHENTICATED, 403: FORBIDDEN}
SSOT_UNAVAILABLE = error(
    "The SSOT could not be read or written (`ssot_unavailable`), or could not take the change within "
    "`SSOT_WRITE_WAIT_SEC` (`ssot_busy`, with `Retry-After`); nothing changed."
)


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """The body validated by a serializer; a body of the wrong shape is a 400 listing every error."""
    if isinstance(data, QueryDict):
        data = data.dict()
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise BadRequest("Invalid request body.", serializer_errors(serializer.errors))
    return serializer.validated_data


def actor(request: Request) -> str:
    return request.user.get_username()


def not_found(request: HttpRequest, exception: Exception | None = None) -> Any:
    """The 404 handler: JSON under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
    return page_not_found(request, exception)


class ApiMixin(APIView):
    """Strict JSON bodies, read access by default."""

    parser_classes = [StrictJSONParser]
    permission_classes = [permissions.CanRead]

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, RequestDataTooBig):
            exc = PayloadTooLarge("The request body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE.")
        return super().handle_exception(exc)


class ApiView(ApiMixin, APIView):
    pass


class ApiViewSet(ApiMixin, viewsets.GenericViewSet):
    """The API's strict bodies and read access, with django-filter answering bad values in JSON."""

    filter_backends = [FilterBackend]

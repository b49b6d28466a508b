"""Admin pages of credentials: API keys (created with the key shown once, revoked by an action) and the
"sign out everywhere" action on users. Both call ssot.credentials."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from core.errors import ServiceError
from ssot import credentials
from ssot.models import ApiKey

MANAGE_KEYS = "ssot.manage_keys"


class ApiKeyCreationForm(forms.ModelForm):
    days = forms.IntegerField(
        min_value=1,
        max_value=credentials.MAX_DAYS,
        initial=credentials.DEFAULT_DAYS,
        help_text=f"1 to {credentials.MAX_DAYS} days.",
    )

    class Meta:
        model = ApiKey
        fields = ["owner", "name"]

    def clean_owner(self) -> Any:
        owner = self.cleaned_data["owner"]
        if not owner.is_active:
            raise forms.ValidationError("This user is inactive; no key is created for it.")
        return owner


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["key_id", "name", "owner", "created_at", "expires_at", "last_used_at", "state"]
    list_filter = ["revoked_at"]
    search_fields = ["key_id", "name", "owner__username"]
    actions = ["revoke_keys"]
    readonly_fields = [
        "key_id",
        "owner",
        "name",
        "created_by",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "revoked_by",
    ]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(MANAGE_KEYS)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(MANAGE_KEYS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(MANAGE_KEYS)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Kept as the record of what was issued: a key is revoked, never deleted.
        return False

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = ApiKeyCreationForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj is not None else []

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj is not None else ["owner", "name", "days"]

    @admin.display(description="State")
    def state(self, key: ApiKey) -> str:
        if key.revoked_at:
            return f"revoked {key.revoked_at:%Y-%m-%d %H:%M} by {key.revoked_by}"
        return "expired" if key.expires_at <= timezone.now() else "active"

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        new = credentials.apikey_create(
            owner=form.cleaned_data["owner"],
            name=form.cleaned_data.get("name", ""),
            days=form.cleaned_data["days"],
            actor=request.user.get_username(),
        )
        obj.pk, obj.key_id = new.key.pk, new.key.key_id
        request._agentos_new_key = new  # type: ignore[attr-defined]

    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue: str | None = None) -> Any:
        new = request._agentos_new_key  # type: ignore[attr-defined]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"API key {new.key.key_id} created",
            "key": new.key,
            "plaintext": new.plaintext,
        }
        # The admin's views are never cached (no-store): the page holding the secret is not kept.
        return TemplateResponse(request, "admin/agentos/apikey_created.html", context)

    @admin.action(description="Revoke selected API keys")
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> HttpResponse | None:
        actor = request.user.get_username()
        for key in queryset:
            try:
                credentials.apikey_revoke(key_id=key.key_id, actor=actor)
            except ServiceError as exc:
                self.message_user(request, f"{key.key_id}: not revoked. {exc.detail}", messages.ERROR)
            else:
                self.message_user(request, f"API key {key.key_id} ({key.name}) is revoked.", messages.SUCCESS)
        return None


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class AgentOSUserAdmin(UserAdmin):
    actions = ["sign_out_everywhere"]

    @admin.action(
        description="Sign out everywhere (refuse every JWT issued so far, end browser sessions)",
        permissions=["change"],
    )
    def sign_out_everywhere(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
        actor = request.user.get_username()
        for user in queryset:
            ended = credentials.sign_out_everywhere(user=user, actor=actor)
            self.message_user(
                request,
                f"{user.get_username()}: every JWT issued so far is refused; "
                f"{ended} browser session{'' if ended == 1 else 's'} ended.",
                messages.SUCCESS,
            )
        return None

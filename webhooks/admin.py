"""Webhooks in the back office: an organizer's endpoints (added, edited, re-enabled, pinged) with their
latest deliveries, and the delivery log (read-only; a replay is an action). Scoped like events: an
organizer sees their own, a platform admin everything. Every change goes through the services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from accounts.models import OrganizerProfile
from eventflow.admin_mixins import SafeLookupsMixin
from eventflow.api.errors import ApplicationError
from events.selectors import is_platform_admin, organizer_profile_id
from orders.admin import ReadOnlyAdminMixin

from . import selectors, services
from .models import URL_MAX_LENGTH, EventType, WebhookDelivery, WebhookEndpoint


class EndpointForm(forms.ModelForm):
    # The admin's class for URL inputs (vURLField: wide enough for a URL; not AdminURLFieldWidget, whose
    # "Currently:" link would send the organizer's browser to their receiver), and the event checkboxes
    # laid out like the admin's radio lists, their long labels not squeezed into the 160 px label column.
    url = forms.URLField(
        label=_("URL"),
        max_length=URL_MAX_LENGTH,
        assume_scheme="https",
        widget=forms.URLInput(attrs={"class": "vURLField", "size": 60}),
    )
    events = forms.MultipleChoiceField(
        choices=EventType.choices, widget=forms.CheckboxSelectMultiple(attrs={"class": "radiolist"})
    )
    # On an organizer's add form (no organizer field): whose endpoint it is (set by the admin's get_form).
    own_organizer: OrganizerProfile | None = None

    class Meta:
        model = WebhookEndpoint
        fields = ["organizer", "url", "events", "description"]

    def clean_url(self) -> str:
        try:
            return services.url_check(self.cleaned_data["url"])
        except ApplicationError as exc:
            raise forms.ValidationError(str(exc.detail)) from exc

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.instance.pk is None:  # adding: the organizer's endpoint limit, as a form error
            organizer = cleaned.get("organizer") or self.own_organizer
            if organizer is not None:
                try:
                    services.endpoint_limit_check(organizer=organizer)
                except ApplicationError as exc:
                    raise forms.ValidationError(str(exc.detail)) from exc
        return cleaned


def _own_profile(request: HttpRequest) -> OrganizerProfile | None:
    return OrganizerProfile.objects.filter(pk=organizer_profile_id(request.user)).first()


def _local(value) -> str:
    """A date and time as the admin shows one (the active time zone, the locale's format)."""
    return formats.localize(timezone.template_localtime(value)) if value else "—"


def _short_url(url: str, length: int = 48) -> str:
    # A URL has no spaces to wrap at: a long one would push the changelist out of a 1400 px window.
    return Truncator(url).chars(length)


def _without_organizer(request: HttpRequest, columns: list[str]) -> list[str]:
    """An organizer's lists hold only their own rows: an organizer column would always name them."""
    return columns if is_platform_admin(request.user) else [c for c in columns if c != "organizer"]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(SafeLookupsMixin, admin.ModelAdmin):
    form = EndpointForm
    list_display = ["short_url", "organizer", "event_list", "is_active", "failures", "created"]
    list_filter = ["is_active"]
    list_select_related = ["organizer"]
    search_fields = ["url", "description"]
    ordering = ["organizer", "created_at", "pk"]
    status_fields = ["is_active", "disabled_at", "disabled_reason", "consecutive_failures", "secret_hint"]
    actions = ["enable", "ping"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookEndpoint]:
        qs = super().get_queryset(request)
        if not is_platform_admin(request.user):
            qs = qs.filter(organizer_id=organizer_profile_id(request.user))
        return qs

    def get_list_display(self, request: HttpRequest) -> list[str]:
        return _without_organizer(request, super().get_list_display(request))

    def get_fields(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> list[str]:
        editable = ["url", "events", "description"]
        if obj is None:
            return ["organizer", *editable] if is_platform_admin(request.user) else editable
        return ["organizer", *editable, *self.status_fields, "recent_deliveries"]

    def get_readonly_fields(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> list[str]:
        return [] if obj is None else ["organizer", *self.status_fields, "recent_deliveries"]

    def get_form(self, request: HttpRequest, obj: WebhookEndpoint | None = None, **kwargs: Any) -> type[EndpointForm]:
        form = super().get_form(request, obj, **kwargs)  # a class made for this request
        if obj is None and not is_platform_admin(request.user):
            form.own_organizer = _own_profile(request)
        return form

    def has_add_permission(self, request: HttpRequest) -> bool:
        may = is_platform_admin(request.user) or organizer_profile_id(request.user) is not None
        return may and super().has_add_permission(request)

    @admin.display(description=_("URL"), ordering="url")
    def short_url(self, obj: WebhookEndpoint) -> str:
        return _short_url(obj.url)

    @admin.display(description=_("events"))
    def event_list(self, obj: WebhookEndpoint) -> str:
        return ", ".join(obj.events)

    @admin.display(description=_("failures"), ordering="consecutive_failures")
    def failures(self, obj: WebhookEndpoint) -> int:
        return obj.consecutive_failures  # in a row (the endpoint's page says so)

    @admin.display(description=_("created"), ordering="created_at")
    def created(self, obj: WebhookEndpoint) -> str:
        return _local(obj.created_at)  # as the admin shows it, but free to wrap (a date field's column is not)

    @admin.display(description=_("latest deliveries"))
    def recent_deliveries(self, obj: WebhookEndpoint) -> str:
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    _local(d.created_at),
                    d.event_type,
                    d.get_status_display(),
                    d.attempts,
                    d.last_status_code or "—",
                    d.last_error or "",
                )
                for d in selectors.recent_deliveries(endpoint=obj)
            ),
        )
        if not rows:
            return "—"
        headings = format_html_join(
            "",
            '<th scope="col">{}</th>',
            (
                (label,)
                for label in (
                    _("created"),
                    _("event type"),
                    _("status"),
                    _("attempts"),
                    _("last response status"),
                    _("last error"),
                )
            ),
        )
        return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", headings, rows)

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form, change: bool) -> None:
        data = form.cleaned_data
        if change:
            endpoint = services.endpoint_update(
                endpoint=obj, url=data["url"], events=data["events"], description=data["description"]
            )
        else:
            organizer = data["organizer"] if is_platform_admin(request.user) else _own_profile(request)
            try:
                endpoint = services.endpoint_create(
                    organizer=organizer, url=data["url"], events=data["events"], description=data["description"]
                )
            except ApplicationError as exc:
                # The form checked the limit; only a creation racing this one gets here.
                self.message_user(request, str(exc.detail), messages.ERROR)
                return
            self.message_user(
                request,
                _("Signing secret (keep it with your receiver): %(secret)s") % {"secret": endpoint.secret},
                messages.WARNING,
            )
        obj.pk, obj.secret, obj.created_at = endpoint.pk, endpoint.secret, endpoint.created_at

    def get_deleted_objects(self, objs, request: HttpRequest):
        """An endpoint's delivery log goes with it (the foreign key cascades, in endpoint_delete): the
        deliveries being read-only for everybody must not stop the endpoint's deletion, in the delete
        view and the "Delete selected" action alike. The endpoint's own delete permission still counts."""
        to_delete, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        perms_needed.discard(WebhookDelivery._meta.verbose_name)
        return to_delete, model_count, perms_needed, protected

    def delete_model(self, request: HttpRequest, obj: WebhookEndpoint) -> None:
        services.endpoint_delete(endpoint=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            services.endpoint_delete(endpoint=endpoint)

    @admin.action(description=_("Enable again (after repeated failures)"), permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        count = 0
        for endpoint in queryset.filter(is_active=False):
            services.endpoint_enable(endpoint=endpoint)
            count += 1
        self.message_user(request, _("%(count)d endpoint(s) enabled.") % {"count": count}, messages.SUCCESS)

    @admin.action(description=_("Send a test ping"), permissions=["change"])
    def ping(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            try:
                services.endpoint_ping(endpoint=endpoint)
            except ApplicationError as exc:
                self.message_user(request, f"{endpoint.url}: {exc.detail}", messages.ERROR)
        self.message_user(request, _("Pings queued; their outcome is in the deliveries."), messages.INFO)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(SafeLookupsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """The delivery log: written only by the sender; an organizer can replay a delivery."""

    # Within a 1400 px window beside the filters: the latency and next attempt are on the delivery's page.
    list_display = ["created", "event_type", "endpoint_url", "organizer", "status", "attempts", "response"]
    list_filter = ["status", "event_type"]
    list_select_related = ["endpoint__organizer"]
    search_fields = ["event_id", "endpoint__url"]
    ordering = ["-created_at", "pk"]
    fields = [
        "id",
        "endpoint",
        "event_id",
        "event_type",
        "status",
        "attempts",
        "next_attempt_at",
        "last_attempt_at",
        "last_status_code",
        "last_latency_ms",
        "last_error",
        "delivered_at",
        "created_at",
        "payload",
    ]
    readonly_fields = fields
    actions = ["replay"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookDelivery]:
        qs = super().get_queryset(request)
        if not is_platform_admin(request.user):
            qs = qs.filter(endpoint__organizer_id=organizer_profile_id(request.user))
        return qs

    def get_list_display(self, request: HttpRequest) -> list[str]:
        return _without_organizer(request, super().get_list_display(request))

    @admin.display(description=_("created"), ordering="created_at")
    def created(self, obj: WebhookDelivery) -> str:
        return _local(obj.created_at)  # as the admin shows it, but free to wrap (a date field's column is not)

    @admin.display(description=_("endpoint"), ordering="endpoint__url")
    def endpoint_url(self, obj: WebhookDelivery) -> str:
        return _short_url(obj.endpoint.url.removeprefix("https://"), 36)

    @admin.display(description=_("organizer"), ordering="endpoint__organizer")
    def organizer(self, obj: WebhookDelivery) -> OrganizerProfile:
        return obj.endpoint.organizer

    @admin.display(description=_("HTTP"), ordering="last_status_code")
    def response(self, obj: WebhookDelivery) -> int | None:
        return obj.last_status_code

    def has_replay_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("webhooks.view_webhookdelivery")

    @admin.action(description=_("Replay (send again)"), permissions=["replay"])
    def replay(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        count = 0
        for delivery in queryset:
            try:
                services.delivery_replay(delivery=delivery)
                count += 1
            except ApplicationError as exc:
                self.message_user(request, f"{delivery.pk}: {exc.detail}", messages.ERROR)
        self.message_user(request, _("%(count)d delivery(ies) queued again.") % {"count": count}, messages.SUCCESS)

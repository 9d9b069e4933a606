"""The organizers' back office.

Organizers are staff users in the "Organizers" group (see
``accounts.services.organizer_profile_create``); every permission they hold is
narrowed here to events of their own organizer profile, and objects of other
organizers answer as if they did not exist. Superusers see everything.

Writes go through ``events.services`` like the API's, so the admin cannot
break a rule the API keeps (a capacity below what is sold, a slug taken twice,
publishing without ticket types). Forms repeat the checks users are likely to
hit so they get an ordinary form error; a refusal the form could not foresee
(a purchase racing the save) rolls the whole save back and is reported with
``message_user``.
"""

from __future__ import annotations

import copy
import functools
import zoneinfo
from collections.abc import Callable, Iterable
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db.models import Model, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.forms.models import BaseInlineFormSet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from eventflow.admin_mixins import SafeLookupsMixin
from eventflow.api.errors import ApplicationError
from eventflow.regional import (
    CURRENCY_CHOICES,
    ISO_4217,
    TIME_ZONE_CHOICES,
    TIME_ZONES,
    format_money,
    to_major,
    to_minor,
)

from .errors import EventCancelled, EventHasOrders, ImageTooLarge, LastTicketType, SlugTaken, TicketTypeHasOrders
from .images import reencode
from .models import MAX_CAPACITY, MAX_PRICE_CENTS, Event, Seat, StockBucket, TicketType
from .seats import SeatsInvalid, seat_delete, seats_create, seats_import_csv
from .selectors import can_manage, event_ids_not_deletable, is_platform_admin, organizer_profile_id
from .services import (
    EVENT_FIELDS,
    TICKET_TYPE_FIELDS,
    check_starts_in_future,
    check_time_window,
    event_cancel,
    event_create,
    event_delete,
    event_publish,
    event_set_image,
    event_unpublish,
    event_update,
    ticket_type_create,
    ticket_type_delete,
    ticket_type_update,
)


def _adopt(target: Model, source: Model) -> None:
    """Make the admin's unsaved form instance the row a service saved.

    The admin keeps using its own object after ``save_model`` (inlines hang
    off it, the log entry and the redirect need its pk), so the service's
    result is copied into it rather than returned.
    """
    for field in source._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    target._state.adding = False
    target._state.db = source._state.db


def _sales_chart(days: list[dict], *, width: int = 560, height: int = 120) -> dict[str, Any]:
    """Bars of tickets sold per day, laid out for a small inline SVG (no script: CSP-friendly)."""
    if not days:
        return {"bars": []}
    peak = max(day["tickets"] for day in days) or 1
    slot = width / len(days)
    bar_width = max(1.0, min(24.0, slot * 0.8))
    baseline = height - 16
    bars = []
    for index, day in enumerate(days):
        bar_height = round((baseline - 4) * day["tickets"] / peak, 1)
        bars.append(
            {
                "x": round(index * slot + (slot - bar_width) / 2, 1),
                "y": round(baseline - bar_height, 1),
                "height": bar_height,
                "tickets": day["tickets"],
                "label": day["date"].isoformat(),
            }
        )
    return {
        "bars": bars,
        "bar_width": round(bar_width, 1),
        "width": width,
        "height": height,
        "baseline": baseline,
        "peak": peak,
        "first": days[0]["date"].isoformat(),
        "last": days[-1]["date"].isoformat(),
    }


def _with_help_text(form_class: type[forms.BaseForm], names: Iterable[str], text: str) -> None:
    """Per-request help text on a per-request form class, without touching the fields it shares
    with other requests' classes (declared fields are the same objects)."""
    for name in names:
        if name in form_class.base_fields:
            field = copy.deepcopy(form_class.base_fields[name])
            field.help_text = text
            form_class.base_fields[name] = field


# --- Ticket types (inline) ---------------------------------------------------------------


# One compact input for a date and a time (the browser's own picker), in the event's time zone:
# the split date/time widgets with their shortcuts made the inline wider than a laptop screen.
LOCAL_DATETIME_FORMAT = "%Y-%m-%dT%H:%M"


def _local_datetime_field(label: str) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label,
        required=False,
        input_formats=[LOCAL_DATETIME_FORMAT, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_DATETIME_FORMAT),
    )


def _narrow_number(**kwargs: Any) -> forms.NumberInput:
    return forms.NumberInput(attrs={"class": "vIntegerField", **kwargs})


class TicketTypeInlineForm(forms.ModelForm):
    """A ticket type as an organizer thinks of it: the price in the event's currency (25.00 EUR),
    stored in minor units (``price_cents``); times in the event's time zone."""

    price = forms.DecimalField(label=_("Price"), min_value=0, max_digits=12, decimal_places=3, widget=_narrow_number())
    capacity = forms.IntegerField(label=_("Capacity"), min_value=0, max_value=MAX_CAPACITY, widget=_narrow_number())
    sales_start = _local_datetime_field(_("Sales start"))
    sales_end = _local_datetime_field(_("Sales end"))

    class Meta:
        model = TicketType
        fields = [
            *("name", "price", "capacity", "max_per_order", "max_per_buyer"),
            *("sales_start", "sales_end", "seated", "position", "stock_buckets", "low_stock_threshold"),
        ]
        widgets = {
            "name": forms.TextInput(attrs={"size": 18}),
            "max_per_order": _narrow_number(),
            "max_per_buyer": _narrow_number(),
            "position": _narrow_number(),
            "stock_buckets": _narrow_number(),
            "low_stock_threshold": _narrow_number(),
        }

    def __init__(self, *args: Any, currency: str = "EUR", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.currency = currency
        self.fields["price"].help_text = gettext("In %(currency)s.") % {"currency": currency}
        # Left empty: a new type's count follows its capacity (STOCK_BUCKETS_MIN_CAPACITY), a saved one keeps its own.
        self.fields["stock_buckets"].required = False
        if not self.instance.pk:
            self.initial.setdefault("max_per_buyer", settings.DEFAULT_MAX_PER_BUYER)
            self.initial["stock_buckets"] = None
        if self.instance.pk:
            self.initial["price"] = to_major(self.instance.price_cents, currency)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        price = cleaned.get("price")
        if price is not None:
            try:
                cleaned["price_cents"] = to_minor(price, self.currency)
            except forms.ValidationError as exc:
                self.add_error("price", exc)
            else:
                if cleaned["price_cents"] > MAX_PRICE_CENTS:
                    self.add_error("price", gettext("That is more than a ticket may cost."))
        try:
            check_time_window(cleaned.get("sales_start"), cleaned.get("sales_end"), end_field="sales_end")
        except ApplicationError as exc:
            self.add_error(exc.field, str(exc.detail))
        if self.instance.pk and cleaned.get("stock_buckets") is None:
            cleaned["stock_buckets"] = self.instance.stock_buckets
        capacity = cleaned.get("capacity")
        if self.instance.pk and capacity is not None and "capacity" in self.changed_data:
            # Read the row as it is now, not as the page showed it: tickets may have sold since.
            current = TicketType.objects.filter(pk=self.instance.pk).first()
            if current is not None and capacity < current.taken:
                self.add_error(
                    "capacity",
                    ngettext(
                        "Capacity cannot drop below %(taken)d ticket already sold or held.",
                        "Capacity cannot drop below %(taken)d tickets already sold or held.",
                        current.taken,
                    )
                    % {"taken": current.taken},
                )
        return cleaned


class TicketTypeInlineFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        """Refuse deletions the service would refuse; errors of rows marked for deletion are
        otherwise ignored by formsets, so these are checked here."""
        super().clean()
        deleted = [form for form in self.deleted_forms if form.instance.pk]
        if not deleted:
            return
        current = TicketType.objects.in_bulk([form.instance.pk for form in deleted])
        errors = [
            gettext("“%(name)s” cannot be deleted: %(reason)s")
            % {"name": tt.name, "reason": TicketTypeHasOrders.default_detail}
            for tt in current.values()
            if tt.taken
        ]
        kept = [form for form in self.forms if form not in deleted and (form.instance.pk or form.has_changed())]
        if self.instance.pk and self.instance.status == Event.Status.PUBLISHED and not kept:
            errors.append(str(LastTicketType.default_detail))
        if errors:
            raise forms.ValidationError(errors)


class TicketTypeInline(admin.TabularInline):
    model = TicketType
    form = TicketTypeInlineForm
    formset = TicketTypeInlineFormSet
    fields = [
        "name",
        "price",
        "capacity",
        "max_per_order",
        "max_per_buyer",
        "sales_start",
        "sales_end",
        "seated",
        "position",
        "stock_buckets",
        "low_stock_threshold",
        "on_sale",
        "sold",
        "held",
    ]
    readonly_fields = ["on_sale", "sold", "held"]
    extra = 1

    def get_formset(self, request: HttpRequest, obj: Event | None = None, **kwargs: Any):
        formset = super().get_formset(request, obj, **kwargs)
        zone = timezone.get_current_timezone_name()  # EventAdmin.changeform_view activates the event's
        _with_help_text(formset.form, ("sales_start", "sales_end"), gettext("In %(zone)s.") % {"zone": zone})
        return formset

    def get_queryset(self, request: HttpRequest) -> QuerySet[TicketType]:
        """Sold and held come from the orders, added up in the inline's one query rather than one
        query per row; the event is joined for each row's title (``TicketType.__str__``)."""
        from orders.selectors import with_sold_and_held  # orders build on events, not the reverse

        return with_sold_and_held(super().get_queryset(request).select_related("event").with_on_sale())

    # A new row has no sales yet: shown as the admin's empty value ("-").
    @admin.display(description=_("Available"))
    def on_sale(self, obj: TicketType) -> int | str:
        """The pool plus the stock buckets, and how many wait on the type's waiting list (orders.waitlist;
        while any wait, returned stock is theirs). In this column, not its own: the inline's columns
        fit a 1400 px window (.ci/browser_check.py)."""
        if not obj.pk:
            return self.get_empty_value_display()
        if obj.waitlisted:
            return ngettext("%(n)d (%(w)d waiting)", "%(n)d (%(w)d waiting)", obj.waitlisted) % {
                "n": obj.on_sale,
                "w": obj.waitlisted,
            }
        return obj.on_sale

    @admin.display(description=_("Sold"))
    def sold(self, obj: TicketType) -> int | str:
        return obj.sold if obj.pk else self.get_empty_value_display()

    @admin.display(description=_("Held"))
    def held(self, obj: TicketType) -> int | str:
        return obj.held if obj.pk else self.get_empty_value_display()

    def _parent_editable(self, request: HttpRequest, obj: Event | None) -> bool:
        """Ticket types of a cancelled event are frozen, like the event itself."""
        return obj is None or (can_manage(request.user, obj) and obj.status != Event.Status.CANCELLED)

    def has_add_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return super().has_add_permission(request, obj) and self._parent_editable(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return super().has_change_permission(request, obj) and self._parent_editable(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return super().has_delete_permission(request, obj) and self._parent_editable(request, obj)


def _save_ticket_types(formset: TicketTypeInlineFormSet, event: Event) -> None:
    """Persist the inline through the services: creates and updates first, then deletions,
    so replacing the last ticket type of a published event is not refused."""
    formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
    marked = formset.deleted_forms
    for form in formset.forms:
        if form in marked or not form.has_changed():
            continue
        if form.instance.pk is None:
            fields = {name: value for name, value in form.cleaned_data.items() if name in TICKET_TYPE_FIELDS}
            formset.new_objects.append(ticket_type_create(event=event, **fields))
        else:
            changed = {"price_cents" if name == "price" else name for name in form.changed_data}
            changes = {name: form.cleaned_data[name] for name in changed if name in TICKET_TYPE_FIELDS}
            form.instance.event = event
            formset.changed_objects.append(
                (ticket_type_update(ticket_type=form.instance, **changes), form.changed_data)
            )
    for form in marked:
        if form.instance.pk is None:
            continue  # a new row marked for deletion was never saved
        form.instance.event = event
        ticket_type_delete(ticket_type=form.instance)
        formset.deleted_objects.append(form.instance)


# --- Events ----------------------------------------------------------------------------


class EventAdminForm(forms.ModelForm):
    # Set per request by EventAdmin.get_form: whose event a new one becomes when the form has no organizer
    # field, and the size limit an upload of this request went over (events.images.SizeLimitedUploadHandler).
    acting_organizer_id: int | None = None
    upload_over_limit: int | None = None

    timezone = forms.ChoiceField(label=_("Time zone"), choices=TIME_ZONE_CHOICES)
    currency = forms.ChoiceField(label=_("Currency"), choices=CURRENCY_CHOICES)
    new_image = forms.FileField(
        label=_("Upload an image"),
        required=False,
        help_text=_("JPEG, PNG, GIF or WebP. It is stored re-encoded and replaces the current image."),
    )

    class Meta:
        model = Event
        fields = ["organizer", *sorted(EVENT_FIELDS)]  # what the services write; status & co. are read-only
        help_texts = {"slug": _("Part of the event's address. Leave empty to derive it from the title.")}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "slug" in self.fields:
            self.fields["slug"].required = False

    def clean_new_image(self):
        """Validated (and re-encoded) here, so a bad image is an error on the field, as in the API."""
        if self.upload_over_limit is not None:
            raise forms.ValidationError(str(ImageTooLarge(self.upload_over_limit).detail))
        upload = self.cleaned_data.get("new_image")
        if upload is None:
            return None
        try:
            return reencode(upload)
        except ApplicationError as exc:
            raise forms.ValidationError(str(exc.detail)) from exc

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.instance.pk and self.instance.status == Event.Status.CANCELLED:
            raise forms.ValidationError(EventCancelled.default_detail)
        starts, ends = cleaned.get("starts_at"), cleaned.get("ends_at")
        # The services' own rules, checked here too so a refusal shows on its field.
        try:
            check_time_window(starts, ends, end_field="ends_at")
            if "starts_at" in self.changed_data:
                check_starts_in_future(starts)
        except ApplicationError as exc:
            self.add_error(exc.field, str(exc.detail))
        if (cleaned.get("latitude") is None) != (cleaned.get("longitude") is None):
            self.add_error("longitude", gettext("Give latitude and longitude together."))
        slug = cleaned.get("slug")
        if slug:
            organizer = cleaned.get("organizer")
            organizer_id = self.instance.organizer_id or (organizer.pk if organizer else self.acting_organizer_id)
            taken = Event.objects.alive().filter(organizer_id=organizer_id, slug=slug).exclude(pk=self.instance.pk)
            if organizer_id is not None and taken.exists():
                self.add_error("slug", SlugTaken.default_detail)
        return cleaned


@admin.register(Event)
class EventAdmin(SafeLookupsMixin, admin.ModelAdmin):
    form = EventAdminForm
    inlines = [TicketTypeInline]
    list_display = ["title", "organizer", "status", "city", "starts_local", "tickets_available", "waitlist_length"]
    list_filter = ["status", "high_demand", "category", "city", "starts_at"]
    search_fields = ["title", "venue_name", "city", "organizer__display_name"]
    date_hierarchy = "starts_at"
    list_select_related = ["organizer"]
    ordering = ["-starts_at", "-id"]
    prepopulated_fields = {"slug": ["title"]}
    autocomplete_fields = ["organizer"]
    readonly_fields = [
        "status",
        "image_preview",
        "sales_summary",
        "published_at",
        "cancelled_at",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["title", "slug", "organizer", "category", "description", "image_preview", "new_image"]}),
        (_("Venue"), {"fields": ["venue_name", "address", "city", "country", "latitude", "longitude"]}),
        (_("Dates"), {"fields": ["timezone", "starts_at", "ends_at", "refundable_until_hours_before"]}),
        (_("Sales"), {"fields": ["currency", "max_tickets_per_buyer", "high_demand", "sales_summary"]}),
        (_("Transfers"), {"fields": ["transfers_enabled", "transfer_cutoff_hours"]}),
        (_("Status"), {"fields": ["status", "published_at", "cancelled_at", "created_at", "updated_at"]}),
    ]
    actions = ["publish_events", "unpublish_events", "cancel_events"]

    class Media:
        css = {"all": ["events/admin.css"]}

    # --- Scoping: another organizer's event does not exist ---------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[Event]:
        per_event = {"pool": (TicketType, "event"), "buckets": (StockBucket, "ticket_type__event")}
        available = {
            name: model.objects.filter(**{event: OuterRef("pk")})
            .order_by()
            .values(event)
            .annotate(total=Sum("available"))
            .values("total")
            for name, (model, event) in per_event.items()
        }
        qs = (
            super()
            .get_queryset(request)
            .alive()
            .annotate(
                available_total=Coalesce(Subquery(available["pool"]), 0) + Coalesce(Subquery(available["buckets"]), 0),
                waitlisted_total=Coalesce(
                    Subquery(
                        TicketType.objects.filter(event=OuterRef("pk"))
                        .order_by()
                        .values("event")
                        .annotate(total=Sum("waitlisted"))
                        .values("total")
                    ),
                    0,
                ),
            )
        )
        if not is_platform_admin(request.user):
            qs = qs.filter(organizer_id=organizer_profile_id(request.user))  # no profile: nothing
        return qs

    def has_add_permission(self, request: HttpRequest) -> bool:
        # An event needs an organizer; staff without a profile have nobody to create it for.
        may_own = is_platform_admin(request.user) or organizer_profile_id(request.user) is not None
        return super().has_add_permission(request) and may_own

    def has_view_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return super().has_view_permission(request, obj) and (obj is None or can_manage(request.user, obj))

    def has_change_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        if obj is not None and (not can_manage(request.user, obj) or obj.status == Event.Status.CANCELLED):
            return False  # a cancelled event can no longer be changed (the services refuse too)
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return super().has_delete_permission(request, obj) and (obj is None or can_manage(request.user, obj))

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs: Any):
        if db_field.name == "organizer" and not is_platform_admin(request.user):
            kwargs["queryset"] = db_field.related_model.objects.filter(pk=organizer_profile_id(request.user))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Event | None = None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None and not is_platform_admin(request.user):
            # An organizer's new event is theirs: the field is set in save_model, never chosen.
            fieldsets = [
                (name, {**options, "fields": [f for f in options["fields"] if f != "organizer"]})
                for name, options in fieldsets
            ]
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Event | None = None) -> list[str]:
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            readonly.append("organizer")  # no service moves an event to another organizer
        return readonly

    def get_form(self, request: HttpRequest, obj: Event | None = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.acting_organizer_id = organizer_profile_id(request.user)  # a fresh class per request
        form.upload_over_limit = getattr(request, "upload_over_limit", None)
        zone = timezone.get_current_timezone_name()  # changeform_view activated the event's
        text = gettext("In the event's time zone: %(zone)s.") % {"zone": zone}
        _with_help_text(form, ("starts_at", "ends_at"), text)
        return form

    # --- Writes through the services ------------------------------------------------

    def _form_zone_and_currency(self, request: HttpRequest, object_id: str | None) -> tuple[str, str]:
        """The time zone the form's times are in, and the currency of its prices: what the form is
        being saved with, else the event's, else the organizer's defaults for a new event."""
        event = self.get_object(request, object_id) if object_id else None  # None for a malformed or foreign id
        profile = getattr(request.user, "organizer_profile", None) if event is None else None
        zone = event.timezone if event else (profile.timezone if profile else settings.TIME_ZONE)
        currency = event.currency if event else (profile.currency if profile else "EUR")
        if request.method == "POST":
            posted_zone, posted_currency = request.POST.get("timezone"), request.POST.get("currency")
            zone = posted_zone if posted_zone in TIME_ZONES else zone
            currency = posted_currency if posted_currency in ISO_4217 else currency
        return zone, currency

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        zone, currency = self._form_zone_and_currency(request, object_id)
        request.event_currency = currency  # for the ticket-type rows' prices (get_formset_kwargs)
        # The ticket-type rows need the page's whole width (a 1400 px window shows every column with
        # available, sold and held); the navigation sidebar's links are in the breadcrumbs too.
        extra_context = {"is_nav_sidebar_enabled": False, **(extra_context or {})}
        try:
            # Times on the page are the event's local times, shown and read in its time zone.
            with timezone.override(zoneinfo.ZoneInfo(zone)):
                response = super().changeform_view(request, object_id, form_url, extra_context)
                if hasattr(response, "render"):
                    response.render()  # now, while the zone is active: the widgets format the local times
                return response
        except ApplicationError as exc:
            # A refusal the form could not foresee (e.g. tickets sold while the page was open).
            # The exception left super()'s transaction, so the event and all its ticket types
            # were rolled back together; nothing half-saved remains.
            self.message_user(request, str(exc.detail), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        """A new event starts in its organizer's time zone and currency."""
        initial = super().get_changeform_initial_data(request)
        profile = getattr(request.user, "organizer_profile", None)
        if profile is not None:
            initial.setdefault("timezone", profile.timezone)
            initial.setdefault("currency", profile.currency)
        return initial

    def get_formset_kwargs(self, request: HttpRequest, obj: Event, inline, prefix: str) -> dict[str, Any]:
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if isinstance(inline, TicketTypeInline):
            kwargs["form_kwargs"] = {"currency": getattr(request, "event_currency", "EUR")}
        return kwargs

    def save_model(self, request: HttpRequest, obj: Event, form: forms.ModelForm, change: bool) -> None:
        names = form.changed_data if change else form.cleaned_data
        data = {name: form.cleaned_data[name] for name in names if name in EVENT_FIELDS}
        if not data.get("slug"):
            data.pop("slug", None)  # derived on create, kept on change
        if change:
            saved = event_update(event=obj, **data)
        else:
            # Only a superuser's form has the organizer field; anyone else creates for themselves.
            organizer = form.cleaned_data.get("organizer") or request.user.organizer_profile
            saved = event_create(organizer=organizer, **data)
        if form.cleaned_data.get("new_image") is not None:
            saved = event_set_image(event=saved, image=form.cleaned_data["new_image"])
        _adopt(obj, saved)

    def save_formset(self, request: HttpRequest, form: forms.ModelForm, formset, change: bool) -> None:
        _save_ticket_types(formset, form.instance)

    # --- Deleting is a soft delete through event_delete -------------------------------

    def get_deleted_objects(self, objs: Iterable[Event], request: HttpRequest):
        """Only the events themselves are affected (their ticket types stay for accounting);
        events the service would refuse to delete are listed as protected, so the page refuses them."""
        events = list(objs)
        taken = event_ids_not_deletable(event_ids=[event.pk for event in events])
        deletable = [str(event) for event in events if event.pk not in taken]
        protected = [
            gettext("%(event)s: %(reason)s") % {"event": event, "reason": EventHasOrders.default_detail}
            for event in events
            if event.pk in taken
        ]
        return deletable, {Event._meta.verbose_name_plural: len(deletable)}, set(), protected

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except ApplicationError as exc:
            # Tickets sold between the confirmation page and the click; the log entry is rolled back too.
            self.message_user(request, str(exc.detail), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:events_event_change", args=[object_id]))

    def delete_model(self, request: HttpRequest, obj: Event) -> None:
        event_delete(event=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Event]) -> None:
        for event in queryset:
            try:
                event_delete(event=event)
            except ApplicationError as exc:
                self._report_refusal(request, gettext("Could not delete “%(event)s”: %(error)s"), event, exc)

    # --- What the organizer reads ----------------------------------------------------

    @admin.display(description=_("starts"), ordering="starts_at")
    def starts_local(self, obj: Event) -> str:
        """In the event's own time zone, named: a New York 21:30 show reads 21:30 EDT."""
        try:
            local = obj.starts_at.astimezone(zoneinfo.ZoneInfo(obj.timezone))
        except OverflowError:  # a time at the calendar's very end (the API refuses those now)
            local = obj.starts_at
        return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"

    @admin.display(description=_("current image"))
    def image_preview(self, obj: Event | None) -> str:
        if obj is None or not obj.image:
            return gettext("No image yet.")
        return format_html('<a href="{0}"><img src="{0}" alt="" class="eventflow-image-preview"></a>', obj.image.url)

    @admin.display(description=_("sales"))
    def sales_summary(self, obj: Event | None) -> str:
        """Sold, held and revenue per ticket type, the orders, a chart of sales per day, and the
        attendee list; the same numbers as GET /events/{id}/sales."""
        if obj is None or obj.pk is None:
            return gettext("Sales appear here once the event is saved.")
        from orders.selectors import event_order_counts, event_sales  # orders build on events

        sales = event_sales(event=obj)
        prices = dict(TicketType.objects.filter(event=obj).values_list("pk", "price_cents"))
        money = functools.partial(format_money, currency=obj.currency)
        rows = [
            {
                **row,
                "price": money(prices.get(row["id"], 0)),
                "revenue": money(row["gross_cents"]),
            }
            for row in sales["ticket_types"]
        ]
        totals = {
            key: sum(row[key] for row in sales["ticket_types"])
            for key in ("sold", "held", "available", "capacity", "checked_in", "issued")
        }
        totals.update(
            revenue=money(sales["gross_cents"]),
            discounts=money(sales["discounts_cents"]),
            fees=money(sales["fees_cents"]),
            refunds=money(sales["refunds_cents"]),
            net=money(sales["net_cents"]),
        )
        tickets = reverse("admin:orders_ticket_changelist")
        return render_to_string(
            "admin/events/event/sales_summary.html",
            {
                "rows": rows,
                "totals": totals,
                "orders": event_order_counts(event=obj),
                "chart": _sales_chart(sales["days"]),
                "cancelled": obj.status == Event.Status.CANCELLED,
                "refunds": sales["refund_progress"],
                "links": {
                    "failed_refunds": f"{reverse('admin:orders_refund_changelist')}?status__exact=failed",
                    "attendees": f"{tickets}?ticket_type__event__id__exact={obj.pk}&status__exact=valid",
                    "csv": reverse("admin:events_event_attendees_csv", args=[obj.pk]),
                    "orders": f"{reverse('admin:orders_order_changelist')}?event__id__exact={obj.pk}",
                    "import_seats": reverse("admin:events_event_import_seats", args=[obj.pk]),
                    "seats": f"{reverse('admin:events_seat_changelist')}?event__id__exact={obj.pk}",
                },
            },
        )

    def get_urls(self):
        own = [
            path(
                "<path:object_id>/attendees.csv",
                self.admin_site.admin_view(self.attendees_csv),
                name="events_event_attendees_csv",
            ),
            path(
                "<path:object_id>/import-seats",
                self.admin_site.admin_view(functools.partial(import_seats_view, self)),
                name="events_event_import_seats",
            ),
        ]
        return own + super().get_urls()

    def attendees_csv(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The attendee CSV of the API's ?format=csv, for a signed-in organizer of the event."""
        from orders.exports import attendees_csv_response

        event = self.get_object(request, unquote(object_id))  # another organizer's event: None
        if event is None or not self.has_view_permission(request, event):
            raise Http404
        return attendees_csv_response(event)

    # --- Status changes -------------------------------------------------------------

    @admin.display(description=_("Tickets available"), ordering="available_total")
    def tickets_available(self, obj: Event) -> int:
        return obj.available_total

    @admin.display(description=_("waiting list"), ordering="waitlisted_total")
    def waitlist_length(self, obj: Event) -> int:
        """Entries waiting on the event's waiting lists (orders.waitlist), all ticket types."""
        return obj.waitlisted_total

    @admin.action(description=_("Publish selected events"), permissions=["change"])
    def publish_events(self, request: HttpRequest, queryset: QuerySet[Event]) -> None:
        done = self._transition(request, queryset, event_publish, gettext("Could not publish “%(event)s”: %(error)s"))
        if done:
            self.message_user(
                request,
                ngettext("%(count)d event was published.", "%(count)d events were published.", done) % {"count": done},
                messages.SUCCESS,
            )

    @admin.action(description=_("Unpublish selected events"), permissions=["change"])
    def unpublish_events(self, request: HttpRequest, queryset: QuerySet[Event]) -> None:
        done = self._transition(
            request, queryset, event_unpublish, gettext("Could not unpublish “%(event)s”: %(error)s")
        )
        if done:
            self.message_user(
                request,
                ngettext("%(count)d event was unpublished.", "%(count)d events were unpublished.", done)
                % {"count": done},
                messages.SUCCESS,
            )

    @admin.action(description=_("Cancel selected events and refund every buyer"), permissions=["change"])
    def cancel_events(self, request: HttpRequest, queryset: QuerySet[Event]) -> None:
        done = self._transition(request, queryset, event_cancel, gettext("Could not cancel “%(event)s”: %(error)s"))
        if done:
            self.message_user(
                request,
                ngettext(
                    "%(count)d event was cancelled; its buyers are being refunded (progress under Sales).",
                    "%(count)d events were cancelled; their buyers are being refunded (progress under Sales).",
                    done,
                )
                % {"count": done},
                messages.SUCCESS,
            )

    def _transition(
        self, request: HttpRequest, queryset: QuerySet[Event], service: Callable[..., Event], failure: str
    ) -> int:
        """Run ``service`` on each event in its own transaction: one refusal does not undo the others,
        and each is reported so the organizer knows what is left to fix."""
        done = 0
        for event in queryset:
            try:
                service(event=event)
            except ApplicationError as exc:
                self._report_refusal(request, failure, event, exc)
            else:
                done += 1
        return done

    def _report_refusal(self, request: HttpRequest, template: str, event: Event, exc: ApplicationError) -> None:
        self.message_user(request, template % {"event": event, "error": exc.detail}, messages.ERROR)


# --- Seats ----------------------------------------------------------------------------------


class SeatAdminForm(forms.ModelForm):
    """A new seat; the same checks the service makes, as form errors (the service decides)."""

    class Meta:
        model = Seat
        fields = ["event", "ticket_type", "section", "row", "number", "x", "y"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        event, ticket_type = data.get("event"), data.get("ticket_type")
        if ticket_type is not None and event is not None and ticket_type.event_id != event.pk:
            self.add_error("ticket_type", gettext("Choose a ticket type of this event."))
        elif ticket_type is not None and not ticket_type.seated:
            self.add_error("ticket_type", gettext("Choose a seated ticket type."))
        return data


class SeatImportForm(forms.Form):
    file = forms.FileField(label=_("CSV file"))


@admin.register(Seat)
class SeatAdmin(SafeLookupsMixin, admin.ModelAdmin):
    """An organizer's seats: added one by one here or imported from CSV on the event
    (``Import seats``); status and order follow sales and are never edited. Writes go through
    events.seats, so capacity follows the seats as it does in the API."""

    form = SeatAdminForm
    list_display = ["section", "row", "number", "ticket_type_name", "status", "order_link", "event"]
    list_display_links = ["section", "row", "number"]
    list_filter = ["status", "event"]
    list_per_page = 200
    search_fields = ["section", "row", "number", "event__title"]
    list_select_related = ["event", "ticket_type"]
    readonly_fields = ["status", "order"]
    ordering = ["event", "section", "row_key", "number_key"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Seat]:
        qs = super().get_queryset(request).filter(event__deleted_at__isnull=True)
        if not is_platform_admin(request.user):
            qs = qs.filter(event__organizer_id=organizer_profile_id(request.user))
        return qs

    def get_readonly_fields(self, request: HttpRequest, obj: Seat | None = None) -> list[str]:
        return list(self.readonly_fields) if obj is not None else []  # a new seat is available, nobody's

    def get_fields(self, request: HttpRequest, obj: Seat | None = None):
        fields = list(self.form._meta.fields)
        return fields + list(self.readonly_fields) if obj is not None else fields

    @admin.display(description=_("ticket type"), ordering="ticket_type__name")
    def ticket_type_name(self, obj: Seat) -> str:
        return obj.ticket_type.name

    @admin.display(description=_("order"))
    def order_link(self, obj: Seat) -> str:
        if obj.order_id is None:
            return "-"
        link = reverse("admin:orders_order_change", args=[obj.order_id])
        return format_html('<a href="{}">{}</a>', link, str(obj.order_id)[:8])

    def get_list_filter(self, request: HttpRequest):
        return ["status"] if not is_platform_admin(request.user) else self.list_filter

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        return lookup in {"event__id__exact", "status__exact"} or super().lookup_allowed(lookup, value, request)

    def has_change_permission(self, request: HttpRequest, obj: Seat | None = None) -> bool:
        return False if obj is not None else super().has_change_permission(request, obj)

    def has_view_permission(self, request: HttpRequest, obj: Seat | None = None) -> bool:
        return super().has_view_permission(request, obj) and (obj is None or can_manage(request.user, obj.event))

    def has_delete_permission(self, request: HttpRequest, obj: Seat | None = None) -> bool:
        return super().has_delete_permission(request, obj) and (obj is None or can_manage(request.user, obj.event))

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs: Any):
        events = Event.objects.alive().exclude(status=Event.Status.CANCELLED)
        if not is_platform_admin(request.user):
            events = events.filter(organizer_id=organizer_profile_id(request.user))
        if db_field.name == "event":
            kwargs["queryset"] = events
        elif db_field.name == "ticket_type":
            kwargs["queryset"] = TicketType.objects.filter(event__in=events, seated=True).select_related("event")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except (ApplicationError, SeatsInvalid) as exc:
            text = "; ".join(exc.messages) if isinstance(exc, SeatsInvalid) else str(exc.detail)
            self.message_user(request, text, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request: HttpRequest, obj: Seat, form: forms.ModelForm, change: bool) -> None:
        data = form.cleaned_data
        row = {name: data.get(name) for name in ("section", "row", "number", "x", "y")}
        (created,) = seats_create(event=data["event"], rows=[{**row, "ticket_type": data["ticket_type"].pk}])
        _adopt(obj, created)

    def delete_model(self, request: HttpRequest, obj: Seat) -> None:
        seat_delete(seat=obj)

    def delete_view(self, request, object_id, extra_context=None) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except ApplicationError as exc:
            self.message_user(request, str(exc.detail), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:events_seat_changelist"))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Seat]) -> None:
        for seat in queryset:
            try:
                seat_delete(seat=seat)
            except ApplicationError:
                self.message_user(
                    request,
                    gettext("Could not delete “%(seat)s”: it is held or sold.") % {"seat": seat},
                    messages.ERROR,
                )


def import_seats_view(model_admin: admin.ModelAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    """The event's "Import seats" page: a CSV upload through the service ``manage.py import_seats`` uses."""
    event = model_admin.get_object(request, unquote(object_id))  # another organizer's event: None
    if event is None or not model_admin.has_change_permission(request, event):
        raise Http404
    problems: list[str] = []
    form = SeatImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            text = upload.read(20 * 1024 * 1024 + 1).decode("utf-8-sig")
            if len(text) > 20 * 1024 * 1024:
                raise UnicodeError
        except UnicodeError:
            problems = [gettext("The file must be UTF-8 text of at most 20 MB.")]
        else:
            try:
                created = seats_import_csv(event=event, text=text)
            except SeatsInvalid as exc:
                problems = exc.messages
            except ApplicationError as exc:
                problems = [str(exc.detail)]
            else:
                model_admin.message_user(
                    request,
                    ngettext("%(count)d seat was imported.", "%(count)d seats were imported.", len(created))
                    % {"count": len(created)},
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(f"{reverse('admin:events_seat_changelist')}?event__id__exact={event.pk}")
    context = {
        **model_admin.admin_site.each_context(request),
        "title": gettext("Import seats"),
        "event": event,
        "form": form,
        "problems": problems,
        "seat_count": Seat.objects.filter(event=event).count(),
        "opts": model_admin.model._meta,
    }
    return TemplateResponse(request, "admin/events/seat/import.html", context)


from . import discount_admin  # noqa: E402, F401  (registers the discount codes' admin)

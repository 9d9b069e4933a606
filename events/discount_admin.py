"""Discount codes in the organizers' back office, scoped like events (``events.admin``).

An organizer sees and edits the codes of their own events only; another organizer's code answers
as if it did not exist. Writes go through ``events.discounts`` like the API's, so the admin keeps
the same rules (one of percent or amount, the event's own ticket types, ``max_uses`` never below
``uses``, one code per event whatever its case); ``uses`` is read-only (purchases, expiries and
refunds move it). Deleting a code that orders carry keeps it for them, as over the API.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from eventflow.admin_mixins import SafeLookupsMixin
from eventflow.api.errors import ApplicationError
from eventflow.regional import format_money, to_major, to_minor

from . import discounts
from .models import MAX_PRICE_CENTS, DiscountCode, Event, TicketType
from .selectors import can_manage, is_platform_admin, organizer_profile_id


class DiscountCodeAdminForm(forms.ModelForm):
    """The fixed amount in the event's currency (5.00 EUR), stored in minor units."""

    code = forms.RegexField(
        regex=discounts.CODE_PATTERN,
        max_length=discounts.MAX_CODE_LENGTH,
        help_text=_("What buyers type: letters, digits, - and _. Case does not matter."),
    )
    amount_off = forms.DecimalField(
        label=_("Amount off"),
        required=False,
        min_value=0,
        max_digits=12,
        decimal_places=3,
        help_text=_("In the event's currency. Give this or a percentage."),
    )

    class Meta:
        model = DiscountCode
        fields = ["event", "code", "percent_off", "amount_off", "max_uses", "valid_from", "valid_until"]
        fields += ["ticket_types", "active"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.amount_off_cents is not None:
            self.initial["amount_off"] = to_major(self.instance.amount_off_cents, self.instance.event.currency)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        event = cleaned.get("event") or (self.instance.event if self.instance.pk else None)
        amount = cleaned.get("amount_off")
        cleaned["amount_off_cents"] = None
        if amount is not None and event is not None:
            try:
                cleaned["amount_off_cents"] = to_minor(amount, event.currency)
            except forms.ValidationError as exc:
                self.add_error("amount_off", exc)
            else:
                if not 1 <= cleaned["amount_off_cents"] <= MAX_PRICE_CENTS:
                    self.add_error("amount_off", gettext("Enter an amount above zero and within the price limit."))
        self.instance.amount_off_cents = cleaned["amount_off_cents"]  # the model's checks see it too
        if (cleaned.get("percent_off") is None) == (amount is None):
            self.add_error("percent_off", gettext("Give either a percentage or an amount off, not both."))
        types = cleaned.get("ticket_types")
        if event is not None and types is not None and any(tt.event_id != event.pk for tt in types):
            self.add_error("ticket_types", gettext("Choose ticket types of this code's event only."))
        start, end = cleaned.get("valid_from"), cleaned.get("valid_until")
        if start and end and end <= start:
            self.add_error("valid_until", gettext("Must be later than “valid from”."))
        max_uses, text = cleaned.get("max_uses"), cleaned.get("code")
        if self.instance.pk and max_uses is not None:
            uses = DiscountCode.objects.filter(pk=self.instance.pk).values_list("uses", flat=True).first() or 0
            if max_uses < uses:
                self.add_error(
                    "max_uses", gettext("Cannot drop below %(uses)d: the code's current uses.") % {"uses": uses}
                )
        if event is not None and text and discounts._taken(event, text.strip(), self.instance.pk):
            self.add_error("code", str(discounts.DiscountCodeTaken.default_detail))
        return cleaned


@admin.register(DiscountCode)
class DiscountCodeAdmin(SafeLookupsMixin, admin.ModelAdmin):
    form = DiscountCodeAdminForm
    list_display = ["code", "event", "off", "uses_of_max", "valid_from", "valid_until", "active"]
    list_filter = ["active", ("event", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["code", "event__title"]
    list_select_related = ["event"]
    ordering = ["event", "code", "pk"]
    readonly_fields = ["uses", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["event", "code", "active"]}),
        (_("Discount"), {"fields": ["percent_off", "amount_off", "ticket_types"]}),
        (_("Limits"), {"fields": ["max_uses", "uses", "valid_from", "valid_until"]}),
        (_("Record"), {"fields": ["created_at", "updated_at"]}),
    ]
    filter_horizontal = ["ticket_types"]

    # --- Scoping: another organizer's code does not exist --------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[DiscountCode]:
        qs = super().get_queryset(request).filter(deleted_at__isnull=True, event__deleted_at__isnull=True)
        if not is_platform_admin(request.user):
            qs = qs.filter(event__organizer_id=organizer_profile_id(request.user))  # no profile: nothing
        return qs

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs: Any):
        if db_field.name == "event":
            events = Event.objects.alive().exclude(status=Event.Status.CANCELLED)
            if not is_platform_admin(request.user):
                events = events.filter(organizer_id=organizer_profile_id(request.user))
            kwargs["queryset"] = events.order_by("-starts_at", "-pk")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request: HttpRequest, **kwargs: Any):
        if db_field.name == "ticket_types":
            types = TicketType.objects.select_related("event").filter(event__deleted_at__isnull=True)
            if not is_platform_admin(request.user):
                types = types.filter(event__organizer_id=organizer_profile_id(request.user))
            kwargs["queryset"] = types.order_by("event__starts_at", "event_id", "position", "pk")
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: DiscountCode | None = None) -> list[str]:
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            readonly.append("event")  # a code stays with its event
        return readonly

    def has_add_permission(self, request: HttpRequest) -> bool:
        may_own = is_platform_admin(request.user) or organizer_profile_id(request.user) is not None
        return super().has_add_permission(request) and may_own

    def _manages(self, request: HttpRequest, obj: DiscountCode | None) -> bool:
        return obj is None or can_manage(request.user, obj.event)

    def has_view_permission(self, request: HttpRequest, obj: DiscountCode | None = None) -> bool:
        return super().has_view_permission(request, obj) and self._manages(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: DiscountCode | None = None) -> bool:
        if obj is not None and obj.event.status == Event.Status.CANCELLED:
            return False
        return super().has_change_permission(request, obj) and self._manages(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: DiscountCode | None = None) -> bool:
        return super().has_delete_permission(request, obj) and self._manages(request, obj)

    # --- What the organizer reads ------------------------------------------------------------

    @admin.display(description=_("off"))
    def off(self, obj: DiscountCode) -> str:
        if obj.percent_off is not None:
            return f"{obj.percent_off} %"
        return format_money(obj.amount_off_cents or 0, obj.event.currency)

    @admin.display(description=_("uses"), ordering="uses")
    def uses_of_max(self, obj: DiscountCode) -> str:
        return f"{obj.uses} / {obj.max_uses}" if obj.max_uses is not None else f"{obj.uses} / ∞"

    # --- Writes through the services ------------------------------------------------------------

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ApplicationError as exc:  # a refusal the form could not foresee (a purchase took a use meanwhile)
            self.message_user(request, str(exc.detail), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request: HttpRequest, obj: DiscountCode, form: forms.ModelForm, change: bool) -> None:
        data = {name: form.cleaned_data.get(name) for name in discounts.FIELDS}
        data["amount_off_cents"] = form.cleaned_data.get("amount_off_cents")
        types = [tt.pk for tt in form.cleaned_data.get("ticket_types") or []]
        if change:
            obj.event = Event.objects.get(pk=obj.event_id)
            saved = discounts.discount_code_update(discount_code=obj, ticket_types=types, by=request.user, **data)
        else:
            saved = discounts.discount_code_create(
                event=form.cleaned_data["event"], ticket_types=types, by=request.user, **data
            )
        for field in saved._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state.adding = False

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets, change: bool) -> None:
        """The ticket types were set by the service in save_model."""

    def delete_model(self, request: HttpRequest, obj: DiscountCode) -> None:
        discounts.discount_code_delete(discount_code=obj, by=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[DiscountCode]) -> None:
        for code in queryset:
            discounts.discount_code_delete(discount_code=code, by=request.user)

    def get_deleted_objects(self, objs, request: HttpRequest):
        """Only the codes themselves: orders that carry one keep it (it is marked deleted, not removed)."""
        codes = [str(code) for code in objs]
        return codes, {DiscountCode._meta.verbose_name_plural: len(codes)}, set(), []

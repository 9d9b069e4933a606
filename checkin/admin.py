"""Check-in in the back office: the organizer's check-in staff (added by email, removed), and the
check-ins of their events (read-only: only scans write them). Scoped like events: an organizer
sees their own, a platform admin everything."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts.models import OrganizerProfile
from eventflow.admin_mixins import SafeLookupsMixin
from events.selectors import is_platform_admin, organizer_profile_id
from orders.admin import ReadOnlyAdminMixin, ScopedToOrganizerMixin

from . import services
from .models import CheckIn, CheckInStaff


class CheckInStaffAddForm(forms.ModelForm):
    email = forms.EmailField(
        label=_("email"),
        max_length=254,
        help_text=_("An address without an account gets one, and an email with a code to set its password."),
    )

    class Meta:
        model = CheckInStaff
        fields = ["organizer"]

    organizer_for: OrganizerProfile | None = None  # set per request for an organizer (their own profile)

    def clean(self):
        data = super().clean()
        organizer = self.organizer_for or data.get("organizer")
        if organizer is not None and data.get("email"):
            refusal = services.check_in_staff_refusal(organizer=organizer, email=data["email"])
            if refusal:
                self.add_error("email", refusal)
        return data


@admin.register(CheckInStaff)
class CheckInStaffAdmin(admin.ModelAdmin):
    list_display = ["user_email", "organizer", "created_at"]
    list_select_related = ["user", "organizer"]
    search_fields = ["user__email", "user__name"]
    ordering = ["organizer", "created_at", "pk"]
    readonly_fields = ["organizer", "user", "created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[CheckInStaff]:
        qs = super().get_queryset(request)
        if not is_platform_admin(request.user):
            qs = qs.filter(organizer_id=organizer_profile_id(request.user))
        return qs

    def get_form(self, request: HttpRequest, obj: CheckInStaff | None = None, change: bool = False, **kwargs):
        if obj is None:
            form = CheckInStaffAddForm
            if not is_platform_admin(request.user):
                kwargs["fields"] = ["email"]  # their own profile, always
                own = OrganizerProfile.objects.filter(pk=organizer_profile_id(request.user)).first()
                form = type("OwnCheckInStaffAddForm", (CheckInStaffAddForm,), {"organizer_for": own})
            return super().get_form(request, obj, change=change, form=form, **kwargs)
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: CheckInStaff | None = None) -> list[str]:
        if obj is None:
            return ["organizer", "email"] if is_platform_admin(request.user) else ["email"]
        return ["organizer", "user", "created_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: CheckInStaff | None = None) -> list[str]:
        return [] if obj is None else self.readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        may = is_platform_admin(request.user) or organizer_profile_id(request.user) is not None
        return may and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("user"), ordering="user__email")
    def user_email(self, obj: CheckInStaff) -> str:
        return obj.user.email

    def save_model(self, request: HttpRequest, obj: CheckInStaff, form, change: bool) -> None:
        if is_platform_admin(request.user):
            organizer = form.cleaned_data["organizer"]
        else:
            organizer = OrganizerProfile.objects.get(pk=organizer_profile_id(request.user))
        # The form asked check_in_staff_refusal already; the service asks again under its transaction.
        staff, created = services.check_in_staff_add(organizer=organizer, email=form.cleaned_data["email"])
        obj.pk, obj.organizer, obj.user, obj.created_at = staff.pk, staff.organizer, staff.user, staff.created_at
        if not created:
            self.message_user(request, _("They were check-in staff already."), messages.INFO)

    def delete_model(self, request: HttpRequest, obj: CheckInStaff) -> None:
        services.check_in_staff_remove(organizer=obj.organizer, staff_id=obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[CheckInStaff]) -> None:
        for staff in queryset.select_related("organizer"):
            services.check_in_staff_remove(organizer=staff.organizer, staff_id=staff.pk)


@admin.register(CheckIn)
class CheckInAdmin(SafeLookupsMixin, ScopedToOrganizerMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Who got in, when and where: written only by scans (the API), never here."""

    list_display = ["short_code", "event", "ticket_type_name", "holder_email", "scanned_at", "gate", "source"]
    list_filter = [("event", admin.RelatedOnlyFieldListFilter), "source", "gate", "scanned_at"]
    search_fields = ["ticket__code", "ticket__holder__email", "gate"]
    list_select_related = ["event", "ticket__ticket_type", "ticket__holder", "scanned_by"]
    ordering = ["-scanned_at", "-pk"]
    fields = ["ticket", "event", "scanned_at", "gate", "source", "scanned_by", "created_at"]
    readonly_fields = fields

    @admin.display(description=_("ticket"))
    def short_code(self, obj: CheckIn) -> str:
        return f"{obj.ticket.code[:8]}…"

    @admin.display(description=_("ticket type"), ordering="ticket__ticket_type__name")
    def ticket_type_name(self, obj: CheckIn) -> str:
        return obj.ticket.ticket_type.name

    @admin.display(description=_("holder"), ordering="ticket__holder__email")
    def holder_email(self, obj: CheckIn) -> str:
        return obj.ticket.holder.email

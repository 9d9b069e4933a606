from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from rest_framework.exceptions import APIException, Throttled

from eventflow.regional import CURRENCY_CHOICES, TIME_ZONE_CHOICES

from . import privacy, services, twofactor
from .errors import OtpInvalid
from .models import OrganizerProfile, TokenFamily, User, normalize_email


class EmailNormalizingMixin(forms.ModelForm):
    def clean_email(self) -> str:
        email = normalize_email(self.cleaned_data["email"])
        if User.objects.filter(email=email).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(_("A user with this email address already exists."), code="email_taken")
        return email


class UserCreationForm(EmailNormalizingMixin, AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "name")


class UserEditForm(EmailNormalizingMixin, UserChangeForm):
    class Meta:
        model = User
        fields = (
            "email",
            "password",
            "name",
            "role",
            "is_active",
            "is_staff",
            "is_superuser",
            "groups",
            "user_permissions",
        )


class OrganizerProfileInline(admin.StackedInline):
    model = OrganizerProfile
    can_delete = False
    extra = 0


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserEditForm
    add_form = UserCreationForm
    ordering = ["email"]
    list_display = ["email", "name", "role", "is_staff", "is_active", "date_joined"]
    list_filter = ["role", "is_staff", "is_superuser", "is_active"]
    search_fields = ["email", "name"]
    readonly_fields = ["last_login", "date_joined"]
    inlines = [OrganizerProfileInline]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Profile"), {"fields": ("name", "role")}),
        (_("Permissions"), {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        (_("Dates"), {"fields": ("last_login", "date_joined", "email_verified_at")}),  # 13B: verified at
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "name", "password1", "password2")}),)
    actions = ["export_personal_data"]

    # --- Data requests (issue 13C) ---

    def has_export_personal_data_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser  # a whole person's history: platform admins only

    @admin.action(description=_("Export personal data (data request)"), permissions=["export_personal_data"])
    def export_personal_data(self, request: HttpRequest, queryset: QuerySet[User]) -> HttpResponse | None:
        """Download the same JSON as the user's own GET /users/me/export, for a data request made to staff."""
        users = list(queryset[:2])
        if len(users) != 1:
            self.message_user(request, _("Select exactly one user: an export holds one person's data."), messages.ERROR)
            return None
        user = users[0]
        response = HttpResponse(privacy.personal_data_json(user=user), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="{privacy.export_filename(user)}"'
        response["Cache-Control"] = "no-store"
        self.log_change(request, user, _("Exported personal data (data request)."))  # who, when: the history
        return response


class OrganizerProfileForm(forms.ModelForm):
    timezone = forms.ChoiceField(label=_("Time zone"), choices=TIME_ZONE_CHOICES)
    currency = forms.ChoiceField(label=_("Currency"), choices=CURRENCY_CHOICES)

    class Meta:
        model = OrganizerProfile
        fields = ["user", "display_name", "slug", "contact_email", "timezone", "currency"]


@admin.register(OrganizerProfile)
class OrganizerProfileAdmin(admin.ModelAdmin):
    """Platform admins see every profile; an organizer sees and edits only their own (the defaults
    of their new events live here), and can never hand it to another user."""

    form = OrganizerProfileForm
    list_display = ["display_name", "slug", "user", "contact_email", "timezone", "currency", "created_at"]
    search_fields = ["display_name", "slug", "user__email", "contact_email"]
    prepopulated_fields = {"slug": ["display_name"]}
    raw_id_fields = ["user"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[OrganizerProfile]:
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.filter(user=request.user)

    def get_readonly_fields(self, request: HttpRequest, obj: OrganizerProfile | None = None) -> list[str]:
        return [] if request.user.is_superuser else ["user"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser  # organizers are made through POST /organizers/me

    def has_delete_permission(self, request: HttpRequest, obj: OrganizerProfile | None = None) -> bool:
        return request.user.is_superuser and super().has_delete_permission(request, obj)


@admin.register(TokenFamily)
class TokenFamilyAdmin(admin.ModelAdmin):
    """Signed-in sessions: read-only, with one action to end them (a lost phone, a data request)."""

    list_display = ["user", "user_agent", "created_at", "last_used_at", "expires_at", "ended_at", "end_reason"]
    list_filter = ["end_reason", "created_at"]
    search_fields = ["user__email"]
    list_select_related = ["user"]
    readonly_fields = [field.name for field in TokenFamily._meta.fields if field.name != "current_jti"]
    exclude = ["current_jti"]
    actions = ["end_sessions"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description=_("End selected sessions"), permissions=["delete"])
    def end_sessions(self, request, queryset) -> None:
        ended = services.sessions_revoke(family_ids=list(queryset.values_list("pk", flat=True)))
        message = ngettext("%(count)d session ended.", "%(count)d sessions ended.", ended) % {"count": ended}
        self.message_user(request, message, messages.SUCCESS)


# --- Two-factor authentication and data requests (13A) ---------------------------------------


class TwoFactorAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin login, with the 2FA code for accounts that have it on.

    The code field is always shown (the form cannot know the account before the password is
    checked) and required only when the account has 2FA on. A wrong code is a failed login for
    django-axes and counts toward the 2FA limits, as in the API. With ORGANIZERS_REQUIRE_2FA an
    organizer without 2FA is turned away, pointed at the API endpoints that set it up.
    """

    otp = forms.CharField(
        label=_("Two-factor code"),
        required=False,
        max_length=32,
        strip=True,
        help_text=_("Only if your account has two-factor authentication on: the code from your app."),
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code"}),  # letters too: recovery codes
    )

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "otp_required": _("Enter the code from your authenticator app (or a recovery code)."),
        "otp_invalid": _("This two-factor code is wrong, expired or already used."),
        "2fa_required": _(
            "Organizers must turn on two-factor authentication before using the back office: "
            "POST /api/v1/auth/2fa/setup, then POST /api/v1/auth/2fa/enable with a code from your app."
        ),
    }

    def clean(self):
        cleaned = super().clean()  # the password (django-axes counts it), then is_active and is_staff
        user = self.get_user()
        if user is None:
            return cleaned
        otp = cleaned.get("otp") or ""
        if twofactor.is_enabled(user):
            if not otp:
                raise forms.ValidationError(self.error_messages["otp_required"], code="otp_required")
            try:
                twofactor.login_second_factor(request=self.request, user=user, otp=otp)
            except Throttled as exc:
                raise forms.ValidationError(str(exc.detail), code="throttled") from exc
            except OtpInvalid as exc:
                raise forms.ValidationError(self.error_messages["otp_invalid"], code="otp_invalid") from exc
        elif _organizer_blocked(user):
            raise forms.ValidationError(self.error_messages["2fa_required"], code="2fa_required")
        return cleaned


def _organizer_blocked(user) -> bool:
    """An organizer (not a platform admin) kept out of the back office until they turn 2FA on."""
    if not (user and user.is_authenticated) or user.is_superuser:
        return False
    if not OrganizerProfile.objects.filter(user=user).exists():
        return False
    return twofactor.organizer_needs_two_factor(user)


admin.site.login_form = TwoFactorAdminAuthenticationForm
admin.site.login_template = "accounts/admin_login.html"

_site_has_permission = admin.site.has_permission


def _has_permission(request: HttpRequest) -> bool:
    # Also a back-office session from before ORGANIZERS_REQUIRE_2FA was set ends at the login page
    # (the organizer-scoped admin code would otherwise meet 2fa_required). The default site is
    # kept rather than swapped for a subclass, which would mean editing INSTALLED_APPS.
    return _site_has_permission(request) and not _organizer_blocked(request.user)


admin.site.has_permission = _has_permission


@admin.action(description=_("Delete personal data (data request)"), permissions=["delete"])
def delete_personal_data(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[User]
) -> TemplateResponse | None:
    """The same anonymisation as DELETE /users/me: orders kept, future tickets void and refunded
    where the policy allows, sessions ended. Each account in its own transaction.

    Like Django's "Delete selected", it first shows what will happen to which accounts; only the
    confirmation page's button (``post=yes``, the same selection) deletes anything."""
    if request.POST.get("post") != "yes":
        return _delete_personal_data_confirmation(modeladmin, request, queryset)
    done = 0
    for user in queryset.order_by("pk"):
        if user.pk == request.user.pk:
            modeladmin.message_user(request, _("You cannot delete your own account here."), messages.ERROR)
            continue
        try:
            privacy.account_anonymise(user=user, acting_user=request.user)
        except APIException as exc:  # e.g. 503 busy: an order could not be locked now
            modeladmin.message_user(request, f"{user}: {exc.detail}", messages.ERROR)
            continue
        done += 1
    if done:
        message = ngettext(
            "Personal data of %(count)d account deleted.", "Personal data of %(count)d accounts deleted.", done
        ) % {"count": done}
        modeladmin.message_user(request, message, messages.SUCCESS)


def _delete_personal_data_confirmation(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[User]
) -> TemplateResponse:
    opts = modeladmin.model._meta
    accounts = [
        {"user": user, "own": user.pk == request.user.pk, "anonymised": privacy.is_anonymised(user)}
        for user in queryset.order_by("email", "pk")
    ]
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": _("Delete personal data (data request)"),
        "subtitle": None,
        "opts": opts,
        "accounts": accounts,
        "action_name": "delete_personal_data",
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": modeladmin.media,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, "admin/accounts/user/delete_personal_data_confirmation.html", context)


@admin.action(description=_("Turn off two-factor authentication (lost phone and codes)"), permissions=["change"])
def turn_off_two_factor(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[User]) -> None:
    """For an owner who lost both the phone and the recovery codes, once staff have checked who they
    are: the authenticator and codes are deleted and every session ends (whoever holds one now)."""
    done = 0
    for user in queryset.order_by("pk"):
        if twofactor.two_factor_reset(user=user, acting_user=request.user):
            done += 1
    message = ngettext(
        "Two-factor authentication turned off for %(count)d account.",
        "Two-factor authentication turned off for %(count)d accounts.",
        done,
    ) % {"count": done}
    modeladmin.message_user(request, message, messages.SUCCESS)


UserAdmin.actions = [*(UserAdmin.actions or []), delete_personal_data, turn_off_two_factor]

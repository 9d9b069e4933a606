from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from eventflow.regional import CURRENCY_CHOICES, TIME_ZONE_CHOICES

from . import privacy, services
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
        (_("Dates"), {"fields": ("last_login", "date_joined")}),
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

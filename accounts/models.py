from __future__ import annotations

import uuid
from functools import partial

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models, transaction
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from eventflow.regional import validate_currency, validate_time_zone


def normalize_email(email: str) -> str:
    """Emails are the login and compare case-insensitively: store them lower-cased."""
    return (email or "").strip().lower()


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def get_by_natural_key(self, email: str) -> User:
        return self.get(email=normalize_email(email))

    def create_user(self, email: str, password: str | None = None, **fields) -> User:
        if not email:
            raise ValueError("Users must have an email address.")
        user = self.model(email=normalize_email(email), **fields)
        user.set_password(password)
        user.full_clean(exclude=["password"], validate_unique=False)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields) -> User:
        fields.update(is_staff=True, is_superuser=True, role=User.Role.ADMIN)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """An EventFlow account. The email address is the login."""

    class Role(models.TextChoices):
        ATTENDEE = "attendee", _("Attendee")
        ORGANIZER = "organizer", _("Organizer")
        ADMIN = "admin", _("Admin")

    email = models.EmailField(_("email address"), max_length=254, unique=True)
    name = models.CharField(_("name"), max_length=150, blank=True)
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.ATTENDEE)
    is_active = models.BooleanField(_("active"), default=True)
    is_staff = models.BooleanField(
        _("staff status"), default=False, help_text=_("Whether the user can log into the admin site.")
    )
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)
    email_verified_at = models.DateTimeField(
        _("email verified at"),
        null=True,
        blank=True,
        help_text=_("When the owner proved they read this address (a code emailed to it); empty: not yet."),
    )

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["name"]

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            # The unique index on email is case-insensitive because every email
            # is stored lower-cased; the database refuses anything else.
            models.CheckConstraint(condition=models.Q(email=Lower("email")), name="user_email_lowercase"),
        ]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        self.email = normalize_email(self.email)

    _was_inactive = False  # as loaded; an account saved active again clears its deactivation marker
    _keep_session = None  # a TokenFamily id a password change leaves alive (accounts.passwords.password_change)

    @classmethod
    def from_db(cls, db, field_names, values):
        user = super().from_db(db, field_names, values)
        user._was_inactive = user.__dict__.get("is_active") is False
        return user

    def refresh_from_db(self, using=None, fields=None, from_queryset=None) -> None:
        # A user built from an access token (eventflow.api.authentication) has every field but its
        # id deferred: the first field used loads all of them in one read, not one read per field.
        deferred = self.get_deferred_fields()
        if fields is not None and deferred and set(fields) <= deferred:
            fields = deferred
        super().refresh_from_db(using=using, fields=fields, from_queryset=from_queryset)

    def save(self, *args, **kwargs) -> None:
        # set_password() leaves the new raw password in _password until the save; a hash
        # upgrade at login (check_password's setter) clears it first, so only real changes count.
        password_changed = self._password is not None and not self._state.adding
        super().save(*args, **kwargs)
        # The session that changed its own password (POST /auth/password/change) stays signed in.
        keep_session, self._keep_session = self._keep_session, None
        if password_changed:
            # Whoever changes a password (the admin, `manage.py changepassword`, a shell, a
            # reset) ends every session: a stolen refresh token dies with the old password.
            families = TokenFamily.objects.exclude(pk=keep_session) if keep_session else TokenFamily.objects
            families.end_all(user=self, reason=TokenFamily.EndReason.PASSWORD_CHANGED)
        # Access tokens are checked without this row (eventflow.api.authentication): tell them, once
        # the change has committed (a save that rolls back must not void an active account's tokens).
        from . import revocation

        if not self.is_active:
            transaction.on_commit(partial(revocation.void_tokens, self.pk, every=True))
        elif password_changed:
            transaction.on_commit(partial(revocation.void_tokens, self.pk, keep_family=keep_session))
        elif self._was_inactive:
            transaction.on_commit(partial(revocation.account_reactivated, self.pk))
        self._was_inactive = not self.is_active


class TokenFamilyQuerySet(models.QuerySet):
    def end_all(self, *, user: User, reason: str) -> int:
        return self.filter(user=user, ended_at__isnull=True).update(ended_at=timezone.now(), end_reason=reason)


class TokenFamily(models.Model):
    """A signed-in session: the chain of refresh tokens that one login started.

    Refresh tokens rotate; each carries its family's id (claim ``fam``), and
    only the newest (``current_jti``) may be used. Presenting an older one
    means it was copied: the whole family ends, the thief's and the owner's
    tokens alike. Logout, a password change or its owner ends a family too.
    """

    class EndReason(models.TextChoices):
        LOGOUT = "logout", _("Signed out")
        REUSE = "reuse", _("An already used refresh token was presented again")
        PASSWORD_CHANGED = "password_changed", _("The password changed")
        REVOKED = "revoked", _("Ended by its owner or staff")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="token_families")
    current_jti = models.CharField(max_length=64, help_text=_("The only refresh token of the family still usable."))
    user_agent = models.CharField(_("user agent"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("signed in at"), default=timezone.now)
    last_used_at = models.DateTimeField(_("last used at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"), help_text=_("When the newest refresh token expires."))
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    end_reason = models.CharField(_("end reason"), max_length=20, choices=EndReason.choices, blank=True)

    objects = TokenFamilyQuerySet.as_manager()

    class Meta:
        verbose_name = _("session")
        verbose_name_plural = _("sessions")
        ordering = ["-last_used_at"]
        indexes = [
            models.Index(fields=["user"], condition=models.Q(ended_at__isnull=True), name="token_family_user_live"),
            models.Index(fields=["expires_at"], name="token_family_expires_at"),
        ]

    def __str__(self) -> str:
        return f"{self.user} since {self.created_at:%Y-%m-%d %H:%M}"


class OrganizerProfile(models.Model):
    """The public face of an organizer; events belong to a profile."""

    user = models.OneToOneField(User, on_delete=models.PROTECT, related_name="organizer_profile")
    display_name = models.CharField(_("display name"), max_length=120)
    slug = models.SlugField(_("slug"), max_length=80, unique=True)
    contact_email = models.EmailField(_("contact email"))
    timezone = models.CharField(
        _("time zone"),
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text=_("New events start in this time zone unless another is chosen."),
    )
    currency = models.CharField(
        _("currency"),
        max_length=3,
        default="EUR",
        validators=[validate_currency],
        help_text=_("New events sell in this currency unless another is chosen."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("organizer profile")
        verbose_name_plural = _("organizer profiles")
        ordering = ["display_name"]

    def __str__(self) -> str:
        return self.display_name


class EmailCode(models.Model):
    """A one-time code emailed to an account: to set its password, or to prove it reads its address.

    Only a keyed hash of the code is stored (``accounts.codes``): somebody reading the database
    cannot use a code. Only the newest code of a user and purpose counts (a new one supersedes
    the older ones); it works once, until ``expires_at``, and not after ``MAX_ATTEMPTS`` wrong tries.
    """

    class Purpose(models.TextChoices):
        PASSWORD = "password", _("Set a password (reset or invitation)")
        VERIFY_EMAIL = "verify_email", _("Verify the email address")

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="email_codes")
    purpose = models.CharField(_("purpose"), max_length=16, choices=Purpose.choices)
    code_hash = models.CharField(_("code hash"), max_length=64)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"))
    attempts = models.PositiveSmallIntegerField(_("wrong attempts"), default=0)
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)

    class Meta:
        verbose_name = _("emailed code")
        verbose_name_plural = _("emailed codes")
        indexes = [models.Index(fields=["user", "purpose", "-created_at"], name="email_code_newest")]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} for {self.user_id} at {self.created_at:%Y-%m-%d %H:%M}"


# --- Two-factor authentication (accounts.twofactor) ----------------------------------------


class TwoFactor(models.Model):
    """A user's TOTP authenticator: pending after setup, on once ``confirmed_at`` is set.

    The secret is stored encrypted (accounts.twofactor: a key derived from SECRET_KEY), so a
    copy of the database alone cannot mint codes. ``last_step`` is the TOTP time step of the
    newest code accepted: a code is good once, and only codes of later steps are taken after it.
    """

    user = models.OneToOneField(User, on_delete=models.CASCADE, primary_key=True, related_name="two_factor")
    secret_encrypted = models.TextField(editable=False)
    confirmed_at = models.DateTimeField(_("enabled at"), null=True, blank=True)
    last_step = models.BigIntegerField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("two-factor authenticator")
        verbose_name_plural = _("two-factor authenticators")

    def __str__(self) -> str:
        return f"{self.user} ({'on' if self.confirmed_at else 'pending'})"


class RecoveryCode(models.Model):
    """One single-use recovery code, stored as an HMAC (the code itself is shown once)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="recovery_codes")
    digest = models.CharField(max_length=64, editable=False)
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("recovery code")
        verbose_name_plural = _("recovery codes")
        constraints = [models.UniqueConstraint(fields=["user", "digest"], name="recovery_code_user_digest")]

    def __str__(self) -> str:
        return f"{self.user} recovery code ({'used' if self.used_at else 'unused'})"

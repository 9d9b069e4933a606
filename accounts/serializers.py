"""Input and output serializers for accounts; no logic in create()/update()."""

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from eventflow.api.serializers import StrictInputSerializer
from eventflow.regional import validate_currency, validate_time_zone

from .models import OrganizerProfile, TokenFamily, User, normalize_email


class OrganizerProfileOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrganizerProfile
        fields = ["id", "display_name", "slug", "contact_email", "timezone", "currency", "created_at", "updated_at"]
        read_only_fields = fields


class UserOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "email", "name", "role", "date_joined", "email_verified"]
        read_only_fields = fields

    email_verified = serializers.SerializerMethodField(help_text="Whether the owner verified this address.")

    def get_email_verified(self, user: User) -> bool:
        return user.email_verified_at is not None


class RegisterInputSerializer(StrictInputSerializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(write_only=True, trim_whitespace=False, max_length=128)
    name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")

    def validate(self, attrs):
        # Django's password validators, with the would-be user so that a
        # password resembling the email or name is refused too.
        candidate = User(email=normalize_email(attrs["email"]), name=attrs.get("name", ""))
        try:
            password_validation.validate_password(attrs["password"], user=candidate)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": list(exc.messages)}) from exc
        return attrs


class LoginInputSerializer(StrictInputSerializer):
    email = serializers.CharField(max_length=254)
    password = serializers.CharField(trim_whitespace=False, max_length=128)
    otp = serializers.CharField(
        max_length=32,
        required=False,
        allow_blank=True,
        help_text="With 2FA on: the code from the authenticator app, or one of the recovery codes.",
    )


class RefreshInputSerializer(StrictInputSerializer):
    refresh = serializers.CharField(
        required=False,
        help_text="The refresh token. A browser holding it in the refresh cookie (`AUTH_REFRESH_COOKIE`) "
        "leaves it out and sends the `X-CSRFToken` header instead.",
    )


class TokenPairOutputSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField(
        required=False,
        help_text="Left out when the refresh token is set as the HttpOnly refresh cookie (a browser, with "
        "`AUTH_REFRESH_COOKIE` on).",
    )


class RegisterOutputSerializer(TokenPairOutputSerializer):
    user = UserOutputSerializer()


class UserUpdateInputSerializer(StrictInputSerializer):
    name = serializers.CharField(max_length=150, required=False, allow_blank=True)


class OrganizerProfileCreateInputSerializer(StrictInputSerializer):
    display_name = serializers.CharField(max_length=120)
    slug = serializers.SlugField(max_length=80, required=False)
    contact_email = serializers.EmailField(required=False)
    timezone = serializers.CharField(
        max_length=64, required=False, validators=[validate_time_zone], help_text="Default for new events (IANA)."
    )
    currency = serializers.CharField(
        max_length=3, required=False, validators=[validate_currency], help_text="Default for new events (ISO 4217)."
    )


class OrganizerProfileUpdateInputSerializer(OrganizerProfileCreateInputSerializer):
    display_name = serializers.CharField(max_length=120, required=False)


class PasswordResetInputSerializer(StrictInputSerializer):
    email = serializers.EmailField(max_length=254)


class PasswordResetConfirmInputSerializer(StrictInputSerializer):
    email = serializers.EmailField(max_length=254)
    code = serializers.CharField(max_length=100)
    new_password = serializers.CharField(write_only=True, trim_whitespace=False, max_length=128)


# --- Issue 13B: password change, sessions, email verification ---------------------------------


class PasswordChangeInputSerializer(StrictInputSerializer):
    old_password = serializers.CharField(write_only=True, trim_whitespace=False, max_length=128)
    new_password = serializers.CharField(write_only=True, trim_whitespace=False, max_length=128)


class SessionOutputSerializer(serializers.ModelSerializer):
    current = serializers.SerializerMethodField(help_text="Whether this is the session of the calling token.")

    class Meta:
        model = TokenFamily
        fields = ["id", "user_agent", "created_at", "last_used_at", "expires_at", "current"]
        read_only_fields = fields

    def get_current(self, family: TokenFamily) -> bool:
        return str(family.pk) == self.context.get("current_session")


class EmailVerifyInputSerializer(StrictInputSerializer):
    email = serializers.EmailField(max_length=254)
    code = serializers.CharField(max_length=100)


class EmailVerifyResendInputSerializer(StrictInputSerializer):
    email = serializers.EmailField(
        max_length=254, required=False, help_text="Whose code to resend; the caller's own when signed in and omitted."
    )


# --- Two-factor authentication and account deletion (13A) ----------------------------------


class OtpInputSerializer(StrictInputSerializer):
    otp = serializers.CharField(max_length=32, help_text="A code from the authenticator app.")


class TwoFactorSetupOutputSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="Base32 TOTP secret, for apps that cannot scan the QR code.")
    otpauth_uri = serializers.CharField()
    qr_code = serializers.CharField(help_text="The otpauth URI as a QR code: an SVG `data:` URI for an <img>.")
    recovery_codes = serializers.ListField(
        child=serializers.CharField(),
        help_text="Ten single-use codes that stand in for `otp` when the phone is lost. Shown only now; "
        "they work once 2FA is enabled.",
    )


class RecoveryCodesOutputSerializer(serializers.Serializer):
    recovery_codes = serializers.ListField(child=serializers.CharField())


class UserDeleteInputSerializer(StrictInputSerializer):
    password = serializers.CharField(trim_whitespace=False, max_length=128)
    otp = serializers.CharField(
        max_length=32, required=False, allow_blank=True, help_text="Required when 2FA is on (or a recovery code)."
    )


# --- Browser clients (issue 13C) ---


class CsrfTokenOutputSerializer(serializers.Serializer):
    csrf_token = serializers.CharField(help_text="Send it back as the `X-CSRFToken` header.")

from django.urls import path

from . import apis, privacy_apis

urlpatterns = [
    path("auth/register", apis.RegisterApi.as_view(), name="auth-register"),
    path("auth/login", apis.LoginApi.as_view(), name="auth-login"),
    path("auth/refresh", apis.RefreshApi.as_view(), name="auth-refresh"),
    path("auth/logout", apis.LogoutApi.as_view(), name="auth-logout"),
    path("auth/password/reset", apis.PasswordResetApi.as_view(), name="auth-password-reset"),
    path("auth/password/reset/confirm", apis.PasswordResetConfirmApi.as_view(), name="auth-password-reset-confirm"),
    path("users/me", apis.MeApi.as_view(), name="users-me"),
    # Issue 13B: password change, sessions, email verification
    path("auth/password/change", apis.PasswordChangeApi.as_view(), name="auth-password-change"),
    path("auth/email/verify", apis.EmailVerifyApi.as_view(), name="auth-email-verify"),
    path("auth/email/verify/resend", apis.EmailVerifyResendApi.as_view(), name="auth-email-verify-resend"),
    path("users/me/sessions", apis.MySessionsApi.as_view(), name="users-me-sessions"),
    path("users/me/sessions/<uuid:session_id>", apis.MySessionApi.as_view(), name="users-me-session"),
    # Two-factor authentication (13A)
    path("auth/2fa/setup", apis.TwoFactorSetupApi.as_view(), name="auth-2fa-setup"),
    path("auth/2fa/enable", apis.TwoFactorEnableApi.as_view(), name="auth-2fa-enable"),
    path("auth/2fa/disable", apis.TwoFactorDisableApi.as_view(), name="auth-2fa-disable"),
    path("auth/2fa/recovery-codes", apis.RecoveryCodesApi.as_view(), name="auth-2fa-recovery-codes"),
    # Browser clients and personal data (issue 13C)
    path("auth/csrf", apis.CsrfTokenApi.as_view(), name="auth-csrf"),
    path("users/me/export", privacy_apis.PersonalDataExportApi.as_view(), name="users-me-export"),
    path("organizers/me", apis.OrganizerMeApi.as_view(), name="organizers-me"),
]

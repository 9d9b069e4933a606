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
    # Browser clients and personal data (issue 13C)
    path("auth/csrf", apis.CsrfTokenApi.as_view(), name="auth-csrf"),
    path("users/me/export", privacy_apis.PersonalDataExportApi.as_view(), name="users-me-export"),
    path("organizers/me", apis.OrganizerMeApi.as_view(), name="organizers-me"),
]

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_migrate

        from .models import User

        post_migrate.connect(_sync_organizers_group, dispatch_uid="accounts.organizers_group")
        post_delete.connect(_void_tokens_of_deleted_user, sender=User, dispatch_uid="accounts.void_deleted")
        from . import browser  # noqa: F401  (registers the refresh cookie's deploy check)


def _sync_organizers_group(**kwargs) -> None:
    """After a migrate, the Organizers group holds what ORGANIZER_PERMISSIONS lists (idempotent), so
    existing organizers get the permissions a new release adds. post_migrate runs once per app, and
    the permissions of each app appear in its own run: act once they all exist."""
    from django.contrib.auth.models import Permission
    from django.db.models import Q

    from .services import ORGANIZER_PERMISSIONS, organizers_group

    wanted = Q(pk__in=[])
    for app_label, codenames in ORGANIZER_PERMISSIONS.items():
        wanted |= Q(content_type__app_label=app_label, codename__in=codenames)
    if Permission.objects.filter(wanted).count() == sum(len(c) for c in ORGANIZER_PERMISSIONS.values()):
        organizers_group()


def _void_tokens_of_deleted_user(sender, instance, **kwargs) -> None:
    from functools import partial

    from django.db import transaction

    from .revocation import void_tokens

    # Its access tokens are checked without reading its (now missing) row; once the delete commits.
    transaction.on_commit(partial(void_tokens, instance.pk, every=True))

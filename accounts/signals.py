"""The accounts app's domain signals, for the apps that build on it."""

from django.dispatch import Signal

# Sent inside the transaction that anonymises an account (accounts.privacy.account_anonymise), with
# ``user_id``, ``old_email`` and ``new_email``: an app that copied the person's details somewhere
# (webhook payloads) forgets them in the same transaction. Receivers may raise: the deletion then
# rolls back and can be tried again.
account_anonymised = Signal()

"""Check-in at the door: who may scan an organizer's tickets, and each ticket's one admission."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import OrganizerProfile
from events.models import Event
from orders.models import Ticket

GATE_MAX_LENGTH = 64


class CheckInStaff(models.Model):
    """A user the organizer lets scan tickets of all its events (the ``checkin`` role, scoped to one
    organizer). Nothing else: staff cannot change events or see sales."""

    organizer = models.ForeignKey(OrganizerProfile, on_delete=models.CASCADE, related_name="check_in_staff")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="check_in_roles")
    created_at = models.DateTimeField(_("added at"), auto_now_add=True)

    class Meta:
        verbose_name = _("check-in staff member")
        verbose_name_plural = _("check-in staff")
        ordering = ["organizer", "created_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["organizer", "user"], name="check_in_staff_once")]
        indexes = [models.Index(fields=["user"], name="check_in_staff_user")]

    def __str__(self) -> str:
        return f"{self.user} scans for {self.organizer}"


class CheckIn(models.Model):
    """A ticket's admission: one per ticket (the unique ticket column), so two scanners cannot both
    admit it. ``scanned_at`` is when the scan happened (for an offline scan, the device's time);
    the earliest scan of a ticket is the one kept (``checkin.services``)."""

    class Source(models.TextChoices):
        ONLINE = "online", _("Online")
        OFFLINE = "offline", _("Offline (uploaded later)")

    ticket = models.OneToOneField(Ticket, on_delete=models.PROTECT, related_name="check_in")
    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="check_ins")
    scanned_at = models.DateTimeField(_("scanned at"))
    gate = models.CharField(_("gate"), max_length=GATE_MAX_LENGTH, blank=True, default="")
    scanned_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    source = models.CharField(_("source"), max_length=8, choices=Source.choices, default=Source.ONLINE)
    created_at = models.DateTimeField(_("recorded at"), auto_now_add=True)
    # Moved when an earlier offline scan replaces this one: the door list's version follows it.
    updated_at = models.DateTimeField(_("last changed"), auto_now=True)

    class Meta:
        verbose_name = _("check-in")
        verbose_name_plural = _("check-ins")
        ordering = ["-scanned_at", "-pk"]
        indexes = [models.Index(fields=["event", "-scanned_at"], name="check_in_event_scanned")]

    def __str__(self) -> str:
        return f"Ticket {self.ticket_id} at {self.scanned_at:%Y-%m-%d %H:%M}"

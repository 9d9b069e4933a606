"""Errors the catalogue services raise; each has a stable code."""

from django.utils.translation import gettext_lazy as _
from rest_framework import status

from eventflow.api.errors import ApplicationError, Conflict


class NotAnOrganizer(ApplicationError):
    status_code = status.HTTP_403_FORBIDDEN
    default_code = "not_organizer"
    default_detail = _("Only organizers can do this. POST /api/v1/organizers/me to become one.")


class NoTicketTypes(Conflict):
    default_code = "no_ticket_types"
    default_detail = _("Add at least one ticket type before publishing the event.")


class InvalidStatusTransition(Conflict):
    default_code = "invalid_status_transition"
    default_detail = _("The event cannot move to that status from its current one.")


class EventEnded(Conflict):
    default_code = "event_ended"
    default_detail = _("The event has already ended.")


class EventHasOrders(Conflict):
    default_code = "event_has_orders"
    default_detail = _("Tickets of this event have been sold or are held; it cannot be deleted.")


class EventStarted(Conflict):
    default_code = "event_started"
    default_detail = _("The event has already started; it can no longer be published.")


class EventCancelled(Conflict):
    default_code = "event_cancelled"
    default_detail = _("The event is cancelled and can no longer be changed.")


class CapacityBelowSold(Conflict):
    default_code = "capacity_below_sold"
    default_detail = _("Capacity cannot drop below the tickets already sold or held.")


class TicketTypeHasOrders(Conflict):
    default_code = "ticket_type_has_orders"
    default_detail = _("Tickets of this type have been sold or are held; it cannot be deleted.")


class LastTicketType(Conflict):
    default_code = "last_ticket_type"
    default_detail = _("A published event needs at least one ticket type.")


class SlugTaken(ApplicationError):
    default_code = "slug_taken"
    default_detail = _("You already have an event with this slug.")

    def __init__(self) -> None:
        super().__init__(field="slug")


class ImageTooLarge(ApplicationError):
    default_code = "file_too_large"
    default_detail = _("The image is larger than the size limit.")

    def __init__(self, limit_bytes: int) -> None:
        detail = _("The image is larger than %(mb)s MB.") % {"mb": round(limit_bytes / 1_048_576, 1)}
        super().__init__(detail, field="image", extra={"max_bytes": limit_bytes})


class ImageTooManyPixels(ApplicationError):
    default_code = "image_too_large"
    default_detail = _("The image has more pixels than the limit.")

    def __init__(self, limit_pixels: int) -> None:
        detail = _("The image has more than %(mp)s megapixels.") % {"mp": round(limit_pixels / 1_000_000, 1)}
        super().__init__(detail, field="image", extra={"max_pixels": limit_pixels})

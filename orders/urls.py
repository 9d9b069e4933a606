from django.urls import path, re_path, register_converter
from rest_framework.routers import SimpleRouter

from eventflow.converters import UUIDConverter

from . import apis

register_converter(UUIDConverter, "anyuuid")
router = SimpleRouter(trailing_slash=False, use_regex_path=False)
router.register("orders", apis.OrderViewSet, basename="order")

urlpatterns = [
    *router.urls,
    # At most 18 digits: more ids than will ever be issued, and never a number the bigint key refuses.
    re_path(r"^tickets/(?P<ticket_id>[0-9]{1,18})/qr\.svg$", apis.TicketQrApi.as_view(), name="ticket-qr"),
    path("users/me/tickets", apis.MyTicketsApi.as_view(), name="users-me-tickets"),
    path("events/<int:event_id>/sales", apis.EventSalesApi.as_view(), name="event-sales"),
    path("events/<int:event_id>/attendees", apis.EventAttendeesApi.as_view(), name="event-attendees"),
    path("admin/orders", apis.StaffOrdersApi.as_view(), name="staff-orders"),
    path("admin/stats", apis.StaffStatsApi.as_view(), name="staff-stats"),
]

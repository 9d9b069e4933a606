from django.urls import path, re_path, register_converter
from rest_framework.routers import SimpleRouter

from eventflow.converters import UUIDConverter

from . import apis, queue_apis, waitlist_apis
from .payments import apis as payment_apis

register_converter(UUIDConverter, "anyuuid")
router = SimpleRouter(trailing_slash=False, use_regex_path=False)
router.register("orders", apis.OrderViewSet, basename="order")

urlpatterns = [
    path("orders/queue/<anyuuid:request_id>", queue_apis.PurchaseRequestApi.as_view(), name="purchase-request-detail"),
    *router.urls,
    # At most 18 digits: more ids than will ever be issued, and never a number the bigint key refuses.
    re_path(r"^tickets/(?P<ticket_id>[0-9]{1,18})/qr\.svg$", apis.TicketQrApi.as_view(), name="ticket-qr"),
    re_path(r"^tickets/(?P<ticket_id>[0-9]{1,18})/transfer$", apis.TicketTransferApi.as_view(), name="ticket-transfer"),
    path("users/me/tickets", apis.MyTicketsApi.as_view(), name="users-me-tickets"),
    path("users/me/events", apis.MyEventsApi.as_view(), name="users-me-events"),
    path("events/<int:event_id>/sales", apis.EventSalesApi.as_view(), name="event-sales"),
    path("events/<int:event_id>/attendees", apis.EventAttendeesApi.as_view(), name="event-attendees"),
    # The waiting list (orders/waitlist.py); ids of at most 18 digits, as for tickets.
    re_path(
        r"^events/(?P<event_id>[0-9]{1,18})/waitlist$",
        waitlist_apis.EventWaitlistJoinApi.as_view(),
        name="event-waitlist",
    ),
    re_path(
        r"^events/(?P<event_id>[0-9]{1,18})/waitlist-entries$",
        waitlist_apis.EventWaitlistEntriesApi.as_view(),
        name="event-waitlist-entries",
    ),
    re_path(
        r"^events/(?P<event_id>[0-9]{1,18})/waitlist-entries/(?P<entry_id>[0-9]{1,18})$",
        waitlist_apis.EventWaitlistEntryApi.as_view(),
        name="event-waitlist-entry",
    ),
    path("waitlist", waitlist_apis.MyWaitlistApi.as_view(), name="waitlist"),
    re_path(r"^waitlist/(?P<entry_id>[0-9]{1,18})$", waitlist_apis.MyWaitlistEntryApi.as_view(), name="waitlist-entry"),
    path("admin/orders", apis.StaffOrdersApi.as_view(), name="staff-orders"),
    path("admin/stats", apis.StaffStatsApi.as_view(), name="staff-stats"),
    path("admin/payouts", apis.StaffPayoutsApi.as_view(), name="staff-payouts"),
    path("payments/webhooks/<str:provider>", payment_apis.WebhookApi.as_view(), name="payments-webhook"),
    path(
        "payments/test/<anyuuid:payment_id>/complete",
        payment_apis.TestPaymentCompleteApi.as_view(),
        name="payments-test-complete",
    ),
    path(
        "payments/test/<anyuuid:payment_id>/fail", payment_apis.TestPaymentFailApi.as_view(), name="payments-test-fail"
    ),
]

from rest_framework.routers import SimpleRouter

from . import apis, discount_apis

router = SimpleRouter(trailing_slash=False)
router.register("events", apis.EventViewSet, basename="event")
router.register(rf"events/(?P<event_pk>{apis.ID})/ticket-types", apis.TicketTypeViewSet, basename="event-ticket-type")
router.register(
    rf"events/(?P<event_pk>{apis.ID})/discount-codes", discount_apis.DiscountCodeViewSet, basename="event-discount-code"
)

urlpatterns = router.urls

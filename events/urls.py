from rest_framework.routers import SimpleRouter

from . import apis

router = SimpleRouter(trailing_slash=False)
router.register("events", apis.EventViewSet, basename="event")
router.register(rf"events/(?P<event_pk>{apis.ID})/ticket-types", apis.TicketTypeViewSet, basename="event-ticket-type")

urlpatterns = router.urls

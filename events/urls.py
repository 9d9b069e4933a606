from rest_framework.routers import SimpleRouter

from . import apis

router = SimpleRouter(trailing_slash=False)
router.register("events", apis.EventViewSet, basename="event")
router.register(r"events/(?P<event_pk>[0-9]+)/ticket-types", apis.TicketTypeViewSet, basename="event-ticket-type")

urlpatterns = router.urls

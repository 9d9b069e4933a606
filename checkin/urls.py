from django.urls import path, re_path

from . import apis

# Ids of at most 18 digits: every one fits a bigint (longer ones match no route: 404).
urlpatterns = [
    re_path(r"^events/(?P<event_id>[0-9]{1,18})/check-ins$", apis.CheckInApi.as_view(), name="event-check-ins"),
    re_path(
        r"^events/(?P<event_id>[0-9]{1,18})/check-ins/batch$",
        apis.CheckInBatchApi.as_view(),
        name="event-check-ins-batch",
    ),
    re_path(
        r"^events/(?P<event_id>[0-9]{1,18})/check-in-list$", apis.CheckInListApi.as_view(), name="event-check-in-list"
    ),
    path("organizers/me/check-in-staff", apis.CheckInStaffListApi.as_view(), name="check-in-staff"),
    re_path(
        r"^organizers/me/check-in-staff/(?P<staff_id>[0-9]{1,18})$",
        apis.CheckInStaffDetailApi.as_view(),
        name="check-in-staff-detail",
    ),
]

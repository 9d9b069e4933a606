from django.urls import path, re_path

from . import apis

ENDPOINT = r"^organizers/me/webhooks/(?P<endpoint_id>[0-9]{1,18})"
UUID = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"

urlpatterns = [
    path("organizers/me/webhooks", apis.EndpointListApi.as_view(), name="webhooks"),
    re_path(f"{ENDPOINT}$", apis.EndpointDetailApi.as_view(), name="webhook"),
    re_path(f"{ENDPOINT}/ping$", apis.EndpointPingApi.as_view(), name="webhook-ping"),
    re_path(f"{ENDPOINT}/rotate-secret$", apis.EndpointRotateSecretApi.as_view(), name="webhook-rotate-secret"),
    re_path(f"{ENDPOINT}/deliveries$", apis.DeliveryListApi.as_view(), name="webhook-deliveries"),
    re_path(
        f"{ENDPOINT}/deliveries/(?P<delivery_id>{UUID})/replay$",
        apis.DeliveryReplayApi.as_view(),
        name="webhook-delivery-replay",
    ),
]

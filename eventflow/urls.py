from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from eventflow.api.health import HealthApi
from eventflow.views import ApiRootApi, home

admin.site.site_header = "EventFlow back office"
admin.site.site_title = "EventFlow"
admin.site.index_title = "Events, tickets and orders"
admin.site.site_url = "/"  # "View site": the landing page with the docs and the API

api_v1 = [
    path("", ApiRootApi.as_view(), name="api-root"),
    path("", include("accounts.urls")),
    # Orders before the catalogue's routes: a purchase (POST /orders) is resolved without trying every
    # event, ticket-type and discount-code pattern first (bench/README.md, "Discount codes"). No path
    # of one app matches a path of the other, so the order decides nothing else.
    path("", include("orders.urls")),
    path("", include("events.urls")),
    path("", include("checkin.urls")),
    path("", include("webhooks.urls")),  # outbound webhooks (issue 12)
    path("health", HealthApi.as_view(), name="health"),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
]

urlpatterns = [
    path("", home, name="home"),
    path("api/v1/", include(api_v1)),
    # The split view serves Swagger UI's set-up script as a file, so the page needs no inline script (CSP).
    path("api/docs", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("admin/", admin.site.urls),
]

if settings.SERVE_MEDIA:
    # Uploaded media from the local disk, for the embedded default and small
    # deployments; with S3 (or a web server in front) set SERVE_MEDIA=false.
    urlpatterns.append(re_path(r"^media/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT}))

handler400 = "eventflow.api.errors.bad_request"
handler403 = "eventflow.api.errors.permission_denied"
handler404 = "eventflow.api.errors.page_not_found"
handler500 = "eventflow.api.errors.server_error"

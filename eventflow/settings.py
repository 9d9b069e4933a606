"""EventFlow settings: one module, configured from the environment.

With nothing set, EventFlow runs on an embedded default that needs no other
server: SQLite (IMMEDIATE transactions), an in-process cache and Celery tasks
run eagerly. ``DATABASE_URL``, ``REDIS_URL`` and ``CELERY_BROKER_URL`` switch
to PostgreSQL and Redis, which production and the test suite use.
``.env.example`` lists every variable.
"""

import hashlib
import hmac
import secrets
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env file is a convenience for development; real deployments set
# the process environment, which always wins over the file.
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env", overwrite=False)

# Where the embedded default keeps its state: SQLite database, uploaded media,
# the generated secret key and Celery beat's schedule.
DATA_DIR = Path(env.str("DATA_DIR", default=str(BASE_DIR / "var")))
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key_from_data_dir(data_dir: Path) -> str:
    """Read, or create once, a random secret key kept beside the embedded data.

    Production sets SECRET_KEY in the environment. Without it the key is
    generated on first start and stored (mode 0600) in DATA_DIR, so the
    embedded default needs nothing set, no secret lives in the code, and every
    process sharing DATA_DIR (web, worker, beat) signs with the same key.
    """
    path = data_dir / ".secret_key"
    try:
        with open(path, "x", encoding="ascii") as fh:  # "x": the first writer wins
            path.chmod(0o600)
            fh.write(secrets.token_urlsafe(64))
    except FileExistsError:
        pass
    key = path.read_text(encoding="ascii").strip()
    if len(key) < 50:
        raise ImproperlyConfigured(f"{path} holds no usable secret key; delete it or set SECRET_KEY.")
    return key


# The secrets in .env.example are placeholders containing this mark. Copied as they are, they
# would be secrets everybody knows: start-up refuses them (checked below, once settings are read).
PLACEHOLDER_MARK = "replace-me"


def _refuse_placeholder(name: str, value: str | None) -> None:
    if value and PLACEHOLDER_MARK in value.lower():
        raise ImproperlyConfigured(
            f"{name} is still the placeholder from .env.example. Set a real secret, e.g. "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(64))'"
        )


SECRET_KEY = env.str("SECRET_KEY", default="") or _secret_key_from_data_dir(DATA_DIR)
_refuse_placeholder("SECRET_KEY", SECRET_KEY)
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_ratelimit",
    "django_filters",
    "django_countries",
    "csp",
    "axes",
    "corsheaders",  # issue 13C: browser clients on other origins (settings block "Browser clients")
    "accounts",
    "events",
    "orders",
    "checkin",
    "webhooks",  # outbound webhooks (issue 12)
    # --- Realtime (issue 12)
    "channels",
    "realtime",
    # --- end realtime
]
# --- Realtime (issue 12): `manage.py runserver` (`make run`) is Daphne's, so it serves WebSockets
# too: its app, first, replaces the command. Only for that command: importing Daphne installs
# Twisted's reactor, which made every request of a gunicorn worker 5 % dearer (0.24 M instructions
# per purchase, bench/README.md "Issue 12: WebSockets"), and nothing else needs the app.
if sys.argv[1:2] == ["runserver"]:
    INSTALLED_APPS.insert(0, "daphne")
# --- end realtime

MIDDLEWARE = [
    # First: every response, errors included, returns the request id; every log line carries it.
    "eventflow.middleware.RequestIdMiddleware",
    # First (issue 13C): answers CORS preflights and adds CORS headers to every /api/ response,
    # the early refusals of the middleware below (400, redirects) included.
    "eventflow.cors.CorsMiddleware",  # django-cors-headers, skipped while no origin is allowed
    "django.middleware.security.SecurityMiddleware",
    "eventflow.middleware.RejectNulCharactersMiddleware",
    "eventflow.middleware.CanonicalPathMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "eventflow.middleware.ContentSecurityPolicyMiddleware",  # django-csp's, the usual header built once
    # Last: turns a login that hit the failure limit into a 429 (accounts.security).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "eventflow.urls"
WSGI_APPLICATION = "eventflow.wsgi.application"
ASGI_APPLICATION = "eventflow.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "eventflow" / "templates"],  # project-wide overrides (the ReDoc page)
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'db.sqlite3'}"),
}
_db = DATABASES["default"]
_refuse_placeholder("The database password in DATABASE_URL (POSTGRES_PASSWORD in Compose)", _db.get("PASSWORD"))
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock when a transaction starts, so two writers
    # queue on busy_timeout instead of failing with "database is locked".
    _db["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        **_db.get("OPTIONS", {}),
    }
# DATABASE_POOLER=pgbouncer: DATABASE_URL points at PgBouncer in transaction mode, where each
# transaction may run on a different server connection. Nothing may then rely on session state:
# no server-side cursors that outlive a transaction (.iterator() holds one WITH HOLD), no
# prepared statements (psycopg 3 prepares a query after 5 runs), no plain SET (only SET LOCAL,
# as the purchase's lock_timeout), no session advisory locks, no LISTEN.
DATABASE_POOLER = env.str("DATABASE_POOLER", default="")
if DATABASE_POOLER not in {"", "pgbouncer"}:
    raise ImproperlyConfigured("DATABASE_POOLER is empty (connect straight to PostgreSQL) or pgbouncer.")
POSTGRES_ENGINES = {"django.db.backends.postgresql", "django.db.backends.postgis", "eventflow.db.postgresql"}


def _postgres_options(db: dict) -> None:
    """psycopg 3 with persistent connections, checked before reuse (through PgBouncer too: a
    client connection to it is cheap to keep, and the server connections are PgBouncer's pool),
    without a round trip (eventflow/db/postgresql/base.py: Django's check is a SELECT 1 per request)."""
    if db["ENGINE"] == "django.db.backends.postgresql":
        db["ENGINE"] = "eventflow.db.postgresql"
    db["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    db["CONN_HEALTH_CHECKS"] = True
    db["OPTIONS"] = {
        "connect_timeout": env.int("DATABASE_CONNECT_TIMEOUT", default=5),
        "application_name": "eventflow",
        **db.get("OPTIONS", {}),
    }
    if DATABASE_POOLER == "pgbouncer":
        db["DISABLE_SERVER_SIDE_CURSORS"] = True
        db["OPTIONS"]["prepare_threshold"] = None


if _db["ENGINE"] in POSTGRES_ENGINES:
    _postgres_options(_db)

# DATABASE_REPLICA_URL: a streaming replica of the same database (through its own PgBouncer
# when DATABASE_POOLER is set). Only public catalogue reads go there, chosen explicitly by the
# catalogue selectors (eventflow/db/__init__.py has the rules); every write, every read inside a
# transaction, the purchase path, availability and the admin stay on the primary. In tests the
# alias is a mirror of the test database (`make test` sets it), so the routing is exercised.
DATABASE_REPLICA_URL = env.str("DATABASE_REPLICA_URL", default="")
# After a catalogue change, reads of it stay on the primary this long, so a replica that lags
# behind never has a stale body cached under the new version (events/cache.py).
DATABASE_REPLICA_MAX_LAG_SECONDS = env.float("DATABASE_REPLICA_MAX_LAG_SECONDS", default=5.0)
# A replica that cannot be reached is skipped (reads go to the primary) this long before retrying.
DATABASE_REPLICA_RETRY_SECONDS = env.float("DATABASE_REPLICA_RETRY_SECONDS", default=10.0)
if DATABASE_REPLICA_URL:
    if _db["ENGINE"] not in POSTGRES_ENGINES:
        raise ImproperlyConfigured("DATABASE_REPLICA_URL needs a PostgreSQL DATABASE_URL.")
    DATABASES["replica"] = env.db_url_config(DATABASE_REPLICA_URL)
    _refuse_placeholder("The database password in DATABASE_REPLICA_URL", DATABASES["replica"].get("PASSWORD"))
    _postgres_options(DATABASES["replica"])
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["eventflow.db.PrimaryReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
# Redis holds no state a purchase needs (stock and locks are in PostgreSQL): when it fails,
# requests go on without it. A healthy Redis answers in well under a millisecond, so a
# command waits at most REDIS_SOCKET_TIMEOUT, and after a failure the cache is skipped for
# REDIS_BREAKER_SECONDS at a time (eventflow/redis_breaker.py) instead of every command
# waiting out its own timeout against a hung server.
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=0.25)
REDIS_BREAKER_SECONDS = env.float("REDIS_BREAKER_SECONDS", default=5.0)
if REDIS_URL:
    from eventflow.redis_breaker import BreakerConnection

    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="eventflow"),
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": REDIS_SOCKET_TIMEOUT,
                "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
                "CONNECTION_POOL_KWARGS": {"connection_class": BreakerConnection},
                # A Redis outage degrades caching and rate limiting; it must
                # not turn every request into a 500.
                "IGNORE_EXCEPTIONS": True,
            },
        }
    }
    # The breaker logs when Redis goes away and when it is back; not every skipped command.
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = False
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "eventflow"}}

# --- Realtime (issue 12): WebSockets with Django Channels (realtime/) -----------------------------
# The channel layer carries pushes from whichever process made a change to the processes holding
# the sockets: Redis (channels_redis) when REDIS_URL is set, its channels named CHANNELS_PREFIX...; on
# the embedded default the in-process layer, enough for the one process `make run` starts.
CHANNELS_PREFIX = env.str("CHANNELS_PREFIX", default="eventflow-ws")
# false: nothing is pushed (the realtime app listens to no signal), for a deployment without the
# WebSocket service: its purchases then pay nothing for realtime.
REALTIME_ENABLED = env.bool("REALTIME_ENABLED", default=True)
if REDIS_URL:
    # The Redis Pub/Sub layer: a push to an event's thousand subscribers is one PUBLISH, and each
    # ASGI process that holds some of them relays it to its own. (channels_redis' list-based
    # RedisChannelLayer queues a copy per socket and pops them one by one: at 1,000 subscribers
    # it fell 9 s behind a sale, bench/README.md "Issue 12: WebSockets".) Like every push here,
    # a message is not kept for a socket that is not connected at that moment.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": CHANNELS_PREFIX},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# Stock pushes (stock.updated, stock.low) are coalesced: each process sends what changed at most
# every REALTIME_STOCK_PUSH_MS, and a Redis claim of that length keeps all processes together to
# about 1000/REALTIME_STOCK_PUSH_MS pushes per second per event (realtime/publish.py). Each push is
# one frame per subscriber, and a Daphne process relays about 3,500 frames/s per core: 1,000
# subscribers at 250 ms fell seconds behind on 2 shared cores, at 1,000 ms they stayed within about
# a second (bench/README.md, "Issue 12: WebSockets"). Lower it when the ASGI service has cores to spare.
REALTIME_STOCK_PUSH_MS = env.int("REALTIME_STOCK_PUSH_MS", default=1000)
# stock.low: a ticket type's tickets on sale dropped to its low_stock_threshold or fewer (a count of
# tickets); types without one use this.
STOCK_LOW_THRESHOLD = env.int("STOCK_LOW_THRESHOLD", default=10)
# --- end realtime

# --- Auth -------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # First: refuses an account + address pair locked out after repeated failures (django-axes).
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ("email", "name")},  # our User has one name field, not first/last
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "accounts.validators.PasswordStrengthValidator", "OPTIONS": {"min_score": 3}},
]

# --- Internationalisation ----------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static and media ----------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(DATA_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
SERVE_MEDIA = env.bool("SERVE_MEDIA", default=True)
EVENT_IMAGE_MAX_BYTES = env.int("EVENT_IMAGE_MAX_BYTES", default=5 * 1024 * 1024)
# Decoded size: width x height (x frames) of an event image, checked before decoding.
EVENT_IMAGE_MAX_PIXELS = env.int("EVENT_IMAGE_MAX_PIXELS", default=25_000_000)
# Every upload's bytes are counted as they arrive, and stopped at EVENT_IMAGE_MAX_BYTES (events/images.py).
FILE_UPLOAD_HANDLERS = [
    "events.images.SizeLimitedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
# Serve straight from the apps' static folders when collectstatic has not run
# (tests, a first `runserver`); production images run collectstatic at build.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)

# --- Security -----------------------------------------------------------------
# HTTPS=true when EventFlow is served over TLS (directly or behind a proxy that
# sets X-Forwarded-Proto): redirects, secure cookies and HSTS follow from it.
HTTPS = env.bool("HTTPS", default=False)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=HTTPS)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=HTTPS)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=HTTPS)
if env.bool("TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health$"]  # load-balancer probes speak plain HTTP
# /api/v1/health answers within this many seconds whatever hangs behind it (a load balancer's probe).
HEALTH_CHECK_TIMEOUT = env.float("HEALTH_CHECK_TIMEOUT", default=0.5)
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp) on every response. Scripts only from this origin:
# the admin, Swagger UI (served split: its set-up script is a file, not inline) and ReDoc
# need nothing else (.ci/browser-check proves it in Chromium). Inline styles stay allowed:
# the admin uses style attributes and ReDoc injects its styles at run time; they cannot
# run code. Images may also be data: URIs (Swagger's icons) and come from
# CSP_EXTRA_IMG_SRC (e.g. an S3 bucket for media). ReDoc's footer logo, which its bundle
# always loads from cdn.redoc.ly, is refused on purpose: the docs load nothing from
# other origins, and ReDoc simply shows its footer without the logo.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", *env.list("CSP_EXTRA_IMG_SRC", default=[])],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# --- REST framework ---------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["eventflow.api.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["eventflow.api.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "eventflow.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_THROTTLE_CLASSES": [
        "eventflow.api.throttling.AnonRateThrottle",
        "eventflow.api.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("THROTTLE_ANON_RATE", default="120/min"),
        "user": env.str("THROTTLE_USER_RATE", default="600/min"),
    },
    "EXCEPTION_HANDLER": "eventflow.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "eventflow.api.schema.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

_refuse_placeholder("JWT_SIGNING_KEY", env.str("JWT_SIGNING_KEY", default=""))
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    # Refresh tokens rotate in families (accounts.models.TokenFamily): accounts.services, not simplejwt's blacklist.
    "UPDATE_LAST_LOGIN": False,  # accounts.services.user_login records it
    "ALGORITHM": "HS256",
    "SIGNING_KEY": env.str("JWT_SIGNING_KEY", default="") or SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
}

# --- Browser clients (issue 13C): refresh cookie, CSRF, CORS ---------------------------------
# AUTH_REFRESH_COOKIE=true: a browser (a request carrying an Origin header, which browsers send
# on every POST) gets its refresh token as an HttpOnly cookie scoped to the auth paths instead
# of in the body, so page scripts (and an XSS) never see it; /auth/refresh and /auth/logout take
# it from there, behind Django's CSRF check (X-CSRFToken header matching the csrftoken cookie,
# and an Origin that is this host, CSRF_TRUSTED_ORIGINS or CORS_ALLOWED_ORIGINS). Clients that
# send no Origin (apps, servers, curl) keep the refresh token in the body, as before.
AUTH_REFRESH_COOKIE = env.bool("AUTH_REFRESH_COOKIE", default=False)
AUTH_REFRESH_COOKIE_NAME = env.str("AUTH_REFRESH_COOKIE_NAME", default="eventflow_refresh")
AUTH_REFRESH_COOKIE_PATH = env.str("AUTH_REFRESH_COOKIE_PATH", default="/api/v1/auth/")
AUTH_REFRESH_COOKIE_DOMAIN = env.str("AUTH_REFRESH_COOKIE_DOMAIN", default="") or None
# Strict: the SPA and the API must be the same site (e.g. app.example.com and api.example.com);
# only the SPA's own fetches ever carry the cookie. Lax also sends it on top-level navigations.
# None (cross-site) is refused: browsers are dropping third-party cookies anyway.
AUTH_REFRESH_COOKIE_SAMESITE = env.str("AUTH_REFRESH_COOKIE_SAMESITE", default="Strict").capitalize()
if AUTH_REFRESH_COOKIE_SAMESITE not in {"Strict", "Lax"}:
    raise ImproperlyConfigured("AUTH_REFRESH_COOKIE_SAMESITE is Strict or Lax.")
# Secure even without HTTPS: browsers store a Secure cookie from http://localhost too (Safari
# excepted); set false only to develop over plain HTTP on another host name.
AUTH_REFRESH_COOKIE_SECURE = env.bool("AUTH_REFRESH_COOKIE_SECURE", default=True)
# Origins (scheme://host[:port]) whose pages may call the API; empty: none but this one.
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_ALLOWED_ORIGIN_REGEXES: list[str] = []  # set, like the next, so each read per request is a plain lookup
CORS_ALLOW_ALL_ORIGINS = False
CORS_URLS_REGEX = r"^/api/"
CORS_ALLOW_CREDENTIALS = AUTH_REFRESH_COOKIE  # cookies cross origins only when the cookie is on
CORS_ALLOW_HEADERS = (
    *("accept", "authorization", "content-type", "user-agent", "x-csrftoken", "x-requested-with"),
    *("idempotency-key", "if-none-match", "x-request-id"),
)
CORS_EXPOSE_HEADERS = [
    *("Retry-After", "ETag", "Location", "Content-Disposition", "X-Request-ID"),
    *("Idempotent-Replayed", "WWW-Authenticate"),
]
# Preflights are cached by the browser this long (Chrome caps it at 2 hours).
CORS_PREFLIGHT_MAX_AGE = env.int("CORS_PREFLIGHT_MAX_AGE", default=7200)
# GET /users/me/export per user: it reads everything the account ever did.
DATA_EXPORT_RATE_PER_USER = env.str("DATA_EXPORT_RATE_PER_USER", default="5/h")

# The client IP of every per-client limit (DRF throttles, django-ratelimit, django-axes)
# is eventflow.clientip.client_ip: REMOTE_ADDR, or with NUM_PROXIES trusted reverse
# proxies in front, the address the outermost of them saw in X-Forwarded-For.
NUM_PROXIES = env.int("NUM_PROXIES", default=0)
if NUM_PROXIES < 0:
    raise ImproperlyConfigured("NUM_PROXIES counts proxies: 0 or more.")

# Password checks (API login, admin login): django-axes counts failures per account
# *and* client IP, so a stranger's wrong guesses never lock the owner out. See accounts/security.py.
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"  # works without Redis, visible in the admin
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "eventflow.clientip.client_ip"
AXES_USERNAME_CALLABLE = "accounts.security.login_username"
AXES_LOCKOUT_CALLABLE = "accounts.security.lockout_response"
AXES_DISABLE_ACCESS_LOG = True  # successful logins are not an audit trail we keep; failures are

# Registration is limited per client IP (django-ratelimit, counted in the shared cache):
# it creates accounts, so one address may not create many.
RATELIMIT_USE_CACHE = "default"
RATELIMIT_FAIL_OPEN = True  # a cache outage must not stop every registration
RATELIMIT_IP_META_KEY = "eventflow.clientip.client_ip"
REGISTER_RATE_PER_IP = env.str("REGISTER_RATE_PER_IP", default="5/m")
# Asking for a password code, and using one (accounts.passwords), per client IP.
PASSWORD_RESET_RATE_PER_IP = env.str("PASSWORD_RESET_RATE_PER_IP", default="10/m")
# Requests that may create an account for somebody else and email it (a ticket transfer, naming
# check-in staff), per client IP.
INVITE_RATE_PER_IP = env.str("INVITE_RATE_PER_IP", default="30/m")
# --- Issue 13B: emailed codes, password change, email verification (accounts.codes) ---------
# A password reset code works this many minutes; an invitation's (a transferred ticket's new
# account, check-in staff) this many hours; an email verification code this many hours.
PASSWORD_RESET_CODE_MINUTES = env.int("PASSWORD_RESET_CODE_MINUTES", default=15)
INVITE_CODE_HOURS = env.int("INVITE_CODE_HOURS", default=72)
EMAIL_VERIFICATION_CODE_HOURS = env.int("EMAIL_VERIFICATION_CODE_HOURS", default=24)
# Per account (the email as sent, whether or not an account has it): emails of codes asked for
# (reset, verification resend), and tries of a code or an old password, each endpoint counted apart.
CODE_EMAIL_RATE_PER_ACCOUNT = env.str("CODE_EMAIL_RATE_PER_ACCOUNT", default="5/h")
CREDENTIAL_RATE_PER_ACCOUNT = env.str("CREDENTIAL_RATE_PER_ACCOUNT", default="20/h")
# POST /orders refuses a buyer who has not verified their email address (403 email_not_verified).
REQUIRE_EMAIL_VERIFICATION_TO_BUY = env.bool("REQUIRE_EMAIL_VERIFICATION_TO_BUY", default=False)
# --- end of issue 13B ------------------------------------------------------------------------

# --- Two-factor authentication and account deletion (issue 13A: accounts/twofactor.py, accounts/privacy.py)
# Organizers without 2FA get 403 `2fa_required` on organizer endpoints and cannot sign in to the admin.
ORGANIZERS_REQUIRE_2FA = env.bool("ORGANIZERS_REQUIRE_2FA", default=False)
TWO_FACTOR_ISSUER = env.str("TWO_FACTOR_ISSUER", default="EventFlow")  # the name authenticator apps show
# Wrong 2FA codes per account (whatever the address) per LOGIN_LOCKOUT_MINUTES, and per client address.
OTP_FAILURE_LIMIT = env.int("OTP_FAILURE_LIMIT", default=5)
OTP_FAILURE_RATE_PER_IP = env.str("OTP_FAILURE_RATE_PER_IP", default="20/15m")
# Signed-in 2FA and account-deletion requests per client address.
TWO_FACTOR_RATE_PER_IP = env.str("TWO_FACTOR_RATE_PER_IP", default="10/m")
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "otp"]  # never stored with a failed admin login
# --- end 13A
if CACHES["default"]["BACKEND"].endswith("LocMemCache"):
    # The embedded default is one process, so a per-process cache is shared
    # by everything that counts; production uses Redis.
    SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]

# Check-in at the door (checkin/): an offline scan may be at most this far ahead of the server's
# clock (door devices' clocks drift); later ones are refused as invalid.
CHECKIN_CLOCK_SKEW_SECONDS = env.int("CHECKIN_CLOCK_SKEW_SECONDS", default=300)

# The public catalogue: list and detail bodies are cached (versioned keys,
# invalidated on change); live stock is never older than AVAILABILITY_CACHE_SECONDS.
CATALOGUE_CACHE_SECONDS = env.int("CATALOGUE_CACHE_SECONDS", default=30)
AVAILABILITY_CACHE_SECONDS = env.int("AVAILABILITY_CACHE_SECONDS", default=1)
NEAR_DEFAULT_RADIUS_KM = env.int("NEAR_DEFAULT_RADIUS_KM", default=50)

# Orders: how long a reservation holds stock, and how long a purchase waits for
# a stock lock before answering 503 "busy" (PostgreSQL lock_timeout).
ORDER_HOLD_MINUTES = env.int("ORDER_HOLD_MINUTES", default=10)
# A new ticket type's max_per_buyer when its organizer does not set one (0: no limit): one
# account may not hold a whole event's stock unless the organizer says so.
DEFAULT_MAX_PER_BUYER = env.int("DEFAULT_MAX_PER_BUYER", default=10) or None
ORDER_LOCK_TIMEOUT_MS = env.int("ORDER_LOCK_TIMEOUT_MS", default=3000)
# Stock buckets (events/stock.py): a new ticket type of at least STOCK_BUCKETS_MIN_CAPACITY
# tickets is split over STOCK_BUCKETS rows unless its organizer sets stock_buckets (0: never
# automatic). One row sells ~1,000 tickets/s at most; bench/README.md, "Stock buckets".
STOCK_BUCKETS = env.int("STOCK_BUCKETS", default=16)
STOCK_BUCKETS_MIN_CAPACITY = env.int("STOCK_BUCKETS_MIN_CAPACITY", default=1000)
# Idempotency-Key records are kept this long; one left "in progress" longer than
# IDEMPOTENCY_STALE_SECONDS (its request died) may be taken over by a retry.
IDEMPOTENCY_KEY_TTL_HOURS = env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=24)
IDEMPOTENCY_STALE_SECONDS = env.int("IDEMPOTENCY_STALE_SECONDS", default=120)
# The queued on-sale of high-demand events (orders/queue.py): workers place queued purchases in
# batches of ORDER_QUEUE_BATCH_SIZE (one transaction each), up to ORDER_QUEUE_DRAINERS workers per
# event, each run lasting ORDER_QUEUE_DRAIN_SECONDS before handing over; the sweep restarts a line
# whose drainer died after its lease (ORDER_QUEUE_LEASE_SECONDS) and answers "expired" to requests
# older than ORDER_QUEUE_MAX_WAIT_MINUTES. Buyers are told to poll after ORDER_QUEUE_POLL_SECONDS,
# longer the further back they are (position / ORDER_QUEUE_RATE_PER_SECOND, at most 30 s).
ORDER_QUEUE_BATCH_SIZE = env.int("ORDER_QUEUE_BATCH_SIZE", default=20)
ORDER_QUEUE_DRAINERS = env.int("ORDER_QUEUE_DRAINERS", default=2)
ORDER_QUEUE_DRAIN_SECONDS = env.int("ORDER_QUEUE_DRAIN_SECONDS", default=20)
ORDER_QUEUE_LEASE_SECONDS = env.int("ORDER_QUEUE_LEASE_SECONDS", default=30)
ORDER_QUEUE_SWEEP_SECONDS = env.int("ORDER_QUEUE_SWEEP_SECONDS", default=10)
ORDER_QUEUE_MAX_WAIT_MINUTES = env.int("ORDER_QUEUE_MAX_WAIT_MINUTES", default=60)
ORDER_QUEUE_POLL_SECONDS = env.int("ORDER_QUEUE_POLL_SECONDS", default=2)
ORDER_QUEUE_RATE_PER_SECOND = env.int("ORDER_QUEUE_RATE_PER_SECOND", default=200)
# The waiting list (orders/waitlist.py): an offer (a reserved order made for the first entries that
# fit when stock comes back) holds its tickets this long; beat looks for missed offers every
# WAITLIST_SWEEP_SECONDS.
WAITLIST_OFFER_MINUTES = env.int("WAITLIST_OFFER_MINUTES", default=30)
WAITLIST_SWEEP_SECONDS = env.int("WAITLIST_SWEEP_SECONDS", default=60)

# Payments. PAYMENT_PROVIDER takes new payments: "test" (a simulated gateway, the embedded
# default), "stripe" or "paystack". A provider's webhooks are accepted while it is configured.
# The test provider lets a buyer complete their own payment: it is on only when PAYMENT_PROVIDER
# is "test" or TEST_PAYMENTS_ENABLED says so, and `check --deploy` warns while it is.
PAYMENT_PROVIDER = env.str("PAYMENT_PROVIDER", default="test")
TEST_PAYMENTS_ENABLED = env.bool("TEST_PAYMENTS_ENABLED", default=PAYMENT_PROVIDER == "test")
TEST_PAYMENTS_WEBHOOK_SECRET = (
    env.str("TEST_PAYMENTS_WEBHOOK_SECRET", default="")
    or hmac.new(SECRET_KEY.encode(), b"eventflow.payments.test.webhook", hashlib.sha256).hexdigest()
)
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
PAYSTACK_SECRET_KEY = env.str("PAYSTACK_SECRET_KEY", default="")
_refuse_placeholder("STRIPE_SECRET_KEY", STRIPE_SECRET_KEY)
_refuse_placeholder("PAYSTACK_SECRET_KEY", PAYSTACK_SECRET_KEY)
# A signed webhook older than this is refused as a replay (the test provider also refuses one from
# this far in the future; Paystack signs no time, so its replays are stopped by the stored event id).
PAYMENT_WEBHOOK_TOLERANCE_SECONDS = env.int("PAYMENT_WEBHOOK_TOLERANCE_SECONDS", default=300)
# The platform's fee, recorded on every payment: a percentage of the total plus a fixed amount
# in minor units (charged only on orders that cost something; never more than the total).
PLATFORM_FEE_PERCENT = Decimal(env.str("PLATFORM_FEE_PERCENT", default="5"))
PLATFORM_FEE_FIXED_CENTS = env.int("PLATFORM_FEE_FIXED_CENTS", default=0)
# Refunds the gateway refuses are retried with exponential backoff (base doubling, at most an
# hour) this many times, then marked failed for staff to retry from the admin.
REFUND_MAX_RETRIES = env.int("REFUND_MAX_RETRIES", default=8)
REFUND_RETRY_BASE_SECONDS = env.int("REFUND_RETRY_BASE_SECONDS", default=5)
# Ticket PDFs: a TrueType font that prints titles in any script (its "-Bold" sibling is used when
# present). Without it the PDF falls back to a built-in Latin-1 font (orders/documents.py).
TICKET_PDF_FONT = env.str("TICKET_PDF_FONT", default="/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")

# Problem details carry "type": <base><code>.
PROBLEM_TYPE_BASE_URI = env.str("PROBLEM_TYPE_BASE_URI", default="urn:eventflow:problem:")

SPECTACULAR_SETTINGS = {
    "TITLE": "EventFlow API",
    "DESCRIPTION": (
        "EventFlow: events with ticket tiers, a searchable catalogue, and oversell-proof reservations "
        "with idempotent retries. Sign in with `POST /auth/login` and send `Authorization: Bearer <access>`; "
        "when an access token expires (401 `token_expired`) refresh it with `POST /auth/refresh`. "
        "Money is integer minor units (`*_cents`) in the event's `currency`; times are ISO 8601 with an "
        "offset. Errors are RFC 9457 problem details (`application/problem+json`) with a stable `code`; "
        "lists are paginated with `page` and `page_size`."
    ),
    # In the order a reader meets them; staff last. Summaries and examples: eventflow/api/docs.py.
    "TAGS": [
        {"name": "auth", "description": "Accounts, sign-in and sessions (JWT access and refresh tokens)."},
        {"name": "users", "description": "The signed-in user: profile and tickets."},
        {"name": "organizers", "description": "Becoming an organizer, and the organizer profile."},
        {"name": "events", "description": "The catalogue, and organizers' events, ticket types, sales, attendees."},
        {"name": "orders", "description": "Reserving tickets, orders and their tickets."},
        {"name": "payments", "description": "Paying orders: the gateways' webhooks and the simulated test gateway."},
        {"name": "system", "description": "The API's own endpoints: resource index, health, schema."},
        {"name": "staff", "description": "Platform administrators only."},
    ],
    "VERSION": "1.0.0",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "HealthPartStatusEnum": ["ok", "down"],
        "HealthStatusEnum": ["ok", "degraded", "down"],
        "EventStatusEnum": "events.models.Event.Status",
        "OrderStatusEnum": "orders.models.Order.Status",
        "TicketStatusEnum": "orders.models.Ticket.Status",
        "WaitlistEntryStatusEnum": "orders.models.WaitlistEntry.Status",
        "CountryEnum": "events.serializers.COUNTRY_CODES",
    },
}

# --- Celery -----------------------------------------------------------------------
# Without a broker, tasks run eagerly in the calling process.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=CELERY_BROKER_URL == "memory://")
# Without a broker there is no beat: the server process sweeps due holds itself (orders/sweeper.py).
EXPIRY_SWEEP_SECONDS = env.int("EXPIRY_SWEEP_SECONDS", default=30)
EXPIRY_SWEEP_IN_PROCESS = env.bool("EXPIRY_SWEEP_IN_PROCESS", default=CELERY_BROKER_URL == "memory://")
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
# Named queues, each read by its own workers (docker-compose.yml: worker-expiry, worker-payments,
# worker-email), so a backlog of one kind of work never delays another: ten thousand
# confirmation emails queued behind a slow mail server do not hold back the expiry sweep that
# returns held stock to sale. A task not listed here goes to CELERY_TASK_DEFAULT_QUEUE
# (housekeeping). Queue names are CELERY_QUEUE_PREFIX + name, so deployments (or test runs)
# sharing one broker keep apart; eventflow/celery.py routes by this table.
CELERY_QUEUE_PREFIX = env.str("CELERY_QUEUE_PREFIX", default="")
TASK_QUEUES = {
    "orders.tasks.expire_reservations": "expiry",
    # The queued on-sale of high-demand events (orders/queue.py): drained at the database's pace,
    # by workers of their own, so a 20,000-buyer line never delays the expiry sweep, nor waits on mail.
    "orders.tasks.drain_purchase_queue": "onsale",
    "orders.tasks.sweep_purchase_queues": "onsale",
    "orders.tasks.refund_send": "payments",
    "orders.tasks.refund_cancelled_event": "payments",
    "orders.tasks.resend_stuck_refunds": "payments",
    "orders.tasks.send_order_confirmation": "email",
    "orders.tasks.send_order_refund_notice": "email",
    # Waiting-list offers hand released stock on: with the expiry sweep that releases it.
    "orders.tasks.offer_waitlist": "expiry",
    "orders.tasks.sweep_waitlists": "expiry",
    "orders.tasks.send_waitlist_offer": "email",
    "orders.tasks.send_ticket_transfer_notice": "email",
    "accounts.tasks.send_password_code": "email",
    "accounts.tasks.send_password_reset": "email",  # issue 13B
    "accounts.tasks.send_email_verification": "email",  # issue 13B
    "accounts.tasks.resend_email_verification": "email",  # issue 13B
}
CELERY_TASK_ROUTES = ("eventflow.celery.route_task",)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task a killed worker had taken (acks_late) is delivered again after this many seconds.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    # ... found by a scan every unacked_restore_interval x unacked_restore_throttle seconds: kombu 5.7
    # made that 10 x 10 = 100 s; here every CELERY_UNACKED_RESTORE_SECONDS (10 s, one ZRANGE).
    "unacked_restore_interval": env.int("CELERY_UNACKED_RESTORE_SECONDS", default=10),
    "unacked_restore_throttle": 1,
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
}
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "expire-reservations": {
        "task": "orders.tasks.expire_reservations",
        "schedule": timedelta(seconds=EXPIRY_SWEEP_SECONDS),
        "options": {"expires": 25},  # a sweep that waited too long is skipped; the next one comes
    },
    "sweep-purchase-queues": {
        "task": "orders.tasks.sweep_purchase_queues",
        "schedule": timedelta(seconds=ORDER_QUEUE_SWEEP_SECONDS),
        "options": {"expires": max(1, ORDER_QUEUE_SWEEP_SECONDS - 2)},
    },
    "sweep-waitlists": {
        "task": "orders.tasks.sweep_waitlists",
        "schedule": timedelta(seconds=WAITLIST_SWEEP_SECONDS),
        "options": {"expires": max(1, WAITLIST_SWEEP_SECONDS - 5)},
    },
    "purge-idempotency-records": {
        "task": "orders.tasks.purge_idempotency_records",
        "schedule": timedelta(hours=1),
    },
    "resend-stuck-refunds": {
        "task": "orders.tasks.resend_stuck_refunds",
        "schedule": timedelta(minutes=5),
    },
    "purge-expired-sessions": {
        "task": "accounts.tasks.purge_expired_sessions",
        "schedule": timedelta(hours=24),
    },
}

# --- Email ------------------------------------------------------------------------
# Unset, every email is printed on the console, so `make run` shows them in its terminal.
# EMAIL_URL sends them over SMTP: smtp+tls://user:password@host:587 (STARTTLS) or
# smtp+ssl://user:password@host:465; quote special characters of the password (%40 for @).
_email = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email["EMAIL_HOST"] or "localhost"
EMAIL_PORT = _email["EMAIL_PORT"] or 25
EMAIL_HOST_USER = _email["EMAIL_HOST_USER"] or ""
EMAIL_HOST_PASSWORD = _email["EMAIL_HOST_PASSWORD"] or ""
_refuse_placeholder("The password in EMAIL_URL", EMAIL_HOST_PASSWORD)
EMAIL_USE_TLS = _email.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _email.get("EMAIL_USE_SSL", False)
# Seconds an SMTP call may hang: a sending task holds its order's row lock meanwhile (orders/confirmation.py).
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="EventFlow <tickets@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Logging, request ids, Sentry, beat's heartbeat (issue 12) ---------------------------
# LOG_FORMAT=json: one JSON object a line (timestamp, level, logger, message, request_id,
# exc_info), for a log collector; plain: a line for people. Default: plain for the embedded
# default (`make run`, SQLite) and DEBUG, json wherever a database server is configured.
# Celery's worker and beat log through this same configuration (eventflow/celery.py), and
# gunicorn through deploy/gunicorn.conf.py. eventflow/logs.py holds the formatters.
LOG_FORMAT = env.str(
    "LOG_FORMAT", default="plain" if DEBUG or _db["ENGINE"] == "django.db.backends.sqlite3" else "json"
)
if LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured("LOG_FORMAT is json or plain.")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "eventflow.logs.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "eventflow.logs.JsonFormatter"},
        "plain": {"()": "eventflow.logs.PlainFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # django-axes logs every start and every successful login at INFO; its failure warnings stay.
    # fontTools (fpdf2 subsetting the ticket PDF's font) narrates every subset at INFO.
    "loggers": {"axes": {"level": "WARNING"}, "fontTools": {"level": "WARNING"}},
}

# Sentry: on only with SENTRY_DSN (eventflow/sentry.py). No personal data, no traces by default.
SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    from eventflow import sentry as _sentry

    _sentry.init(
        dsn=SENTRY_DSN,
        environment=env.str("SENTRY_ENVIRONMENT", default="production"),
        release=env.str("SENTRY_RELEASE", default="") or None,
        # Unset means no tracing at all. At 0 the SDK still builds an unsampled transaction per request.
        traces_sample_rate=float(_traces) if (_traces := env.str("SENTRY_TRACES_SAMPLE_RATE", default="")) else None,
        # Request data on events, and traces, for +44 % instructions per purchase (eventflow/sentry.py).
        django=env.bool("SENTRY_DJANGO") if env.str("SENTRY_DJANGO", default="") else bool(_traces),
    )

# Beat's heartbeat (eventflow/heartbeat.py): beat sends it every HEALTH_BEAT_SECONDS on the expiry
# queue and the worker that runs it records the time; /api/v1/health reports its age and says
# "degraded" when it is older than HEALTH_BEAT_STALE_SECONDS. Without a broker (the embedded
# default, EXPIRY_SWEEP_IN_PROCESS), or with tasks run eagerly (CELERY_TASK_ALWAYS_EAGER: no
# worker), there is no beat: /health says "off" and stays "ok".
HEALTH_BEAT_SECONDS = env.int("HEALTH_BEAT_SECONDS", default=30)
HEALTH_BEAT_STALE_SECONDS = env.int("HEALTH_BEAT_STALE_SECONDS", default=3 * HEALTH_BEAT_SECONDS)
TASK_QUEUES["eventflow.heartbeat.beat_heartbeat"] = "expiry"
CELERY_BEAT_SCHEDULE["health-heartbeat"] = {
    "task": "eventflow.heartbeat.beat_heartbeat",
    "schedule": timedelta(seconds=HEALTH_BEAT_SECONDS),
    "options": {"expires": HEALTH_BEAT_SECONDS},  # a late heartbeat proves nothing: skipped
}
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["HealthBeatStatusEnum"] = ["ok", "stale", "down", "off"]
# --- end of logging, request ids, Sentry, beat's heartbeat ----------------------------------

# --- Metrics (the observability app: GET /metrics, Prometheus' text format) ----------
# Served to client addresses in METRICS_ALLOWED_NETWORKS (the client as NUM_PROXIES reads it,
# so a request through nginx is judged by its real client) and, when METRICS_TOKEN is set, only
# with "Authorization: Bearer <token>". The default serves this machine only (`make run`, curl on
# localhost); docker-compose.yml allows the private networks its Prometheus scrapes from.
# PROMETHEUS_MULTIPROC_DIR (an environment variable read by prometheus_client, not a setting)
# adds up the values of every gunicorn or Celery process: observability/metrics.py.
INSTALLED_APPS.append("observability")
# Right inside the request id (outermost, so /metrics answers carry X-Request-ID too): the request
# histogram times every other middleware.
MIDDLEWARE.insert(
    MIDDLEWARE.index("eventflow.middleware.RequestIdMiddleware") + 1,
    "observability.middleware.RequestMetricsMiddleware",
)
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"])

# --- Outbound webhooks (webhooks/, issue 12) --------------------------------------------------
# Deliveries to private, loopback, link-local, multicast or reserved addresses are refused (the
# host is resolved when sending and the checked address is the one connected to), unless this is
# on: for tests and a local demo only.
WEBHOOKS_ALLOW_PRIVATE_NETWORKS = env.bool("WEBHOOKS_ALLOW_PRIVATE_NETWORKS", default=False)
# Endpoints must be https:// unless this is on (a local demo receiver speaks plain http).
WEBHOOKS_ALLOW_HTTP = env.bool("WEBHOOKS_ALLOW_HTTP", default=False)
WEBHOOKS_MAX_ENDPOINTS = env.int("WEBHOOKS_MAX_ENDPOINTS", default=10)  # per organizer
# The whole exchange of one attempt: connect, TLS, send, and read the response's head (and up to
# 500 bytes of its body). webhooks/tasks.py bounds the task itself (DNS included) below the hold.
WEBHOOKS_TIMEOUT_SECONDS = env.float("WEBHOOKS_TIMEOUT_SECONDS", default=5.0)
# Attempts per delivery (the first one included), and the waits between them in seconds (each
# +/- 10 % jitter; past the list's end its last value repeats): 1 min, 5 min, 30 min, 2 h, 8 h, 24 h.
WEBHOOKS_MAX_ATTEMPTS = env.int("WEBHOOKS_MAX_ATTEMPTS", default=7)
WEBHOOKS_RETRY_SCHEDULE = env.list("WEBHOOKS_RETRY_SCHEDULE", cast=int, default=[60, 300, 1800, 7200, 28800, 86400])
# An endpoint is disabled (and its organizer emailed) after this many deliveries in a row failed.
WEBHOOKS_DISABLE_AFTER_FAILURES = env.int("WEBHOOKS_DISABLE_AFTER_FAILURES", default=5)
# How long a process trusts its memo of who subscribes to what before checking the cache's
# version key (one cache read per process per period; an endpoint change bumps the version).
WEBHOOKS_SUBSCRIPTIONS_TTL_SECONDS = env.float("WEBHOOKS_SUBSCRIPTIONS_TTL_SECONDS", default=10.0)
WEBHOOKS_RETRY_SWEEP_SECONDS = env.int("WEBHOOKS_RETRY_SWEEP_SECONDS", default=30)
TASK_QUEUES.update(
    {
        "webhooks.tasks.emit_events": "webhooks",
        "webhooks.tasks.send_delivery": "webhooks",
        "webhooks.tasks.send_due_deliveries": "webhooks",
        "webhooks.tasks.send_endpoint_disabled_notice": "email",
    }
)
CELERY_BEAT_SCHEDULE["webhooks-send-due-deliveries"] = {
    "task": "webhooks.tasks.send_due_deliveries",
    "schedule": timedelta(seconds=WEBHOOKS_RETRY_SWEEP_SECONDS),
    "options": {"expires": max(1, WEBHOOKS_RETRY_SWEEP_SECONDS - 5)},
}
# --- end of outbound webhooks ---------------------------------------------------------------

"""Settings of the AgentOS control plane, read from the environment (SPEC section 3).

With nothing set it runs embedded: SQLite, a local git SSOT and generated secrets under var/,
the in-memory channel layer and django-q2's ORM broker. DATABASE_URL and REDIS_URL switch to
PostgreSQL and Redis; ENVIRONMENT=production refuses every insecure default.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import environ

from agentos_site.env import csv, generated_secret, strong_secret

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

ENVIRONMENT = env.str("ENVIRONMENT", default="development")
PRODUCTION = ENVIRONMENT == "production"
VAR_DIR = Path(env.str("AGENTOS_VAR_DIR", default=str(BASE_DIR / "var")))


# The shortest secret production accepts (SPEC section 3, issue 15): Django's own check asks 50 of its key.
MIN_SECRET = 32
MIN_DJANGO_SECRET = 50


def _secret(variable: str, file_name: str, minimum: int = MIN_SECRET) -> str:
    value = env.str(variable, default="") or generated_secret(
        VAR_DIR, file_name, production=PRODUCTION, variable=variable
    )
    # A comma-separated list (webhook secrets in rotation): every one of them must be strong.
    for part in csv(value) if "," in value else [value]:
        strong_secret(part, variable=variable, minimum=minimum, production=PRODUCTION)
    return value


SECRET_KEY = _secret("DJANGO_SECRET_KEY", "secret_key", MIN_DJANGO_SECRET)
DEBUG = env.bool("DJANGO_DEBUG", default=False) and not PRODUCTION
ALLOWED_HOSTS = csv(env.str("ALLOWED_HOSTS", default="localhost,127.0.0.1"))
CSRF_TRUSTED_ORIGINS = csv(env.str("CSRF_TRUSTED_ORIGINS", default=""))

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_q",
    "axes",
    "amp",
    "ssot",
    "webhooks",
    "monitoring",
    "agentos_site",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # A view that meets a database outage answers 503 (JSON under /api/ and /webhooks/), not 500.
    "core.api_errors.DatabaseOutageMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a login refused for too many failures into its answer (ssot/lockout.py).
    "axes.middleware.AxesMiddleware",
]

# django-axes first: it refuses a locked-out username or address before the password is even checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "agentos_site.urls"
WSGI_APPLICATION = "agentos_site.wsgi.application"
ASGI_APPLICATION = "agentos_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

# Database: SQLite under var/ unless DATABASE_URL says otherwise.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'agentos.sqlite3'}"),
}
SQLITE_POOL_SIZE = env.int("SQLITE_POOL_SIZE", default=8)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The test database goes in var/; the file itself may be named anywhere: both folders must exist.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    if not str(DATABASES["default"]["NAME"]).startswith((":memory:", "file:")):
        Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # Django's SQLite backend with a per-process pool of open connections (agentos_site/sqlite/base.py).
    DATABASES["default"]["ENGINE"] = "agentos_site.sqlite"
    # WAL and IMMEDIATE transactions let daphne, the worker and the tests' threads write without
    # "database is locked" errors; the timeout waits for a writer instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory: the browser and scale-out tests run daphne in other processes on it (they are
    # given its path); one per test run, so two runs on one machine never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test_agentos_{os.getpid()}.sqlite3")}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A pool of connections per process (Django's, on psycopg_pool). Without one, daphne opens and
    # closes a connection per request: persistent connections belong to the request's context under
    # ASGI and would pile up until PostgreSQL refuses clients. Pools need CONN_MAX_AGE 0. A connection
    # is checked as it leaves the pool (CONN_HEALTH_CHECKS), so a restarted server costs no failed request.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env.int("DB_POOL_MAX_SIZE", default=12),
        # How long a request waits for a connection; then it answers 503 database_unavailable.
        "timeout": env.float("DB_POOL_TIMEOUT_SEC", default=10.0),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# How many requests to sync views one daphne process runs at once; the rest wait their turn on the
# event loop (agentos_site/asgi_handler.py). Async views (the decision long-poll) are not counted.
SYNC_VIEW_CONCURRENCY = env.int("SYNC_VIEW_CONCURRENCY", default=4)

# Redis: the channel layer, django-q2's broker and the shared cache (rate limits) when set.
REDIS_URL = env.str("REDIS_URL", default="")
CHANNEL_LAYER_PREFIX = env.str("CHANNEL_LAYER_PREFIX", default="agentos")
CHANNEL_CAPACITY = env.int("CHANNEL_CAPACITY", default=200)
# Seconds between the keep-alive `ping` events the WebSocket sends each client (SPEC section 9).
WS_PING_SEC = env.int("WS_PING_SEC", default=30)
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # channels-redis blocks in BRPOP for 5 s and redis-py's default socket timeout is 5 s too:
                # under load the client gave up first and the consumer died (close 1011). Wait longer; a
                # timeout that still happens closes the socket, and the dashboard reconnects and re-snapshots.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
                "prefix": CHANNEL_LAYER_PREFIX,
                "capacity": CHANNEL_CAPACITY,
                "expiry": 30,
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CHANNEL_LAYER_PREFIX,
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            # In memory, with group sends carried to daphne from the worker (see monitoring/layers.py).
            "BACKEND": "monitoring.layers.LocalChannelLayer",
            "CONFIG": {"capacity": CHANNEL_CAPACITY, "expiry": 30},
        }
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

Q_CLUSTER = {
    # The queue's name: CHANNEL_LAYER_PREFIX keeps deployments (and test runs) sharing one Redis apart.
    "name": CHANNEL_LAYER_PREFIX,
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": 120,
    "retry": 180,
    "max_attempts": 1,
    "catch_up": False,
    "ack_failures": True,
    # The pusher takes up to this many queued tasks per poll (django-q2's default is one).
    "bulk": env.int("Q_BULK", default=10),
    # Successful task records kept, per function: the every-minute schedules do not push out the rest
    # (failures are all kept by django-q2; `prune` keeps the newest PRUNE_TASK_FAILURES_KEEP).
    "save_limit": env.int("Q_SAVE_LIMIT", default=250),
    "save_limit_per": "func",
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    # How often the ORM broker looks for queued work: the wait a webhook-triggered sync adds, at most.
    Q_CLUSTER["poll"] = 0.1

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# daphne serves static files itself unless a reverse proxy does (SERVE_STATIC=false).
SERVE_STATIC = env.bool("SERVE_STATIC", default=True)

LOGIN_URL = "admin:login"

# Security: strict in production, where the proxy terminates TLS and says so in X-Forwarded-Proto.
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # The local SSOT's post-receive hook, health probes and Prometheus talk plain HTTP inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^webhooks/", r"^healthz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# SSOT (SPEC section 4).
SSOT_BACKEND = env.str("SSOT_BACKEND", default="local")
SSOT_LOCAL_PATH = Path(env.str("SSOT_LOCAL_PATH", default=str(VAR_DIR / "ssot.git")))
SSOT_BRANCH_LOCAL = "main"
GITHUB_TOKEN = env.str("GITHUB_TOKEN", default="")
GITHUB_SSOT_REPO = env.str("GITHUB_SSOT_REPO", default="")
GITHUB_SSOT_BRANCH = env.str("GITHUB_SSOT_BRANCH", default="main")
GITHUB_API_URL = env.str("GITHUB_API_URL", default="https://api.github.com")
SSOT_POLL_SEC = env.int("SSOT_POLL_SEC", default=60)
SSOT_HOOK_URL = env.str("SSOT_HOOK_URL", default="http://127.0.0.1:8000/webhooks/github")
SSOT_WRITE_RETRIES = env.int("SSOT_WRITE_RETRIES", default=8)
# The longest a request waits for the SSOT (write lock, write budget, rate limit): then 503 + Retry-After.
SSOT_WRITE_WAIT_SEC = env.float("SSOT_WRITE_WAIT_SEC", default=10.0)
# Background writers (audit flush, escalations) may wait longer, never while holding the write lock.
SSOT_BACKGROUND_WAIT_SEC = env.float("SSOT_BACKGROUND_WAIT_SEC", default=300.0)
# Budget of content-creating GitHub requests (trees, commits, refs, blobs), shared by every process.
GITHUB_WRITES_PER_MIN = env.int("GITHUB_WRITES_PER_MIN", default=80)
GITHUB_WRITES_PER_HOUR = env.int("GITHUB_WRITES_PER_HOUR", default=500)
# The control plane writes the messages it writes under messages/YYYY/MM/DD/ (SPEC section 4).
SSOT_DATED_FOLDERS = env.bool("SSOT_DATED_FOLDERS", default=False)
AUDIT_FLUSH_SEC = env.int("AUDIT_FLUSH_SEC", default=60)

# Webhooks (SPEC section 8): any one of the comma-separated secrets verifies (rotation).
GITHUB_WEBHOOK_SECRETS = csv(_secret("GITHUB_WEBHOOK_SECRET", "webhook_secret"))
XCODE_WEBHOOK_SECRET = _secret("XCODE_WEBHOOK_SECRET", "xcode_secret")
WEBHOOK_MAX_BODY_BYTES = 25 * 1024 * 1024
WEBHOOK_UNVERIFIED_RATE = env.str("WEBHOOK_UNVERIFIED_RATE", default="30/min")
API_USER_RATE = env.str("API_USER_RATE", default="1200/min")
# How many reverse proxies in front of daphne append to X-Forwarded-For. 0: the client is REMOTE_ADDR
# (X-Forwarded-For is ignored, since anyone can send it); N: the N-th entry from the right.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# Auth: API keys and JWT for agents and tools, the session for the admin and the dashboard.
JWT_SECRET = (
    strong_secret(env.str("JWT_SECRET"), variable="JWT_SECRET", minimum=MIN_SECRET, production=PRODUCTION)
    if env.str("JWT_SECRET", default="")
    else SECRET_KEY
)
JWT_ALGORITHM = env.str("JWT_ALGORITHM", default="HS256")
SIMPLE_JWT = {
    "SIGNING_KEY": JWT_SECRET,
    "ALGORITHM": JWT_ALGORITHM,
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env.int("JWT_ACCESS_TTL_SEC", default=900)),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=env.int("JWT_REFRESH_TTL_SEC", default=86400)),
    "UPDATE_LAST_LOGIN": False,
    # Tokens carry the user's cutoff (`auth_epoch`): a password change or a sign-out refuses older ones.
    "TOKEN_OBTAIN_SERIALIZER": "ssot.authentication.EpochTokenObtainPairSerializer",
    "TOKEN_REFRESH_SERIALIZER": "ssot.authentication.EpochTokenRefreshSerializer",
}
# How often an open WebSocket checks that its credential still holds (a revoked key is closed by then).
WS_AUTH_RECHECK_SEC = env.float("WS_AUTH_RECHECK_SEC", default=30.0)

# Brute force (django-axes on the cache above: Redis when set, so every process counts the same
# failures): a username or an address is refused for LOGIN_LOCKOUT_MIN minutes after
# LOGIN_FAILURE_LIMIT failed logins on /admin/login/ or /api/token/.
AXES_HANDLER = "axes.handlers.cache.AxesCacheHandler"
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MIN", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "core.throttling.client_address"
AXES_LOCKOUT_CALLABLE = "ssot.lockout.lockout_response"
AXES_VERBOSE = False
# Without Redis the cache is per process: fine for one daphne (make run), said in docs/security.md.
SILENCED_SYSTEM_CHECKS = [] if REDIS_URL else ["axes.W001"]

# Bounded growth (SPEC section 15, `manage.py prune`, daily): database-only rows older than this go.
PRUNE_WEBHOOKS_DAYS = env.int("PRUNE_WEBHOOKS_DAYS", default=30)
PRUNE_NOTIFICATIONS_DAYS = env.int("PRUNE_NOTIFICATIONS_DAYS", default=30)
PRUNE_TASK_FAILURES_KEEP = env.int("PRUNE_TASK_FAILURES_KEEP", default=1000)

# /metrics (SPEC section 15): open when unset, else this bearer token is required.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# Monitoring (SPEC section 10).
AGENTS = csv(env.str("AGENTS", default="coordinator,executor,reviewer"))
HEARTBEAT_INTERVAL_SEC = env.int("HEARTBEAT_INTERVAL_SEC", default=60)
HEARTBEAT_TIMEOUT_SEC = env.int("HEARTBEAT_TIMEOUT_SEC", default=1800)
ACK_TIMEOUT_DISPATCH_SEC = env.int("ACK_TIMEOUT_DISPATCH_SEC", default=300)
ACK_TIMEOUT_REVIEW_SEC = env.int("ACK_TIMEOUT_REVIEW_SEC", default=600)
NOTIFY_URLS = csv(env.str("NOTIFY_URLS", default=""))
TELEGRAM_BOT_TOKEN = env.str("TELEGRAM_BOT_TOKEN", default="")
TELEGRAM_ADMIN_CHAT_ID = env.str("TELEGRAM_ADMIN_CHAT_ID", default="")
# The next rung (SPEC section 10): reminders from the NOTIFY_ESCALATE_AFTER-th on go to these as well.
NOTIFY_ESCALATE_URLS = csv(env.str("NOTIFY_ESCALATE_URLS", default=""))
NOTIFY_ESCALATE_AFTER = env.int("NOTIFY_ESCALATE_AFTER", default=2)
# Base of the links in notifications; production requires https (monitoring.checks).
PUBLIC_URL = env.str("PUBLIC_URL", default="http://127.0.0.1:8000").rstrip("/")
# Approval reminders and expiry, escalation reminders (SPEC sections 5 and 10); 0 turns one off.
APPROVAL_REMIND_SEC = env.int("APPROVAL_REMIND_SEC", default=3600)
APPROVAL_EXPIRE_SEC = env.int("APPROVAL_EXPIRE_SEC", default=86400)
ESCALATION_REMIND_SEC = env.int("ESCALATION_REMIND_SEC", default=3600)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "ssot.authentication.ApiKeyAuthentication",
        "ssot.authentication.RevocableJWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Pages of 50 rows by default, 500 at most (`?limit=`, `?offset=`; a bad value is a 400).
    "DEFAULT_PAGINATION_CLASS": "core.pagination.BoundedLimitOffsetPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api_errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["core.throttling.ApiUserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": API_USER_RATE},
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "AgentOS control plane API",
    "DESCRIPTION": "Tasks, AMP/1.0 messages, acknowledgements, agents, escalations, audit and SSOT sync.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/",
    # Choice sets that share a field name get their own component names.
    "ENUM_NAME_OVERRIDES": {
        "AgentStatusEnum": "ssot.models.Agent.Status",
        "EscalationStatusEnum": "ssot.models.Escalation.Status",
        "AmpAgentNameEnum": "amp.spec.AGENT_NAMES",
    },
    # The decision long-poll is an async Django view that DRF cannot describe: a hook adds it; another
    # adds the answers of the layers around every view (401, 429, 503, 413, 415).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "ssot.api.schema.add_decision_longpoll",
        "ssot.api.schema.add_common_answers",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        "github": {"level": "WARNING"},
        # Apprise's debug lines carry target URLs and request errors (a Telegram bot token is in the URL).
        "apprise": {"level": "WARNING"},
        # django-axes logs every successful login at INFO; its lockouts are warnings (and audit lines).
        "axes": {"level": "WARNING"},
    },
}

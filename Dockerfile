# EventFlow API image: gunicorn for HTTP; the same image runs the Celery worker and beat.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin app

# DejaVu Sans prints ticket PDFs in any script (TICKET_PDF_FONT).
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

# Dependencies first, so code changes reuse this layer. Every runtime wheel is
# prebuilt (psycopg[binary], argon2-cffi), so no compiler is needed.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# Static files are collected at build time and served by WhiteNoise. The key is
# a throw-away for this one command: no secret is baked into the image.
RUN SECRET_KEY=collectstatic-only-not-a-secret-collectstatic-only-not-a-secret DATA_DIR=/tmp/build \
        python manage.py collectstatic --noinput \
    && rm -rf /tmp/build \
    && mkdir -p /app/var \
    && chown app:app /app/var

ENV DATA_DIR=/app/var \
    WHITENOISE_USE_FINDERS=false

USER app
EXPOSE 8000
# Settings in deploy/gunicorn.conf.py (WEB_CONCURRENCY workers, default 3). Serve it
# behind a buffering proxy such as nginx (docker-compose.yml's "proxy" service).
CMD ["gunicorn", "eventflow.wsgi", "-c", "deploy/gunicorn.conf.py"]

# The taskfarm server. Configure it with DATABASE_URL, TASKFARM_SECRET_KEY and the other
# variables of the README; compose.yaml runs it next to PostgreSQL.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY taskfarm ./taskfarm
RUN pip install . && rm -rf /src

# A SQLite database, if DATABASE_URL names one, lives in /data (the default sqlite:///taskfarm.db).
RUN useradd --system --uid 10001 --home-dir /data --create-home taskfarm
USER taskfarm
WORKDIR /data

EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '5000')}/healthz\", timeout=4)"]
CMD ["taskfarm", "serve", "--host", "0.0.0.0"]

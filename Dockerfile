# One image of this project for the compose stack (endpoints, gateway, Locust); Toxiproxy runs
# Shopify's own image. Build: `docker compose build` (or `docker build -t model-chaos-harness:local .`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
COPY . .

# The Makefile's own install commands, so the image runs what `make setup` installs
# (tests/test_compose.py checks that the two stay the same).
RUN python -m pip install --quiet --disable-pip-version-check --upgrade pip
RUN python -m pip install --quiet --disable-pip-version-check -e '.[dev]'

# Not root at run time; /records is where the Locust services write (a named volume inherits this owner).
RUN useradd --create-home --uid 1000 chaos && mkdir /records && chown chaos /records
USER chaos

CMD ["chaos-harness", "--help"]

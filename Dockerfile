# One image for every process (web, worker, beat, flower, migrate); docker-compose.yml picks the command.
FROM python:3.11-slim

# Production unless told otherwise: the production config refuses emulator auth, debug and default secrets, so
# a deployment that forgets a variable fails to start instead of accepting unsigned tokens.
ENV APP_ENV=production \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OPENBLAS_NUM_THREADS=1
WORKDIR /app

RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 app

# Dependencies from the hash-checked production lock, in their own layer (rebuilt only when the lock changes);
# then the project alone: no dependencies, no build isolation (the lock holds setuptools and wheel too).
COPY requirements/base.txt ./requirements/base.txt
RUN pip install --require-hashes -r requirements/base.txt

COPY setup.cfg setup.py pyproject.toml README.md ./
COPY config ./config
COPY models ./models
COPY webapp ./webapp
COPY tasks ./tasks
COPY domain ./domain
# The C engine of the GPX/TCX parser (setup.py) needs a compiler for this step only. Editable, so the extension is
# built beside the sources /app imports; the check fails the image if it did not build (instead of leaving the
# slower pure-Python engines).
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install --no-deps --no-build-isolation -e . \
    && python -c "from domain.algorithms.parsing import xmlnative; assert xmlnative.available()" \
    && apt-get purge -y gcc libc6-dev && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*

USER app
EXPOSE 8000 5555
# gevent workers (2 processes) hold the WebSockets; settings and the gthread fallback: config/gunicorn.py.
CMD ["gunicorn", "--config", "python:config.gunicorn", "webapp:create_app()"]

# aftershock's image: the `aftershock` CLI, the shipped experiments and load profiles.
#
#   docker build -t aftershock:0.1.0 .                       # with a Docker engine
#   make image                                               # here: buildah, no registry, no Docker
#
# BASE is the runtime base, BUILD_BASE the builder's (it needs `python3 -m venv` with pip).
# Both default to the official slim Python image. `make image` builds both locally from Debian
# packages (testbed/images/suite_image.py, mmdebstrap) and passes them with --build-arg, so the
# build needs no registry. Either way the Python is the base's and the venv is built against it.
ARG BASE=python:3.11-slim-bookworm
ARG BUILD_BASE=${BASE}
# Extra options for pip in the builder, e.g. "--cert /run/ca.crt" behind a TLS-inspecting proxy
# (make image passes the host's CA bundle so) or "--no-index --find-links /wheels".
ARG PIP_OPTIONS=""

# ---------------------------------------------------------------- builder
FROM ${BUILD_BASE} AS builder
ARG PIP_OPTIONS
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/venv
WORKDIR /app

# Dependencies first, in their own layer: it is rebuilt only when the pins change.
# Only the runtime dependencies of pyproject.toml (not the dev tools in the lock), each at the
# version requirements.lock pins, and wheels only: the builder needs no compiler either.
# kubernetes ships a second, asyncio copy of every API and model (kubernetes.aio, ~35 MB of
# source) that nothing here imports: it is removed, as are the packages' own test suites, and
# aiohttp with its own dependencies (~12 MB), which only kubernetes.aio imported.
# The dependencies then run from bytecode alone: each package is compiled next to its sources
# (compileall -b) and the sources go (~70 MB with the chaostoolkit, SQL and metrics
# dependencies; kubernetes' generated client alone is 33 MB of source). Imports are as fast and
# tracebacks still name file, line and function, without the line's text. Kept as source:
# pytest and its plugins (pytest rewrites the asserts of its plugins from source) and
# single-file modules; aftershock itself, installed below, keeps its source too.
COPY pyproject.toml requirements.lock ./
RUN python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/runtime.txt \
 && /opt/venv/bin/pip install $PIP_OPTIONS --only-binary=:all: -c requirements.lock \
      -r /tmp/runtime.txt \
 && rm -rf /opt/venv/lib/python3*/site-packages/kubernetes/aio \
 && /opt/venv/bin/pip uninstall -q -y aiohttp aiohttp-retry aiohappyeyeballs aiosignal \
      frozenlist multidict propcache yarl \
 && find /opt/venv/lib -depth -type d -path "*/site-packages/*/tests" -exec rm -rf {} + \
 && for d in /opt/venv/lib/python3*/site-packages/*/; do \
      case "$(basename "$d")" in \
        *.dist-info|__pycache__|_pytest|pytest|pluggy|pytest_asyncio|anyio) continue;; \
        pip|setuptools|pkg_resources|_distutils_hack) continue;; \
      esac; \
      if /opt/venv/bin/python -m compileall -q -b -j 0 "$d" >/dev/null; then \
        find "$d" -name "*.py" -delete && find "$d" -depth -type d -name __pycache__ -exec rm -rf {} +; \
      fi; \
    done

# The project itself, as the wheel a user would pip install: the experiments, the default
# locustfile and k8s-job.yaml travel inside it as package data (aftershock/checks, experiments
# and loadtests are links to the top-level directories, which the wheel build follows). Then
# pip goes, and everything is compiled once: the root filesystem is read-only at run time, so
# nothing could be cached later and every locust process would recompile what it imports.
# The experiments link is resolved from /, not from /app: there `import aftershock` would find
# the source tree, and the link would point into the builder (the smoke test below checks it).
# conftest.py: the shared experiment fixtures, which the package links as aftershock/fixtures.py.
COPY README.md k8s-job.yaml conftest.py ./
COPY aftershock ./aftershock
COPY checks ./checks
COPY experiments ./experiments
COPY loadtests ./loadtests
RUN /opt/venv/bin/pip install $PIP_OPTIONS --only-binary=:all: "setuptools>=68" \
 && /opt/venv/bin/pip wheel --no-deps --no-build-isolation -w /tmp/wheels . \
 && /opt/venv/bin/pip install --no-deps /tmp/wheels/aftershock-*.whl \
 && /opt/venv/bin/pip uninstall -q -y pip setuptools \
 && /opt/venv/bin/python -m compileall -q -j 0 /opt/venv/lib >/dev/null \
 && mkdir -p /srv/aftershock \
 && ln -s "$(cd / && /opt/venv/bin/python -c 'import aftershock.resources as r; print(r.experiments_dir())')" \
      /srv/aftershock/experiments

# ---------------------------------------------------------------- runtime
FROM ${BASE}
LABEL org.opencontainers.image.title="aftershock" \
      org.opencontainers.image.description="In-cluster resilience verification for Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /opt/venv /opt/venv
# The Job's working directory: experiments/ there is the installed package's, so an experiment
# path given to `job run` (experiments/test_pod_kill.py) means what it means in a checkout.
COPY --from=builder /srv/aftershock /srv/aftershock
# A numeric non-root user (runAsNonRoot can only verify a numeric one); HOME in /tmp, which
# the Job mounts writable (an emptyDir) next to /results.
RUN echo "aftershock:x:65532:65532:aftershock:/tmp:/usr/sbin/nologin" >> /etc/passwd \
 && echo "aftershock:x:65532:" >> /etc/group \
 && mkdir -p /results && chown 65532:65532 /results
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/tmp \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTEST_ADDOPTS="-p no:cacheprovider"
USER 65532:65532
WORKDIR /results
# Smoke test: every native extension loads against this base's libraries (a manylinux wheel
# can need a system library the base lacks, e.g. libstdc++ for greenlet).
RUN python3 -c "import greenlet, gevent, zmq, msgpack, psutil, pydantic_core, yaml, kubernetes" \
 && python3 -c "import pytest_asyncio, httpx, aftershock.fixtures, aftershock.kube" \
 && python3 -c "import chaosk8s.pod.actions, sqlalchemy.dialects.postgresql, psycopg, alembic" \
 && python3 -c "import prometheus_client, jinja2, rich" \
 && aftershock --help >/dev/null \
 && test -f /srv/aftershock/experiments/test_pod_kill.py
ENTRYPOINT ["/opt/venv/bin/aftershock"]
CMD ["--help"]

# PostgreSQL for the history store's tests (tests/pg_cluster.py starts a private cluster
# from these binaries on a loopback port; nothing is left running). Debian's package,
# installed once; the target does nothing when the server programs are there.
.PHONY: postgres

postgres:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  echo "postgres: $$(ls -d /usr/lib/postgresql/*/bin/initdb | tail -1) present"; \
	else \
	  echo "postgres: installing Debian's postgresql package"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
	fi

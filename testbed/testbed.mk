# The local Kubernetes testbed (see testbed/README.md). It runs as root with the system
# python3 (stdlib only), never the project venv: it must work before the venv exists.
TESTBED_PYTHON ?= $(firstword $(wildcard /usr/bin/python3) python3)
TESTBED_CLI := cd testbed && $(TESTBED_PYTHON) -m tb

.PHONY: testbed-up testbed-down testbed-status testbed-import

testbed-up:
	@$(TESTBED_CLI) up

testbed-down:
	@$(TESTBED_CLI) down

testbed-status:
	@$(TESTBED_CLI) status

# Your own image: an OCI or docker-archive tarball, imported into every node and remembered
# (in /var/cache/aftershock/user-images), so testbed-up imports it again after a down.
testbed-import:
	@test -n "$(IMAGE)" || { echo "usage: make testbed-import IMAGE=path/to/image.tar" >&2; exit 2; }
	@$(TESTBED_CLI) import-image "$(abspath $(IMAGE))"

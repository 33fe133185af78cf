# A Prometheus Pushgateway for the test of `aftershock run --push-gateway`
# (tests/unit/test_push_gateway.py). Built from its Go module
# (github.com/prometheus/pushgateway, fetched through the Go module proxy) and cached outside
# the repository by version like the testbed's components: once built, `make pushgateway` is
# a no-op. `go install mod@version` would ask the proxy for the module's version list, which
# it refuses, so the module's own source is built with its own go.mod and go.sum.
PUSHGATEWAY_VERSION ?= v1.11.1
PUSHGATEWAY_DIR     := /var/cache/aftershock/pushgateway-$(PUSHGATEWAY_VERSION)
PUSHGATEWAY         := $(PUSHGATEWAY_DIR)/pushgateway
export PUSHGATEWAY_BIN := $(PUSHGATEWAY)

.PHONY: pushgateway

pushgateway: $(PUSHGATEWAY)

$(PUSHGATEWAY):
	mkdir -p $(PUSHGATEWAY_DIR)
	rm -rf $(PUSHGATEWAY_DIR)/src
	src=$$(GOTOOLCHAIN=local go mod download -json \
		github.com/prometheus/pushgateway@$(PUSHGATEWAY_VERSION) \
		| sed -n 's/^\t"Dir": "\(.*\)",$$/\1/p') && test -n "$$src" \
		&& cp -r "$$src" $(PUSHGATEWAY_DIR)/src
	chmod -R u+w $(PUSHGATEWAY_DIR)/src
	cd $(PUSHGATEWAY_DIR)/src && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
		go build -trimpath -o $@.tmp .
	mv $@.tmp $@
	rm -rf $(PUSHGATEWAY_DIR)/src

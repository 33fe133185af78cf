# A headless browser for the report's e2e test (tests/e2e/test_report_browser.py): Debian's
# chromium, driven by playwright (a dev dependency) through this executable, so playwright
# never downloads a browser of its own. Installed once; later runs only check it is there.
CHROMIUM := /usr/bin/chromium

.PHONY: browser

browser: $(CHROMIUM)

$(CHROMIUM):
	@echo "== installing Debian's chromium (headless browser for the report's e2e test)"
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium
	@test -x $(CHROMIUM)

# make test (through e2e) and make demo need it.
e2e demo: browser

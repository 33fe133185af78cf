# make demo: testbed up, the well-behaved sample app deployed, the suite run, the report shown.
DEMO_NS      := aftershock-demo
DEMO_CONFIG  := examples/demo.yaml
DEMO_KUBECTL := .testbed/kubectl --kubeconfig .testbed/kubeconfig

.PHONY: demo demo-app

demo-app: testbed-up
	@echo "== deploying the sample app into namespace $(DEMO_NS)"
	@$(DEMO_KUBECTL) create namespace $(DEMO_NS) --dry-run=client -o yaml | $(DEMO_KUBECTL) apply -f - >/dev/null
	@$(DEMO_KUBECTL) apply -n $(DEMO_NS) -k testbed/manifests/web
	@$(DEMO_KUBECTL) rollout status -n $(DEMO_NS) deployment/dep --timeout=240s
	@$(DEMO_KUBECTL) rollout status -n $(DEMO_NS) deployment/web --timeout=240s

demo: venv demo-app
	@echo "== running the suite under steady load: posture, pod kill, rolling update, drain, PDB, probes, HPA"
	@code=0; $(VENV)/bin/aftershock run --config $(DEMO_CONFIG) || code=$$?; \
	  echo; echo "== report"; $(VENV)/bin/aftershock report results; \
	  echo; echo "results: results/results.json, results/junit.xml, results/timelines/"; \
	  exit $$code

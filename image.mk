# aftershock's own image, from the project's Dockerfile, without Docker or a registry:
# buildah on Debian-made base images, then imported into every testbed node's containerd.
# Content-keyed (testbed/images/suite_image.py): unchanged sources are not built again.
.PHONY: image image-build

image:
	@$(TESTBED_PYTHON) testbed/images/suite_image.py import

image-build:
	@$(TESTBED_PYTHON) testbed/images/suite_image.py build

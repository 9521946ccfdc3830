# Two commands on a fresh machine with Python 3.11+: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# CI and `make demo` install the runtime dependencies at the versions the image ships
# (image/constraints.txt); test-extra packages not pinned there resolve freely.
CONSTRAINTS := image/constraints.txt

.PHONY: demo test test-tools lint typecheck bench clean fuzz docs policy-reads

$(STAMP): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "guard needs Python >= 3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e ".[test]"
# OPA's Go library (the OPA engine tests evaluate with it): its wheel declares Requires-Python >=3.14,
# so pip's resolver refuses it as a dependency of guard (Python >=3.11), yet it runs on 3.11 (a ctypes
# wrapper of a Go c-shared library, manylinux_2_34 x86_64). Installed on its own, the check skipped
# for it alone.
	$(BIN)/python -m pip install --quiet --ignore-requires-python "opa-golib-python-bindings==0.4.4"
	touch $(STAMP)

# `make demo` needs the runtime only (the test extra is large): its own stamp.
RUNTIME_STAMP := $(VENV)/.installed-runtime
$(RUNTIME_STAMP): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "guard needs Python >= 3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e .
	touch $(RUNTIME_STAMP)

demo: $(RUNTIME_STAMP)
	$(BIN)/guard demo $(DEMO_ARGS)

# What the tests start for real: installed when root with apt, else the one line to run.
TEST_PACKAGES := docker-registry apache2-utils prometheus chromium
TEST_COMMANDS := docker-registry htpasswd prometheus chromium
test-tools:
	@missing=""; for c in $(TEST_COMMANDS); do command -v $$c >/dev/null || missing="$$missing $$c"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing what the tests need:$$missing"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(TEST_PACKAGES) >/dev/null \
			|| { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(TEST_PACKAGES) >/dev/null; }; \
	else \
		echo "missing:$$missing; the tests that need them are skipped (see the summary). To run them:"; \
		echo "  sudo apt-get install $(TEST_PACKAGES)"; \
	fi

test: $(STAMP) test-tools
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check guard webhook tests benchmarks
	$(BIN)/ruff format --check guard webhook tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	for script in benchmarks/*.py; do $(BIN)/python $$script || exit 1; done

# What each shipped policy reads (guard/policy/library_reads.json, the decision caches' keys): kept so
# that start-up does not analyse the library; write it again after changing a policy, the analysis
# (guard/policy/reads.py) or regorus. tests/policy/test_kept_reads.py fails while it is stale.
policy-reads: $(STAMP)
	$(BIN)/python -m guard.policy.kept_reads

# 10^6 generated inputs across every parser of untrusted bytes; exit 1 on any crash
fuzz: $(STAMP)
	$(BIN)/python benchmarks/fuzz_parsers.py $(FUZZ_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# ---- container image (Containerfile, image/build.sh; buildah, no daemon) ----
IMAGE ?= localhost/guard:$(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
.PHONY: image image-test image-constraints

image: $(STAMP)
	PYTHON=$(BIN)/python IMAGE=$(IMAGE) ./image/build.sh

# Builds the image (base made by debootstrap when it is not in local storage: CI cannot pull
# public images) and runs it read-only as uid 65532: tests/image.
image-test: $(STAMP)
	PYTHON=$(BIN)/python IMAGE=$(IMAGE) BOOTSTRAP_BASE=1 ./image/build.sh
	GUARD_IMAGE=$(IMAGE) $(BIN)/python -m pytest -q -s -p no:cacheprovider tests/image

# Re-resolve image/constraints.txt from pyproject.toml's dependencies (newest allowed versions).
image-constraints: $(STAMP)
	rm -rf build/constraints-wheels
	$(BIN)/python -m pip wheel --quiet --wheel-dir build/constraints-wheels .
	$(BIN)/python image/constraints.py build/constraints-wheels

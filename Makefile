# The two commands of the README. Each builds its own virtualenv the first time.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.enfoads-installed
# torch goes in first and alone: on the project's machines this exact version is a CPU build
# on disk; any other spec (or a package that pulls torch in first) downloads GBs of CUDA.
TORCH_SPEC ?= torch==2.13.0
# InsightFace without its dependencies: it lists the GUI opencv-python (see pyproject.toml).
INSIGHTFACE_SPEC ?= insightface>=0.7.3

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[test]"
	$(BIN)/python -m pip install -q --no-deps "$(INSIGHTFACE_SPEC)"
	# Tests only: the real CLIP BPE vocabulary file that open-clip-torch ships (never imported).
	$(BIN)/python -m pip install -q --no-deps "open-clip-torch==3.3.0"
	touch $@

.PHONY: studio test test-colab install system
install: $(STAMP)

# STUDIO_ARGS: more `enfoads studio` options, e.g. STUDIO_ARGS="--port 8870".
studio: $(STAMP)
	$(BIN)/enfoads studio $(STUDIO_ARGS)

CLIENT := clients/typescript

$(CLIENT)/node_modules/.package-lock.json: $(CLIENT)/package-lock.json
	cd $(CLIENT) && npm ci --no-audit --no-fund

# Debian packages the tests use (Node.js + npm, espeak-ng, DejaVu fonts, Chromium); only what
# is missing is installed (with sudo when not root).
system:
	bash scripts/install-system.sh

test: system $(STAMP) $(CLIENT)/node_modules/.package-lock.json
	# The TypeScript client: types from the OpenAPI schema, then tsc.
	cd $(CLIENT) && npm run --silent check
	# The formatter and the linter (pyproject.toml's [tool.ruff]): an undefined name fails
	# here, not in a user's request. `$(BIN)/ruff format enfoads tests benchmarks` fixes the format.
	$(BIN)/ruff format --check --no-cache enfoads tests benchmarks
	$(BIN)/ruff check --no-cache enfoads tests benchmarks
	# The suite, and beside it the Colab stage (scripts/colab-env.sh: Colab's Python and
	# preinstalled packages, OpenCV 5, ipywidgets 7.7.1..., the notebook's own install cell,
	# then the panels, avatar and face tests there): two stages in parallel on the core the
	# suite leaves idle (it waits on servers, browsers and workers), the stage's log in
	# test-artifacts/colab.log (printed whole when it fails). COLAB_ENV=0 skips the stage.
	mkdir -p test-artifacts; \
	if [ "$(COLAB_ENV)" != "0" ]; then \
	  bash scripts/colab-env.sh > test-artifacts/colab.log 2>&1 & colab=$$!; \
	fi; \
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -rs $(PYTEST_ARGS); rc=$$?; \
	if [ -n "$${colab:-}" ]; then \
	  if ! wait $$colab; then echo "Colab stage failed:"; cat test-artifacts/colab.log; exit 1; fi; \
	  echo "Colab stage:"; grep -E "^colab-env:|passed|failed" test-artifacts/colab.log; \
	fi; \
	exit $$rc

# A Colab-like virtualenv (.colab-venv, built once), the notebook under nbval there, and the
# tests of what meets Colab's packages (scripts/colab-env.sh).
test-colab:
	bash scripts/colab-env.sh

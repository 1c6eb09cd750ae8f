# aiaudit: two commands on a fresh machine with Python 3.11 -- `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
COMPILED := $(VENV)/.compiled
SYSTEM_STAMP := .aiaudit-system-deps
# Debian packages: Chromium for the app's end-to-end test, Noto CJK for Korean documents,
# poppler-utils (pdftoppm) to rasterise PDFs in tests, Pango for WeasyPrint.
APT_PACKAGES := chromium fonts-noto-cjk poppler-utils libpango-1.0-0 libpangoft2-1.0-0

.PHONY: demo test app bench install system-deps clean schemas

install: $(STAMP) $(COMPILED)

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[test]"
	touch $(STAMP)

# numba's cache of the TreeSHAP kernels (interpret/__pycache__); rebuilt when their source changes
$(COMPILED): $(STAMP) interpret/path_tables.py
	$(BIN)/python -m interpret.path_tables
	touch $(COMPILED)

system-deps: $(SYSTEM_STAMP)

$(SYSTEM_STAMP):
	@if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
		if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi; \
	else echo "note: cannot apt-get install $(APT_PACKAGES); browser and CJK-font steps will say so"; fi
	touch $(SYSTEM_STAMP)

demo: install system-deps
	$(BIN)/aiaudit demo
	@if ! $(BIN)/aiaudit users list 2>/dev/null | grep -q demo-admin; then \
		pw=$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(12))'); \
		echo "$$pw" | $(BIN)/aiaudit users add demo-admin --role admin --password-stdin >/dev/null && \
		echo "review app: sign in as demo-admin with password $$pw (shown once; add users with aiaudit users add)"; \
	fi
	$(BIN)/aiaudit app

# One worker per core, at most 4 (each trains its own demo models); a module's tests stay on one worker.
test: install system-deps
	$(BIN)/python -m pytest -n auto --maxprocesses 4 --dist loadscope

bench: install
	$(BIN)/python -m benchmarks.run

schemas: install
	$(BIN)/python -m audit.schemas

clean:
	rm -rf $(VENV) .aiaudit out $(SYSTEM_STAMP)

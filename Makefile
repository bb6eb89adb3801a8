# voicekiosk: `make run` starts the app, `make test` runs every test. Both set up what they need.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=
SYSTEM_PACKAGES := chromium espeak-ng sox iproute2 openssl libnss3-tools systemd

.DEFAULT_GOAL := help
.PHONY: help run kiosk dev demo test check lint fmt bench soak system-deps clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[demo,dev]'
	touch $@

run: $(STAMP)  ## start voicekiosk (HTTPS on :8116); pass options with ARGS="--port 9000"
	$(BIN)/voicekiosk serve $(ARGS)

kiosk: $(STAMP)  ## serve, and show the page full screen in Chrome/Chromium on this machine's display
	$(BIN)/voicekiosk kiosk $(ARGS)

demo: $(STAMP)  ## the whole product against a local fake agent: no key, no network
	$(BIN)/voicekiosk serve --demo $(ARGS)

dev: $(STAMP)  ## contributors' loop: demo agent, verbose, restarts when Python changes
	$(BIN)/watchfiles --filter python '$(BIN)/voicekiosk serve --demo -v $(ARGS)' voicekiosk

system-deps:  ## Debian packages the browser tests need (installed when root)
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else echo "Missing:$$missing. Run: sudo apt-get install$$missing" >&2; exit 1; fi; \
	fi

# As root the suite runs in a network namespace of its own where only loopback exists, so no
# test can reach any other address even by mistake.
ISOLATED = if [ "$$(id -u)" = 0 ] && unshare --net true 2>/dev/null; then \
	  unshare --net sh -c 'ip link set lo up && exec "$$0" "$$@"' $(1); \
	else \
	  echo "(not root: no private network namespace; the browser tests will be skipped)"; $(1); \
	fi

test: $(STAMP) system-deps  ## run every test, the real-browser ones included
	@$(call ISOLATED,$(BIN)/pytest $(ARGS))

check: $(STAMP)  ## the inner loop: every test but the real-browser and slow ones (well under a minute)
	$(BIN)/pytest -m "not browser and not slow" -q $(ARGS)

lint: $(STAMP)  ## ruff (lint + format check) and mypy
	$(BIN)/ruff check voicekiosk tests
	$(BIN)/ruff format --check voicekiosk tests
	$(BIN)/mypy voicekiosk

fmt: $(STAMP)  ## fix what ruff can
	$(BIN)/ruff check --fix voicekiosk tests
	$(BIN)/ruff format voicekiosk tests

bench: $(STAMP) system-deps  ## measure broker throughput, latency, start-up, memory, page connect time and CPU
	@$(call ISOLATED,$(BIN)/python -m tests.bench $(ARGS))

soak: $(STAMP) system-deps  ## a kiosk page for 10 minutes of drops, refusals and a server restart (ARGS="--minutes 2")
	@$(call ISOLATED,$(BIN)/python -m tests.soak $(ARGS))

clean:  ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache tests/artifacts dist build

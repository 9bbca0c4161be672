# VoxEdge: the two commands are `make run` and `make test` (see README.md).
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages the tests and benchmarks use: SIPp, baresip, iproute2 (loopback namespaces),
# PostgreSQL (the store tests start a throwaway cluster of their own; no service is needed).
APT_TEST := sip-tester baresip iproute2 postgresql

.PHONY: run standalone test bench lint protos system-deps clean
PROTOS := protos/voxedge/v1/edge.proto

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# Install what is missing, once: `apt-get update` only when something must be installed.
system-deps:
	@missing=""; \
	command -v sipp >/dev/null || missing="$$missing sip-tester"; \
	command -v baresip >/dev/null || missing="$$missing baresip"; \
	PATH="$$PATH:/usr/sbin:/sbin" command -v ip >/dev/null || missing="$$missing iproute2"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

# The control plane and a paired edge with a demo organisation provisioned through the HTTPS
# API (examples/demo.py prints the softphone credentials and an admin token). The edge alone on
# a local TOML file: `make standalone`.
run: $(STAMP)
	$(BIN)/python examples/demo.py

standalone: $(STAMP)
	@echo "Demo phones (examples/standalone.toml): 1001 / alice-secret and 1002 / bob-secret in"
	@echo "domain voxedge.test. Point a softphone's registrar / outbound proxy at 127.0.0.1:8060"
	@echo "(UDP or TCP) or 127.0.0.1:8061 (TLS, self-signed). 1002 is challenged with MD5 only,"
	@echo "for older softphones. baresip accounts line:"
	@echo '  <sip:1002@voxedge.test>;auth_pass=bob-secret;outbound="sip:127.0.0.1:8060"'
	@echo "See README.md. Ctrl-C stops the edge."
	$(BIN)/voxedge-edge --config examples/standalone.toml

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy sip media edge controlplane provisioning

test: $(STAMP) system-deps lint
	$(BIN)/pytest -q -p no:cacheprovider

# Regenerate the committed gRPC modules next to the .proto (tests/unit/test_protos.py fails
# when they drift from what this writes).
protos: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -I . --python_out=. --pyi_out=. --grpc_python_out=. $(PROTOS)

bench: $(STAMP) system-deps
	@# --install: apt-get install kamailio when missing, to measure it in the same run
	$(BIN)/python benchmarks/run.py --install $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis

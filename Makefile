# The two commands a new user needs (both install what the machine lacks first):
#   make demo   the simulated fleet and the monitor in one process, no broker needed
#   make test   every test, against a real Kafka broker that the tests start themselves
PYTHON ?= python3
DEMO_ARGS ?=

.PHONY: setup demo test test-fast

setup:
	./scripts/setup.sh

demo: setup
	$(PYTHON) -m monitor demo $(DEMO_ARGS)

test: setup
	$(PYTHON) -m pytest

test-fast: setup
	$(PYTHON) -m pytest -m "not kafka"

# The two commands README promises, plus helpers. Every target sets up .venv first (idempotent).
PY := .venv/bin/python

.PHONY: setup demo test test-fast bench lint clean

setup:
	bash scripts/setup.sh

demo: setup
	$(PY) scripts/demo.py $(DEMO_ARGS)

test: setup
	$(PY) -m pytest -q $(TEST_ARGS)

# Unit tests only: no ROS processes, no training runs (under 30 s on an idle 2-core machine).
test-fast: setup
	$(PY) -m pytest -q -m "not ros and not slow" $(TEST_ARGS)

bench: setup
	$(PY) bench/run_all.py $(BENCH_ARGS)

lint: setup
	$(PY) -m flake8 --config setup.cfg .

clean:
	rm -rf demo_out runs .pytest_cache

# The two entry points of the README; each sets itself up on a fresh machine.
#   make demo   an int8 MLP trained on the digits data set, run on the cycle-exact chip model
#   make test   the whole test suite (Icarus and Verilator included)

VENV ?= .venv
PY := $(VENV)/bin/python
JOBS ?= 2

.PHONY: setup demo test bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

# Icarus Verilog is not on PyPI: install it from Debian's packages if missing.
setup: $(VENV)/.installed
	@command -v iverilog >/dev/null 2>&1 || { \
	  echo "installing iverilog (apt-get)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq iverilog >/dev/null; }

demo: setup
	$(VENV)/bin/rramcim run

test: setup
	$(PY) -m pytest -n $(JOBS) -q

bench: setup
	$(PY) -m rramcim.sim.bench_macro
	$(PY) -m rramcim.sim.bench_noc --plot docs/img
	$(PY) -m rramcim.sim.bench_gemm --rtl verilator
	$(PY) -m rramcim.sim.bench_speed

clean:
	rm -rf $(VENV) build *.egg-info

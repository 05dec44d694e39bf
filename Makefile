# Hotline: the two commands of the quick start are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench bench-smoke fuzz clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/hotline demo

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

# Full run (about 16 minutes on 2 cores): ceilings, the two-client benchmark, N pairs on
# Hotline and the same load on Synapse (bench/synapse.py creates bench/.synapse-venv with
# matrix-synapse from PyPI on first use), then BENCHMARKS.md. Each step first waits (bounded)
# for the 1-minute load average to fall below BENCH_QUIET and records what it saw.
BENCH_QUIET ?= 1.0
# Pairs x messages per sender for hotline_load.py and synapse.py. The 1,000-pair level (1,000
# receiver websockets on Hotline, 1,000 receivers long-polling /sync on Synapse) runs on a server
# of its own on each side, with at most 100 sends in flight (benchlib.SEND_WINDOW); it adds
# about 7 minutes (3 on Hotline, 4 on Synapse; untimed set-up of 2,000 clients is most of it).
# Leave it out to save them:
#   make bench LOAD_PLAN=1x200,10x40,100x8
LOAD_PLAN ?= 1x200,10x40,100x8,1000x1
# Then rising offered load, open loop: PAIRS:total msg/s,... each held 8 s (both servers), to
# compare messages/s at equal p99; steps every 8 msg/s from 16 to 48, where both servers have
# been seen to saturate (about 9 s per step per server).
LOAD_SWEEP ?= 10:4,8,16,24,32,40,48,64,96,128
bench: $(STAMP)
	$(BIN)/python bench/ceilings.py --quiet-load $(BENCH_QUIET) --quiet-wait 600
	$(BIN)/python bench/messages.py
	$(BIN)/python bench/hotline_load.py --plan $(LOAD_PLAN) --sweep $(LOAD_SWEEP) --quiet-load $(BENCH_QUIET) --quiet-wait 120
	$(BIN)/python bench/synapse.py --plan $(LOAD_PLAN) --sweep $(LOAD_SWEEP) --quiet-load $(BENCH_QUIET) --quiet-wait 120
	$(BIN)/python bench/scaleout.py --quiet-load $(BENCH_QUIET) --quiet-wait 120
	$(BIN)/python bench/archive.py
	$(BIN)/python bench/calls.py
	$(BIN)/python bench/report.py

# Tiny sizes for CI: checks every benchmark runs and the report renders; keeps no results.
# The Synapse step is skipped, loudly, when bench/.synapse-venv does not exist.
bench-smoke: $(STAMP)
	$(BIN)/python bench/messages.py --smoke
	$(BIN)/python bench/group_send.py --members 3 --messages 2
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(BIN)/python bench/ceilings.py --smoke --out "$$tmp" && \
	$(BIN)/python bench/hotline_load.py --smoke --out "$$tmp" && \
	$(BIN)/python bench/synapse.py --smoke --no-install --out "$$tmp" && \
	$(BIN)/python bench/scaleout.py --smoke --out "$$tmp" && \
	$(BIN)/python bench/archive.py --smoke --out "$$tmp" && \
	$(BIN)/python bench/calls.py --smoke --out "$$tmp" && \
	$(BIN)/python bench/report.py --results "$$tmp" --out "$$tmp/BENCHMARKS.md" && \
	echo "bench-smoke: report rendered ($$(wc -l < "$$tmp/BENCHMARKS.md") lines); results not kept"

# Each atheris harness under fuzz/ for FUZZ_SECONDS (docs/hardening.md). New corpus entries go
# to fuzz/work/<name>/ (the committed seeds in fuzz/corpus/ are only read); every distinct crash
# is saved in fuzz/work/<name>/crashes/ and fails the target after all harnesses ran.
FUZZ_SECONDS ?= 30
FUZZ_HARNESSES := card envelope sealed_record tree_head federation_request proofs ws_frame

fuzz: $(STAMP)
	$(BIN)/pip install -q -e '.[dev,fuzz]'
	rm -rf fuzz/work
	@for name in $(FUZZ_HARNESSES); do \
		mkdir -p fuzz/work/$$name/corpus; \
		echo "== fuzz_$$name ($(FUZZ_SECONDS) s)"; \
		HOTLINE_FUZZ_KEEP_GOING=1 HOTLINE_FUZZ_OUT=fuzz/work/$$name \
		$(BIN)/python fuzz/fuzz_$$name.py -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
			-rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix=fuzz/work/$$name/ \
			fuzz/work/$$name/corpus fuzz/corpus/$$name 2>fuzz/work/$$name/log.txt \
			|| { tail -30 fuzz/work/$$name/log.txt; exit 1; }; \
	done
	$(BIN)/python fuzz/summary.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

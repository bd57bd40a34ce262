# tally: the two commands a new user needs are `make demo` and `make test`.
# Both run `setup` (installs what is missing, and nothing else) and `build` first.

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
DEMO_DIR   ?= data/demo
DEMO_PORT  ?= 8080

.PHONY: setup build build-asan test test-fast demo bench clean fuzz-short fuzz

setup:
	@bash scripts/setup

# Debug information is line tables only (-g1): stack traces, sanitizer reports and perf keep file
# and line, and the builds take about a third less time than with full -g. For a debugger that
# shows local variables, build with RELEASE_FLAGS="-O2 -g -DNDEBUG".
RELEASE_FLAGS ?= -O2 -g1 -DNDEBUG

build: setup
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$(RELEASE_FLAGS)" >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# The same code and tests under AddressSanitizer and UndefinedBehaviorSanitizer (the benchmarks
# are not built here: they run from the release build).
build-asan: setup
	@cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DTALLY_SANITIZE=ON \
	  -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS) --target tally tally_tests http_tests kafka_tests clickhouse_tests clickhouse_cli_tests clickhouse_conformance_tests

test-fast: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test: build build-asan
	@echo "== tests (release build)"
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	@echo "== tests (AddressSanitizer + UBSan build)"
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS)
	@echo "== fuzzing the decoders (45 s, the fuzzers at once)"
	@$(MAKE) --no-print-directory fuzz-short

# The demo world is generated, loaded into a data directory through the ledger (which rates its
# usage), and reconciled: the ledger's totals equal the store's, day by day.
demo: build
	@echo "== generating the demo world into $(DEMO_DIR)/world"
	@./$(BUILD)/tally generate --out $(DEMO_DIR)/world --subscribers 2000 --days 120
	@./$(BUILD)/tally summary --data $(DEMO_DIR)/world
	@echo "== loading it into $(DEMO_DIR)/store through the ledger"
	@rm -rf $(DEMO_DIR)/store
	@./$(BUILD)/tally load --data $(DEMO_DIR)/store $(DEMO_DIR)/world --ledger --quiet
	@./$(BUILD)/tally reconcile --data $(DEMO_DIR)/store
	@echo "== revenue, ARPU and data by region and month, from the metrics layer (docs/metrics.md)"
	@./$(BUILD)/tally query --data $(DEMO_DIR)/store --format csv \
	  '{"measures": ["revenue", "arpu", "active_subscribers", "data_gb"], "dimensions": ["region"], "timeDimensions": [{"dimension": "time", "granularity": "month", "dateRange": ["2024-07-01", "2024-10-28"]}]}'
	@echo "== the acquisition funnel by year, and the onboarding A/B test (docs/insights.md)"
	@./$(BUILD)/tally insights funnel --data $(DEMO_DIR)/store segments=year format=csv
	@./$(BUILD)/tally insights experiment --data $(DEMO_DIR)/store experiment=onboarding format=csv
	@echo "== plan recommendations: the five largest savings (docs/insights.md)"
	@./$(BUILD)/tally insights plans --data $(DEMO_DIR)/store limit=5 format=csv
	@echo "== churn and LTV models for the ML Insights tab (docs/models.md; 120 days allow a 30-day LTV horizon)"
	@./$(BUILD)/tally train --data $(DEMO_DIR)/store --model churn
	@./$(BUILD)/tally train --data $(DEMO_DIR)/store --model ltv --ltv-days 30
	@echo "== API keys for the demo (each is printed once; docs/security.md)"
	@./$(BUILD)/tally keys create --data $(DEMO_DIR)/store --role admin --name demo-admin
	@./$(BUILD)/tally keys create --data $(DEMO_DIR)/store --role partner --partner 1 --name demo-partner-1
	@echo "== serving the dashboards and the API on the demo world (Ctrl-C stops it)"
	@echo "   dashboards: open http://127.0.0.1:$(DEMO_PORT)/ and sign in with the demo-admin key above"
	@echo "   (or the demo-partner-1 key, to see one partner's view); docs/web.md is the guide"
	@echo "   API: curl -H 'Authorization: Bearer tly_...' http://127.0.0.1:$(DEMO_PORT)/v1/metrics"
	@echo "   routes and roles: docs/api.md; the OpenAPI document: http://127.0.0.1:$(DEMO_PORT)/openapi.json"
	@./$(BUILD)/tally serve --data $(DEMO_DIR)/store --port $(DEMO_PORT)

bench: build
	@./$(BUILD)/generate_bench --out bench/results/generate.json
	@./$(BUILD)/ingest_bench --out bench/results/ingest.json
	@./$(BUILD)/ledger_bench --out bench/results/ledger.json
	@./$(BUILD)/insights_bench --out bench/results/insights.json
	@./$(BUILD)/api_bench --out bench/results/api.json --tally $(BUILD)/tally
	@./$(BUILD)/scale_bench --out bench/results/scale.json
	@./$(BUILD)/sql_bench --out bench/results/sql.json --tally $(BUILD)/tally
	@node web/tests/first_render.mjs --tally $(BUILD)/tally --out bench/results/web.json
	@$(MAKE) --no-print-directory fuzz

# libFuzzer harnesses for the decoders and gzip, built with clang in build-fuzz/ (docs/fuzzing.md).
# The fuzzers run at once for the given seconds (on 2 cores, 45 s gives each ~30 s of CPU, 900 s
# ~10 minutes); a crash or broken invariant fails the target.
fuzz-short: setup
	@JOBS=$(JOBS) bash scripts/fuzz 45

fuzz: setup
	@JOBS=$(JOBS) bash scripts/fuzz 900

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

# The short commands. The build itself is CMake + Ninja; this file only
# strings the steps together. `make help` lists the targets.

SHELL := /bin/bash
.DEFAULT_GOAL := help

BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
BUILD_TSAN ?= build-tsan
FUZZ_SECONDS ?= 600
CRASH_KILLS ?= 500
DEMO_DB    ?= ./loyal-demo.db
DEMO_LISTEN ?= 127.0.0.1:8080

FORMAT_DIRS := src include tests bench

.PHONY: help deps build build-asan build-fuzz test fuzz demo bench format clean
.PHONY: build-tsan

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: ## Install the Debian packages the build and the tests need (only missing ones)
	scripts/install-deps.sh

build: deps ## Build the release binary and tests into build/
	@test -f $(BUILD)/build.ninja || \
		cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
	ninja -C $(BUILD)

build-asan: deps ## Build with AddressSanitizer and UBSan into build-asan/
	@test -f $(BUILD_ASAN)/build.ninja || \
		cmake -S . -B $(BUILD_ASAN) -G Ninja -DLOYAL_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
	ninja -C $(BUILD_ASAN)

# Both runs go to the end, so that one failure does not hide the other's.
build-fuzz: deps ## Build the libFuzzer harnesses with clang into build-fuzz/
	@test -f $(BUILD_FUZZ)/build.ninja || \
		CC=clang cmake -S . -B $(BUILD_FUZZ) -G Ninja -DLOYAL_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug
	ninja -C $(BUILD_FUZZ) fuzz_expr fuzz_http

build-tsan: deps ## Build the server with ThreadSanitizer into build-tsan/
	@test -f $(BUILD_TSAN)/build.ninja || \
		cmake -S . -B $(BUILD_TSAN) -G Ninja -DLOYAL_TSAN=ON -DCMAKE_BUILD_TYPE=Debug
	ninja -C $(BUILD_TSAN) loyal

# make test runs the race tests (label tsan) against that server too.
test: build-tsan

test: build build-asan build-fuzz ## Run every test, on the release and the sanitizer builds, and each fuzzer for 60 s
	@rc=0; \
	ctest --test-dir $(BUILD) --output-on-failure || rc=1; \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --test-dir $(BUILD_ASAN) --output-on-failure || rc=1; \
	ctest --test-dir $(BUILD_FUZZ) -L fuzz --output-on-failure || rc=1; \
	ctest --test-dir $(BUILD_TSAN) -L tsan --output-on-failure || rc=1; \
	exit $$rc

# Both fuzzers run, one after the other, even when the first finds something.
fuzz: build-fuzz ## Run each fuzzer for FUZZ_SECONDS (600 by default)
	mkdir -p $(BUILD_FUZZ)/fuzz-corpus/expr $(BUILD_FUZZ)/fuzz-corpus/http
	@rc=0; \
	$(BUILD_FUZZ)/fuzz_expr -max_total_time=$(FUZZ_SECONDS) -max_len=512 \
		-dict=tests/fuzz/expr.dict -artifact_prefix=$(BUILD_FUZZ)/ \
		$(BUILD_FUZZ)/fuzz-corpus/expr tests/fuzz/corpus/expr || rc=1; \
	$(BUILD_FUZZ)/fuzz_http -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
		-dict=tests/fuzz/http.dict -artifact_prefix=$(BUILD_FUZZ)/ \
		$(BUILD_FUZZ)/fuzz-corpus/http tests/fuzz/corpus/http || rc=1; \
	exit $$rc

demo: build ## Start a server with a demo program on http://127.0.0.1:8080
	./$(BUILD)/loyal demo --db $(DEMO_DB) --listen $(DEMO_LISTEN)

bench: build ## Run the benchmarks
	bench/run.sh

.PHONY: reliability
reliability: build ## Long reliability runs: CRASH_KILLS (500) kills of a loaded server, and the two-server PostgreSQL race
	CRASH_KILLS=$(CRASH_KILLS) LOYAL_BIN=$(BUILD)/loyal node tests/reliability/crash.mjs
	scripts/with-postgres.sh env LOYAL_BIN=$(BUILD)/loyal node tests/reliability/pg_race.mjs

format: ## clang-format every C source and header
	find $(FORMAT_DIRS) -type f \( -name '*.c' -o -name '*.h' \) -print0 2>/dev/null | \
		xargs -0 -r clang-format -i

clean: ## Remove the build directories
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)
	rm -rf $(BUILD_TSAN)

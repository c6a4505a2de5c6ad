# Thin driver around CMake. `make demo` runs the demo, `make test` the test suite,
# `make bench` the preprocessing benchmark (seconds per case, peak RSS).
BUILD ?= build
JOBS  ?= $(shell nproc)

.PHONY: all deps build test demo bench test-asan clean

all: build

deps:
	@./scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

demo: build
	./$(BUILD)/nnunet demo

# Preprocessing of the shared Hippocampus (230 cases) and BraTS sample (6 cases) with 2
# worker threads: seconds per case and peak RSS per configuration (bench/bench_preprocess.lua;
# BENCH_ARGS=--large adds two synthetic 300x512x512 CTs).
bench: build
	./$(BUILD)/nnunet bench/bench_preprocess.lua $(BENCH_ARGS)

# The whole suite under AddressSanitizer + UBSan (CUDA off: the sanitizers do not see device code).
test-asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DNNUNET_SANITIZE=ON -DNNUNET_CUDA=OFF >/dev/null
	@cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS)

clean:
	rm -rf $(BUILD) build-asan

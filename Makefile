# Thin driver around CMake. `make demo` runs the demo, `make test` the test suite,
# `make bench` the engine and preprocessing benchmarks.
BUILD ?= build
JOBS  ?= $(shell nproc)

.PHONY: all deps build test demo bench bench-learning test-asan clean

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

# Benchmarks (not part of the tests; figures in docs/engine.md, docs/preprocessing_storage.md,
# docs/training.md):
#  - the engine: training iteration and inference per patch for the Hippocampus plans, with
#    PyTorch (Debian python3-torch) timed on the identical network in the same run;
#  - preprocessing of the shared Hippocampus (230 cases) and BraTS sample (6 cases): seconds
#    per case and peak RSS (BENCH_ARGS=--large adds two synthetic 300x512x512 CTs).
# The learning-on-real-data run (about an hour on 2 cores) is separate: `make bench-learning`.
bench: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DNNUNET_BENCH=ON >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	cmake --build $(BUILD) --target bench
	./$(BUILD)/nnunet bench/bench_preprocess.lua $(BENCH_ARGS)

bench-learning: build
	./$(BUILD)/nnunet bench/train_hippocampus.lua $(BENCH_ARGS)

# The whole suite under AddressSanitizer + UBSan (CUDA off: the sanitizers do not see device code).
test-asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DNNUNET_SANITIZE=ON -DNNUNET_CUDA=OFF >/dev/null
	@cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	  ctest --output-on-failure -j $(JOBS)

clean:
	rm -rf $(BUILD) build-asan

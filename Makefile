# Thin driver around CMake. `make demo` runs the demo, `make test` the test suite.
BUILD ?= build
JOBS  ?= $(shell nproc)

.PHONY: all deps build test demo test-asan clean

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

# The whole suite under AddressSanitizer + UBSan (CUDA off: the sanitizers do not see device code).
test-asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DNNUNET_SANITIZE=ON -DNNUNET_CUDA=OFF >/dev/null
	@cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS)

clean:
	rm -rf $(BUILD) build-asan

# relayq glue: install Debian packages, configure, build, run and test.
# `make run` and `make test` are the only two commands a new machine needs.

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CONFIG     ?= deploy/relayq.dev.toml
SUDO       := $(if $(filter 0,$(shell id -u)),,sudo)
PACKAGES   := $(shell grep -v '^\#' deploy/debian-packages.txt)
WERROR     := $(if $(CI),ON,OFF)

.PHONY: all deps node-deps build build-asan run test test-release test-asan bench fuzz format clean

all: build

# Install only what is missing, so a prepared machine does not touch apt at all.
deps:
	@missing=$$(for p in $(PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi
	@# npm comes with Node.js from nodejs.org or NodeSource, separately in Debian's own packages.
	@command -v npm >/dev/null || { $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends npm; }

# npm's mailauth, the DKIM verifier the tests check relayq's signatures with besides
# python3-dkim: pinned by tests/support/mailauth/package-lock.json.
MAILAUTH := tests/support/mailauth/node_modules/.bin/mailauth
$(MAILAUTH): tests/support/mailauth/package-lock.json | deps
	npm ci --prefix tests/support/mailauth --no-audit --no-fund
	touch $@
node-deps: $(MAILAUTH)

$(BUILD)/build.ninja: | deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRELAYQ_WERROR=$(WERROR)

$(ASAN_BUILD)/build.ninja: | deps
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DRELAYQ_SANITIZE=ON -DRELAYQ_WERROR=$(WERROR)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps $(ASAN_BUILD)/build.ninja
	cmake --build $(ASAN_BUILD) -j $(JOBS)

run: build
	mkdir -p var
	$(BUILD)/relayq serve --config $(CONFIG)

# Every test on the optimised build, then every test again under ASan + UBSan.
test: test-release test-asan

test-release: build node-deps
	cd $(BUILD) && ctest --output-on-failure -j 2

test-asan: build-asan node-deps
	cd $(ASAN_BUILD) && ctest --output-on-failure -j 2

bench: build
	bench/run

# libFuzzer targets (clang, ASan + UBSan) in build-fuzz, each run FUZZ_SECONDS on a scratch
# copy of tests/fuzz/corpus; fails on any crash (see tests/fuzz/run.sh).
# clang and its libFuzzer runtime come from Debian too, installed here rather than by `deps`,
# which every build needs.
FUZZ_SECONDS ?= 60
FUZZ_PACKAGES := clang-14 libclang-rt-14-dev
fuzz: deps
	@missing=$$(for p in $(FUZZ_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi
	FUZZ_BUILD=$(CURDIR)/build-fuzz tests/fuzz/run.sh $(FUZZ_SECONDS)

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

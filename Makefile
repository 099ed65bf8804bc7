# SPDX-License-Identifier: MIT
# The front door: `make`, `make run`, `make test`. CMake does the real work.
BUILD      ?= build
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=
CTEST_ARGS ?=
PREFIX     ?= /usr/local
DESTDIR    ?=
DEB_BUILD  ?= build-deb

.PHONY: all build install deb run test deps test-asan test-tsan ci format lint bench bench-rcmd clean

all: build

build:
	@cmake -S . -B $(BUILD) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# Installs into $(DESTDIR)$(PREFIX): bin/sockserve, the libraries, the header,
# sockserve.pc and the CMake package (make install PREFIX=$$HOME/.local).
install: build
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix "$(PREFIX)"

# Debian packages (CPack): sockserve, libsockserve0 and libsockserve-dev,
# built for /usr in $(DEB_BUILD), without the test tools; the .debs land there.
deb:
	@cmake -S . -B $(DEB_BUILD) -DCMAKE_INSTALL_PREFIX=/usr -DSOCKSERVE_TESTS=OFF \
	    -DSOCKSERVE_DEB=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null
	@cmake --build $(DEB_BUILD) -j $(JOBS)
	cd $(DEB_BUILD) && cpack -G DEB
	@ls $(DEB_BUILD)/*.deb

# The main job: the echo server on its default address (tcp://127.0.0.1:9999).
run: build
	./$(BUILD)/sockserve echo

deps:
	@scripts/install-deps.sh

# Every test, through ctest; ends with ctest's summary.
test: deps
	@$(MAKE) --no-print-directory build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

# The same suite under AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan: deps
	@$(MAKE) --no-print-directory test BUILD=build-asan \
	    CMAKE_ARGS="-DSS_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug"

# The threaded code (tests labelled tsan) under ThreadSanitizer.
test-tsan: deps
	@$(MAKE) --no-print-directory test BUILD=build-tsan \
	    CMAKE_ARGS="-DSS_SANITIZE=thread -DCMAKE_BUILD_TYPE=Debug" \
	    CTEST_ARGS="-L tsan"

ci: test test-asan test-tsan

format:
	clang-format -i include/*.h src/*.[ch] cli/*.[ch] apps/*/*.[ch] examples/*.c tests/unit/*.[ch] bench/peers/*.c

lint:
	clang-format --dry-run --Werror include/*.h src/*.[ch] cli/*.[ch] apps/*/*.[ch] examples/*.c tests/unit/*.[ch]

bench: build
	bench/run.sh

# sockserve rcmd against OpenSSH (starts its own sshd on 127.0.0.1; as root).
bench-rcmd:
	bench/rcmd/run.sh

clean:
	rm -rf build build-asan build-tsan build-fuzz build-deb

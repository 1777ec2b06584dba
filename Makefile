# gpbackup_s3_plugin — build, install, demo and test targets.
#
#   make build        release build: target/release/gpbackup_s3_plugin (needs
#                     the build machine's glibc or newer)
#   make dist         the portable release build (glibc 2.17 and newer: every
#                     supported Greenplum host), its tarball, .deb and .rpm in
#                     dist/ (scripts/dist.sh; Zig and cargo-zigbuild from
#                     scripts/ensure-zigbuild.sh; about 10 minutes of CPU)
#   make test-dist    check dist/: portability (scripts/check-portable.sh),
#                     the packages, the protocol tests and the demo with the
#                     dist executable (scripts/test-dist.sh); CI runs it
#   make install      copy target/release/gpbackup_s3_plugin to $GPHOME/bin,
#                     or BIN=dist/gpbackup_s3_plugin (see the note at the target)
#   make demo         build, then replay a small gpbackup/gprestore run against
#                     a local S3 server (scripts/demo.sh)
#   make test         lint, then the unit and integration tests (s3s-fs server,
#                     installed on first use by scripts/ensure-s3s-fs.sh; moto
#                     for the cold-storage and vault tests, scripts/ensure-moto.sh;
#                     fakecloud for the vault tests, scripts/ensure-fakecloud.sh) and the
#                     end-to-end tests with PostgreSQL (Debian's postgresql, gzip
#                     and zstd, installed when missing and possible by
#                     scripts/ensure-postgres.sh)
#   make test-e2e     only the end-to-end tests (tests/it/gpbackup_e2e.rs), with
#                     their timings; E2E_ROWS_SCALE=10 for ten times the rows
#   make test-compat  the integration tests against Garage, a stricter
#                     MinIO-like server (built on first use: ~12 minutes)
#   make lint         cargo fmt --check and cargo clippy -D warnings
#   make bench        the benchmark (bench/run.sh; BENCH_ONLY=network for the
#                     network model alone, examples/netmodel.rs)
#   make clean        cargo clean

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

# cargo may be installed by rustup without ~/.cargo/bin being on PATH.
export PATH := $(HOME)/.cargo/bin:$(PATH)

CARGO ?= cargo
# What `make install` copies; `make install BIN=dist/gpbackup_s3_plugin` for
# the portable build of `make dist` (a command-line BIN overrides this; one
# in the environment does not).
BIN := target/release/gpbackup_s3_plugin

.PHONY: all build dist test-dist install demo test test-e2e test-compat lint fmt clippy fmt-check bench clean

all: build

build:
	$(CARGO) build --release

dist:
	bash scripts/dist.sh

# After `make test` in CI: the dist executable is what runs on the hosts.
test-dist: dist
	bash scripts/test-dist.sh

# On a cluster the plugin must be at the same path on every host (the
# coordinator, every segment host, and standby/mirror hosts). After
# `make install` (or `make install BIN=dist/gpbackup_s3_plugin`, the portable
# build) on the coordinator, copy it to the others, for example:
#     gpsync -f hostfile $(GPHOME)/bin/gpbackup_s3_plugin =:$(GPHOME)/bin/
# (gpscp with the same arguments on Greenplum 6), or run
#     make install HOSTFILE=hostfile
# to do both steps (HOSTFILE lists the other hosts, one per line).
install:
	@if [ -z "$(GPHOME)" ]; then \
	    echo "GPHOME is not set: source greenplum_path.sh first, or run 'make install GPHOME=/usr/local/greenplum-db'" >&2; \
	    exit 1; \
	fi
	@if [ ! -x "$(BIN)" ]; then \
	    echo "$(BIN) does not exist: run 'make build' first (or 'make dist' for dist/gpbackup_s3_plugin)" >&2; \
	    exit 1; \
	fi
	install -m 0755 "$(BIN)" "$(GPHOME)/bin/gpbackup_s3_plugin"
	@echo "installed $(GPHOME)/bin/gpbackup_s3_plugin"
ifneq ($(strip $(HOSTFILE)),)
	@if command -v gpsync >/dev/null 2>&1; then \
	    echo "gpsync -f $(HOSTFILE) $(GPHOME)/bin/gpbackup_s3_plugin =:$(GPHOME)/bin/"; \
	    gpsync -f "$(HOSTFILE)" "$(GPHOME)/bin/gpbackup_s3_plugin" "=:$(GPHOME)/bin/"; \
	elif command -v gpscp >/dev/null 2>&1; then \
	    echo "gpscp -f $(HOSTFILE) $(GPHOME)/bin/gpbackup_s3_plugin =:$(GPHOME)/bin/"; \
	    gpscp -f "$(HOSTFILE)" "$(GPHOME)/bin/gpbackup_s3_plugin" "=:$(GPHOME)/bin/"; \
	else \
	    echo "neither gpsync nor gpscp found: source greenplum_path.sh, or copy the plugin to every host yourself" >&2; \
	    exit 1; \
	fi
else
	@echo "on a cluster, copy it to every host too: gpsync -f hostfile $(GPHOME)/bin/gpbackup_s3_plugin =:$(GPHOME)/bin/ (or: make install HOSTFILE=hostfile)"
endif

demo: build
	bash scripts/demo.sh

# Lint first (quick failures), then the tests. The integration tests find
# s3s-fs on PATH or in ~/.cargo/bin, and moto in its venv; the end-to-end
# tests find PostgreSQL in /usr/lib/postgresql/*/bin (or PG_BINDIR) and say
# "skipped" without it (they fail instead when CI=true).
test: lint
	bash scripts/ensure-s3s-fs.sh >/dev/null
	bash scripts/ensure-moto.sh >/dev/null
	bash scripts/ensure-fakecloud.sh >/dev/null
	@bash scripts/ensure-postgres.sh >/dev/null || \
	    echo "note: PostgreSQL, gzip or zstd is missing: the end-to-end tests (tests/it/gpbackup_e2e.rs) will be skipped"
	$(CARGO) test --release

# The end-to-end tests alone, printing their timings. E2E_ROWS_SCALE
# multiplies the rows (default 1: about 280,000).
test-e2e:
	bash scripts/ensure-s3s-fs.sh >/dev/null
	bash scripts/ensure-postgres.sh >/dev/null
	$(CARGO) test --release --test it gpbackup_e2e:: -- --nocapture

test-compat:
	bash scripts/ensure-garage.sh >/dev/null
	S3_TEST_SERVER=garage $(CARGO) test --release --test it

lint: fmt-check clippy

fmt-check:
	$(CARGO) fmt --check

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt

# Section 9 puts examples/netmodel.rs (the network model) between the
# clients and the server.
bench: build
	$(CARGO) build --release --example netmodel
	bash bench/run.sh

clean:
	$(CARGO) clean

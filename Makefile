# Linekeeper: the front door. `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
DATA_DIR ?= var/demo
SPEED ?= 1
HOST ?= 127.0.0.1
PORT ?= 8080
HTTPS_PORT ?= 8443

PY := $(VENV)/bin/python
STAMP := $(VENV)/.linekeeper-installed
EXTRAS := test
# MicroPython's type stubs for the HAT's MCU firmware (board/mcu), kept apart
# from the venv's own packages because they replace the standard library's.
MCU_STUBS := 'micropython-rp2-rpi-pico-stubs==1.29.*'
ifneq ($(shell grep -s "Raspberry Pi" /proc/device-tree/model),)
EXTRAS := test,rpi
endif

# The modules mypy checks: those with type hints on their public interface.
# Add a module here once `mypy` is clean on it.
TYPED := telephony/countries.py telephony/errors.py telephony/levels.py \
	telephony/generate.py telephony/spandsp.py board/base.py board/signals.py firmware/bus.py \
	firmware/alarms.py firmware/errors.py web/services.py web/site.py \
	firmware/calls/calllog.py firmware/recording/store.py firmware/recording/schema.py \
	firmware/storage/audit.py firmware/storage/keystore.py firmware/policy/deletions.py \
	firmware/policy/checks.py web/db.py
LINTED := telephony board firmware web tests bench hw_tests setup.py

.PHONY: help setup run run-archive test test-fast bytecode test-arm64 lint hwtest hwtest-call hwtest-power bench sanitize clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 12

setup: $(STAMP) ## install Debian packages, make .venv, build the C extension

$(STAMP): pyproject.toml setup.py scripts/install-deps firmware/ring/_cring.c
	scripts/install-deps
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	$(PY) -m pip install -q --upgrade --target $(VENV)/mcu-stubs $(MCU_STUBS)
	touch $@

run: setup ## run the box on the simulated board with the demo day and the web UI
	$(VENV)/bin/linekeeper run --board sim --scenario demo --loop --speed $(SPEED) \
		--data-dir $(DATA_DIR) --host $(HOST) --port $(PORT) --https-port $(HTTPS_PORT)

run-archive: setup ## three simulated sites into one SeaweedFS bucket, then the central viewer (docs/archive-viewer.md)
	$(PY) scripts/archive-demo

# Every test, on every core: a test file stays on one worker, and the archive
# tests, which share one S3 server, stay on one worker too (tests/conftest.py
# groups them). The crash and power-cut tests keep their files on ext4 (below),
# where the recording journal writes with O_DIRECT as on the box.
# TEST_WORKERS=0 runs them one at a time, in one process.
# Two workers more than the cores: much of the suite waits on the real servers,
# container boots and processes it stops, not on the processor (on two cores,
# 4 421 tests took 21:32 with two workers and 17:12 with three; 4 623 took 24:22
# with three and 21:54 with four, on a quiet machine; 4 753 took 17:22 with four
# once the modules were compiled first, below; 5 187 took 10:32 with four, their
# files in memory as below, against 22:06 for 5 131 on the disk; 5 249 took 9:51).
#
# The tests' temporary files are on an ext4 file system in memory
# (scripts/memdisk: the box's syncs and O_DIRECT writes as on its card, without
# waiting for a disk), where one can be made; TEST_DISK=disk keeps them on the
# disk, in pytest's folder under /tmp (a failing test's files stay there for a look).
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 2 )))
TEST_DISK ?= memory
test: setup bytecode ## run every test in tests/ (never hw_tests/), on every core
	@tmp=; \
	if [ "$(TEST_DISK)" = memory ]; then \
		tmp=$$(mktemp -d /tmp/linekeeper-test.XXXXXX) || exit 1; \
		if scripts/memdisk up "$$tmp"; then \
			trap 'scripts/memdisk down "$$tmp"; rmdir "$$tmp"' EXIT; trap 'exit 130' INT TERM; \
		else \
			echo "make test: the tests' files stay on the disk" >&2; rmdir "$$tmp"; tmp=; \
		fi; \
	fi; \
	$(PY) -m pytest tests -n $(TEST_WORKERS) --dist loadgroup $${tmp:+--basetemp=$$tmp/pytest}

# The tests start the box's commands in processes of their own, again and
# again. Where PYTHONDONTWRITEBYTECODE is set (as on our CI's machines) Python
# keeps no compiled module, so each of them compiled the ~130 modules it
# imports again: half a second of CPU in a `linekeeper sim` of 1.6 s. Compiled
# once here (into the ignored __pycache__ folders), they are only read. A
# module edited since is compiled afresh in memory, as before.
bytecode: setup
	@$(PY) -m compileall -q -j 0 firmware board web telephony tests/support

# The quick loop keeps the tests' temporary files in memory (/dev/shm, where
# there is one): most of its wall time on a shared disk was the fsyncs of the
# data files, which no fast test can observe (the crash and power-cut tests
# that do are marked slow and run on ext4 in `make test`, above).
#
# It runs on every core (pytest-xdist, one worker a core); a test file stays on
# one worker (`--dist loadfile`), so a file's module and session fixtures (the
# simulated week, the speech set) are built once, not once per worker.
FAST_WORKERS ?= auto
test-fast: setup bytecode ## the quick inner loop: every test not marked slow, on every core
	@tmp=$$(mktemp -d /dev/shm/linekeeper-test-fast.XXXXXX 2>/dev/null) || tmp=; \
	$(PY) -m pytest tests -m "not slow" -q -n $(FAST_WORKERS) --dist loadfile \
		$${tmp:+--basetemp=$$tmp}; rc=$$?; \
	if [ -n "$$tmp" ]; then rm -rf "$$tmp"; fi; exit $$rc

lint: setup ## ruff (lint and format check) and mypy on the typed modules
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy $(TYPED)

test-arm64: setup ## build and test the firmware on arm64 under qemu (root; slow)
	scripts/test-arm64

hwtest: setup ## run the hardware tests (on a real box only, recorder stopped; docs/hwtest.md)
	$(PY) -m pytest hw_tests -v -s -m "not line_sim and not pull_power"

hwtest-call: setup ## a call through a line simulator on LINEKEEPER_HW_LINE (a person rings and answers)
	$(PY) -m pytest hw_tests -v -s -m line_sim

hwtest-power: setup ## the power-fail warning and hold-up time (a person pulls the plug)
	$(PY) -m pytest hw_tests -v -s -m pull_power

# OPENSSL_ia32cap: on an x86 host with AVX-512 IFMA, OpenSSL's Poly1305 (sealing
# each recording chunk) slowed the Opus encoding between the chunks twofold
# (measured: 13.3 against 9.0 CPU-s per line-hour). The box's ARM CPU has no such
# path, so the bench leaves it out (docs/bench.md).
bench: setup ## measure performance; writes bench/results.json
	OPENSSL_ia32cap="$${OPENSSL_ia32cap:-:~0x200000}" $(PY) -m bench

sanitize: setup ## build the C extension with ASan + UBSan and run the ring tests on it
	scripts/sanitize

clean: ## remove the venv and build products
	rm -rf $(VENV) build *.egg-info firmware/ring/*.so

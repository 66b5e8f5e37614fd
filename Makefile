# tokentray: the two commands a newcomer needs are `make run` and `make test`.
# Both install what is missing first (Debian/Ubuntu packages, the Python venv for peer tests).
SHELL := /bin/bash
.DEFAULT_GOAL := run

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Build and GUI: webkit/gtk for Tauri. Tests: Xvfb, D-Bus, gnome-keyring, keyutils, chromium.
APT_PACKAGES := libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev \
  libssl-dev build-essential pkg-config file libgtk-3-dev libsoup-3.0-dev \
  libjavascriptcoregtk-4.1-dev xvfb xauth dbus dbus-x11 at-spi2-core imagemagick \
  webkit2gtk-driver gnome-keyring libsecret-tools keyutils chromium dunst libnotify-bin \
  python3-venv curl systemd git
VENV := .venv
# The real Azure CLI for the az shim's peer tests (its own venv), and their Node.js clients.
AZ_CLI_VERSION := 2.91.0
AZ_VENV := .venv-azcli
PEERS_NODE := tests/peers/node
CARGO ?= cargo

.PHONY: run test demo bench fuzz deps venv tools build fmt lint check-targets xcheck-deps \
  package test-package

## make run: install what is missing, build, start the tray app.
run: deps build
	./target/debug/tokentray-app

## make test: install what is missing, build everything, run every test suite.
test: deps venv tools build check-targets
	tests/run.sh
	$(MAKE) --no-print-directory test-package PACKAGE_PROFILE=debug

## make package: the .deb in target/release/bundle/deb/, built by the Tauri bundler (the Tauri CLI
## from npm, pinned, under .tools/): both binaries, the desktop entry, icons and the systemd user
## units (tokentray.socket, enabled for every user's session, and tokentray.service).
## PACKAGE_PROFILE=debug builds it from the debug build instead (what `make test` checks).
## No AppImage: the bundler downloads linuxdeploy from GitHub, which this network does not reach.
PACKAGE_PROFILE ?= release
TAURI_CLI_VERSION := 2.11.5
TAURI_CLI := .tools/node_modules/.bin/tauri
## The bundler packages the binaries cargo built (`tauri bundle`, not `tauri build`; the debug build
## is `make build`'s own, --all-targets): the same
## features, so nothing is compiled twice, and the package holds the very app the tests ran.
package: deps $(TAURI_CLI)
	$(if $(filter release,$(PACKAGE_PROFILE)),$(CARGO) build --release -p tokentray-core --bin tokentray -p tokentray --bin tokentray-app,\
	  $(CARGO) build --workspace --all-targets)
	mkdir -p target/package && cp target/$(PACKAGE_PROFILE)/tokentray target/package/tokentray
	cd src-tauri && CI=true ../$(TAURI_CLI) bundle --bundles deb \
	  $(if $(filter release,$(PACKAGE_PROFILE)),,--debug)
	@ls -l target/$(PACKAGE_PROFILE)/bundle/deb/*.deb
$(TAURI_CLI):
	npm install --prefix .tools --no-audit --no-fund --no-save @tauri-apps/cli@$(TAURI_CLI_VERSION)

## make test-package: builds the package (PACKAGE_PROFILE, debug in `make test`), installs it into
## a throwaway root and uses it from there (tests/package/run.sh).
test-package: package venv
	tests/package/run.sh $$(ls -t target/$(PACKAGE_PROFILE)/bundle/deb/tokentray_*.deb | head -1)

## make demo: fake-entra with two users and the app pointed at it (no Azure tenant needed).
demo: deps build
	tests/demo.sh

## make bench: the benchmarks (figures printed; see README "Performance").
bench: deps venv
	@dpkg -s wrk >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq wrk; }
	$(CARGO) bench -p tokentray-core --bench cache
	$(CARGO) build --release -p tokentray-core -p tokentray-tests --bin tokentray --bin fake-entra --bin bare-hyper
	TOKENTRAY_BIN=$(CURDIR)/target/release/tokentray FAKE_ENTRA_BIN=$(CURDIR)/target/release/fake-entra \
	  $(VENV)/bin/python tests/bench/endpoint.py

## make fuzz: each fuzz target for FUZZ_SECS seconds (default 600), one after another; then the
## corpus is minimized in place (tests/README.md "Fuzzing"). FUZZ_TARGETS picks some.
FUZZ_SECS ?= 600
FUZZ_TARGETS ?= cache_json envelope endpoint_request entra_response claims
CARGO_FUZZ := .tools/bin/cargo-fuzz
# libFuzzer and the sanitizers need nightly: rustup's nightly toolchain when there is one, else
# the stable one with RUSTC_BOOTSTRAP=1, which lets stable take nightly-only flags.
FUZZ_TOOLCHAIN := $(shell rustup toolchain list 2>/dev/null | grep -q '^nightly' && echo +nightly)
FUZZ := PATH="$(CURDIR)/.tools/bin:$$PATH" $(if $(FUZZ_TOOLCHAIN),,RUSTC_BOOTSTRAP=1) \
  $(CARGO) $(FUZZ_TOOLCHAIN) fuzz
# -a: debug assertions and overflow checks on, as in the test builds.
FUZZ_FLAGS := --fuzz-dir tests/fuzz -a
# The corpus kept (and committed) is the smallest set of inputs of at most 2 KB that reaches
# every edge the corpus reaches (hit counts aside): a few hundred KB per target.
FUZZ_CMIN_FLAGS := -rss_limit_mb=2048 -set_cover_merge=1 -use_counters=0 -max_len=2048
FUZZ_LOGS := target/fuzz-logs
fuzz: $(CARGO_FUZZ)
	$(FUZZ) build $(FUZZ_FLAGS)
	@mkdir -p $(FUZZ_LOGS); rm -f $(FUZZ_LOGS)/*.log; status=0; \
	for t in $(FUZZ_TARGETS); do \
	  echo "== fuzz $$t for $(FUZZ_SECS) s (log: $(FUZZ_LOGS)/$$t.log)"; \
	  ls tests/fuzz/artifacts/$$t 2>/dev/null | sort > $(FUZZ_LOGS)/$$t.known; \
	  $(FUZZ) run $(FUZZ_FLAGS) $$t -- -max_total_time=$(FUZZ_SECS) -rss_limit_mb=2048 \
	    -jobs=1 >$(FUZZ_LOGS)/$$t.out 2>&1 || status=1; \
	  cat fuzz-0.log >$(FUZZ_LOGS)/$$t.log 2>/dev/null && rm -f fuzz-0.log; \
	  $(FUZZ) cmin $(FUZZ_FLAGS) $$t -- $(FUZZ_CMIN_FLAGS) >>$(FUZZ_LOGS)/$$t.out 2>&1 || status=1; \
	done; \
	echo "== fuzz: what ran"; \
	for t in $(FUZZ_TARGETS); do \
	  runs=$$(grep -o '^Done [0-9]* runs in [0-9]* second(s)' $(FUZZ_LOGS)/$$t.log | tail -1); \
	  last=$$(grep -E '^#[0-9]+' $(FUZZ_LOGS)/$$t.log | tail -1); \
	  new=$$(ls tests/fuzz/artifacts/$$t 2>/dev/null | sort | comm -13 $(FUZZ_LOGS)/$$t.known -); \
	  printf '%-17s %s; last: %s; corpus now %s files; new crash inputs: %s\n' "$$t" \
	    "$${runs:-no "Done" line (crashed?)}" "$${last:-none}" \
	    "$$(ls tests/fuzz/corpus/$$t | wc -l)" "$${new:-none}"; \
	done; exit $$status
$(CARGO_FUZZ):
	$(CARGO) install cargo-fuzz --locked --root .tools

# $(call apt-ensure,PACKAGES): install those of the Debian packages that are missing.
apt-ensure = missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing system packages:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
deps:
	@$(call apt-ensure,$(APT_PACKAGES))
	@# The kube-token tests run kubectl: Debian's kubernetes-client unless one is installed already.
	@command -v kubectl >/dev/null || { $(call apt-ensure,kubernetes-client); }

venv: $(VENV)/.installed $(AZ_VENV)/.installed-$(AZ_CLI_VERSION) $(PEERS_NODE)/node_modules/.installed
$(VENV)/.installed: tests/peers/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r tests/peers/requirements.txt
	touch $@
# The real Azure CLI behind the az shim (tests/peers/test_az_shim_real_cli.py), in a venv of its
# own: it pins azure-core and websocket-client below the versions .venv has. About 2 min, 730 MB.
$(AZ_VENV)/.installed-$(AZ_CLI_VERSION):
	python3 -m venv $(AZ_VENV)
	$(AZ_VENV)/bin/pip install -q --disable-pip-version-check azure-cli==$(AZ_CLI_VERSION)
	rm -f $(AZ_VENV)/.installed-* && touch $@
# @azure/identity for Node.js (AzureCliCredential through the az shim), pinned by package-lock.json.
$(PEERS_NODE)/node_modules/.installed: $(PEERS_NODE)/package.json $(PEERS_NODE)/package-lock.json
	npm ci --prefix $(PEERS_NODE) --no-audit --no-fund
	touch $@

# tauri-driver (WebDriver for the window tests), pinned to ^2 (3.x is an alpha), under .tools/.
TAURI_DRIVER := .tools/bin/tauri-driver
tools: $(TAURI_DRIVER)
$(TAURI_DRIVER):
	$(CARGO) install tauri-driver --version '^2' --locked --root .tools

build:
	$(CARGO) build --workspace --all-targets

## make check-targets: type-check and lint (warnings are errors) core and the app, all targets
## including tests, for Windows and macOS, on this Linux machine (tests/README.md "Windows and
## macOS"). Debian's own Rust ships the standard library's source, so `-Zbuild-std` builds std for
## targets rustup has not installed; ring's C builds with mingw for Windows, and for macOS, where
## there is no SDK, a stand-in cc/ar writes empty objects (a check never links). One target dir,
## kept between runs, for both targets.
XCHECK_APT := rustc-web cargo-web rust-web-src rust-web-clippy gcc-mingw-w64-x86-64
XCHECK_TARGETS := x86_64-pc-windows-gnu aarch64-apple-darwin
XCHECK_DIR := target/xcheck
# rustup's ~/.cargo/bin comes first on PATH: Debian's cargo, and its clippy, by full path.
XCHECK := PATH=/usr/bin:$$PATH RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc CARGO_TARGET_DIR=$(XCHECK_DIR) \
  CC_aarch64_apple_darwin=$(CURDIR)/tests/xcheck/stand-in-cc \
  CXX_aarch64_apple_darwin=$(CURDIR)/tests/xcheck/stand-in-cc \
  AR_aarch64_apple_darwin=$(CURDIR)/tests/xcheck/stand-in-ar \
  /usr/bin/cargo clippy -Zbuild-std=std,panic_abort
check-targets: xcheck-deps
	$(XCHECK) $(addprefix --target ,$(XCHECK_TARGETS)) -p tokentray-core -p tokentray \
	  --all-targets -- -D warnings
xcheck-deps:
	@$(call apt-ensure,$(XCHECK_APT))

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@$(call apt-ensure,yamllint)
	yamllint --strict .github/workflows

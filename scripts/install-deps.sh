#!/usr/bin/env bash
# Installs what building and testing Silverback needs on a fresh Debian
# machine: clang/libclang for the rocksdb crate's C++ build and bindgen,
# Debian's prometheus and prometheus-alertmanager for the tests that run the
# real Prometheus and Alertmanager, openssl and curl for the TLS test, and
# the rustfmt/clippy components.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

need=()
command -v clang >/dev/null 2>&1 || need+=(clang)
dpkg -s libclang-dev >/dev/null 2>&1 || need+=(libclang-dev)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
# The TLS test makes a certificate with openssl and talks HTTPS with curl;
# the cluster mTLS and deploy-files tests run scripts/make-cluster-certs.sh.
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v curl >/dev/null 2>&1 || need+=(curl)
# The deploy-files test creates the systemd unit's user with systemd-sysusers.
command -v systemd-sysusers >/dev/null 2>&1 || need+=(systemd)
# The disk-fault test injects EIO into fsync with libfiu's fiu-run; the
# disk-full test fills the volume with util-linux's fallocate.
command -v fiu-run >/dev/null 2>&1 || need+=(fiu-utils)
command -v fallocate >/dev/null 2>&1 || need+=(util-linux)

if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  # policy-rc.d keeps the packages' own services from starting: the tests
  # start their own instances on free loopback ports.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

if command -v rustup >/dev/null 2>&1; then
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi

#!/usr/bin/env bash
# Installs what ferry's tests and demo need on a fresh Debian machine: docker-registry (CNCF
# distribution 2.8, the real registry the tests run), skopeo (the independent client that
# checks what ferry pushed), ssh-keygen (SSHSIG signatures), openssl (throwaway TLS CAs), gpg
# (test OpenPGP keys that sign fixture release signatures), python3 (the demo's static server)
# and its `cryptography` package (tests/sigstore_check.py, the independent signature checker).
set -euo pipefail
need=()
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v tar >/dev/null 2>&1 || need+=(tar)
command -v htpasswd >/dev/null 2>&1 || need+=(apache2-utils)
command -v gpg >/dev/null 2>&1 || need+=(gpg gpg-agent)
command -v gpgconf >/dev/null 2>&1 || need+=(gpgconf)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! python3 -c 'import cryptography' 2>/dev/null; then
  python3 -m pip install --quiet cryptography 2>/dev/null || {
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-cryptography >/dev/null
  }
fi

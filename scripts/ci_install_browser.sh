#!/usr/bin/env bash
# Install what the browser tests need, when missing (CI and developers; run from the repository root):
#   - Debian's chromium-headless-shell, WITHOUT recommended packages (19 packages, ~224 MB; with
#     recommends apt would pull ~115 packages and upgrade systemd and perl);
#   - onnxruntime-web from the npm registry (`npm ci`, pinned in package-lock.json; served to the page
#     from node_modules by serve_web.py).
# Nothing else is downloaded: no browser build of its own, no model weights.
set -euo pipefail
if ! command -v chromium-headless-shell >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium-headless-shell
  else
    echo "ci_install_browser: no apt-get: the browser tests will be skipped" >&2
  fi
fi
if [ ! -f node_modules/onnxruntime-web/dist/ort.wasm.min.mjs ]; then
  if command -v npm >/dev/null 2>&1; then
    npm ci --no-audit --no-fund --loglevel=error
  else
    echo "ci_install_browser: no npm: the browser tests will be skipped" >&2
  fi
fi

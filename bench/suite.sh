#!/usr/bin/env bash
# Replaced by bench/gpu-check.sh (every GPU measurement in one time-budgeted run; see bench/README.md).
# Kept so that older notes still run: the same OUT and --data arguments, passed on.
exec bash "$(dirname "$0")/gpu-check.sh" "$@"

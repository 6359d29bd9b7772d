#!/usr/bin/env bash
# The whole benchmark suite on one machine, each part bounded in time, results as text and JSON
# lines in OUT (default bench-out/). Needs `npm run build` first:
#   bash bench/suite.sh OUT [--data DIR]     (DIR: the Fashion-MNIST idx files)
# Environment: PARTS (default "kernels profile train peer accuracy"), ACCURACY (space-separated
# model:epochs:seeds, default examples/reference.net:30:1), ACCURACY_SECONDS (per model, 300),
# ACCURACY_STATE (the accuracy runs' checkpoints, default OUT/accuracy-state).
set -uo pipefail
out=${1:-bench-out}; shift || true
mkdir -p "$out"
data=/usr/share/datasets/fashion-mnist
[ "${1:-}" = --data ] && data=$2
part() { # name seconds command...
  local name=$1 secs=$2; shift 2
  echo "== $name"
  timeout "$secs" "$@" 2>&1 | grep -v 'artificially reduced' | tee "$out/$name.txt"
}
parts=${PARTS:-kernels profile train peer accuracy}
has() { [[ " $parts " == *" $1 "* ]]; }
has kernels && part kernels 90 node dist/bench/kernels.js --batch 64,256
has profile && part profile 60 node dist/bench/profile.js examples/reference.net --batch 64,256 --data "$data"
has train && part train 120 node dist/bench/train.js examples/reference.net --batch 64,256 --steps 400 --data "$data"
has peer && command -v python3 >/dev/null && python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null &&
  part peer-torch 80 python3 bench/peer_torch.py --data "$data" --batch 64,256 --steps 500
# TF.js is no dependency of fmgpu: this part runs only where it was installed by hand (see
# bench/peer_tfjs.ts for the npm command); batch 64 first, so a timeout still leaves its line.
has peer && node -e 'for (const p of ["core", "layers", "backend-webgpu"]) require.resolve(`@tensorflow/tfjs-${p}`)' 2>/dev/null &&
  part peer-tfjs 300 node dist/bench/peer_tfjs.js --batch 64,256 --steps 50 --compare --data "$data"
if has accuracy; then
  # Each model trains for at most ACCURACY_SECONDS, then stops after its epoch with a checkpoint
  # in ACCURACY_STATE (default OUT/accuracy-state); running the suite again with that folder
  # continues it. The timeout is only a backstop.
  budget=${ACCURACY_SECONDS:-300}
  for spec in ${ACCURACY:-examples/reference.net:30:1}; do
    IFS=: read -r model epochs seeds <<<"$spec"
    part "accuracy-$(basename "$model" .net)" "$((budget + 120))" node dist/bench/accuracy.js "$model" --epochs "$epochs" --seeds "$seeds" --data "$data" \
      --state "${ACCURACY_STATE:-$out/accuracy-state}" --budget "$budget"
  done
fi

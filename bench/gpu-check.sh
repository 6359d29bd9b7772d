#!/usr/bin/env bash
# Everything fmgpu measures on a GPU, in one command that ends inside its budget: the parts run in
# priority order, each in a time box, so that a cut run still leaves the most important figures.
#   bash bench/gpu-check.sh [OUT] [--budget S] [--data DIR] [--device NAME] [--smoke]
#   OUT       results (default bench-out/): at most 8 files, listed below; the table is printed last
#   --budget  seconds for the whole run (default 300; 100 with --smoke)
#   --data    the four Fashion-MNIST idx files, plain, .gz or .xz (default /usr/share/datasets/fashion-mnist);
#             where they are missing, a synthetic set of the same size stands in: speeds hold, accuracy
#             parts skip
#   --device  the cost model's device profile to refit (bench/devices/NAME.json; default: h200 on an
#             H200, else h100)
#   --smoke   tiny sizes on whatever adapter there is (lavapipe in CI), under 2 minutes: keeps the
#             script from rotting; its numbers mean nothing
# Parts (GPU time boxes; each is also cut to what is left of the budget):
#   1 adapter 30 s, probes 45 s       the adapter and its limits; matmul 4096³ and conv dX, two tile shapes,
#                                     and conv dX by Winograd;
#     bits 40 s                       fused against unfused training, bit for bit (three zoo models, batch 64)
#   2 profile 40 s, predicted 20 s,   per-dispatch times of examples/reference.net at batch 64 and 256,
#     refit 20 s                      the cost model's prediction, and its profile refit from them
#   3 train 60 s                      fmgpu training images/s at 64 and 256, test-set inference images/s
#   4 torch-eager 60 s,               PyTorch on the same GPU and network (fp32, TF32 off), eager, then
#     torch-compile 90 s              torch.compile
#   5 accuracy, zoo: what is left     time to 93% for examples/fast.net, then bench/zoo.js
# Files in OUT: run.json (what ran: commit, adapter, limits, each part's outcome, the table),
# probes.jsonl, profile.jsonl, cost.json, DEVICE-refit.json, speed.jsonl (fmgpu and PyTorch),
# accuracy.jsonl (time to accuracy, zoo), log.txt (every part's command and messages).
# It runs from a packed tree (Node, node_modules, dist/; ../shared/gpu/pack.sh) and fetches nothing:
# no npm, no network. bench/README.md says how to run it on a GPU machine and what to do with OUT.
set -uo pipefail

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }
out=bench-out budget='' data='' smoke=0 device=''
while (($#)); do
  case $1 in
    --budget) budget=${2:?--budget needs seconds}; shift 2 ;;
    --data) data=${2:?--data needs a folder}; shift 2 ;;
    --device) device=${2:?--device needs a name}; shift 2 ;;
    --smoke) smoke=1; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "gpu-check: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) out=$1; shift ;;
  esac
done
[ -n "$budget" ] || budget=$((smoke ? 100 : 300))
[[ $budget =~ ^[0-9]+$ ]] || { echo "gpu-check: --budget must be whole seconds, not $budget" >&2; exit 2; }
mkdir -p "$out" && out=$(cd "$out" && pwd) || { echo "gpu-check: cannot make $out" >&2; exit 2; }
[ -z "$data" ] || [ ! -d "$data" ] || data=$(cd "$data" && pwd)
cd "$(dirname "$0")/.." || exit 2
command -v node >/dev/null ||
  { echo 'gpu-check: no node on PATH (on a GPU machine: source .gpu/setup.sh)' >&2; exit 2; }
[ -f dist/bench/train.js ] && [ -f dist/bench/check.js ] ||
  { echo 'gpu-check: no dist/bench/: build first (npm run build), or pack a built tree' >&2; exit 2; }

# OUT holds this run's files alone: those of an earlier run go.
rm -f "$out"/{run.json,probes.jsonl,profile.jsonl,cost.json,speed.jsonl,accuracy.jsonl,log.txt} "$out"/*-refit.json
log=$out/log.txt
work=$(mktemp -d "${TMPDIR:-/tmp}/fmgpu-gpu-check.XXXXXX")
cleanup() { [ -s "$work/err" ] && noise <"$work/err" >>"$log"; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 143' TERM INT
noise() { grep -v 'artificially reduced' || true; }
# The line of a failed command's stderr that says what went wrong: its last, less stack frames and Node's version.
said() { noise | grep -Ev '^\s*$|^\s+at |^Node\.js v' | tail -n 1 | cut -c1-200; }
check() { node dist/bench/check.js "$@"; }
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}

commit=${FMGPU_COMMIT:-}
if [ -z "$commit" ] && git rev-parse --git-dir >/dev/null 2>&1; then
  commit=$(git rev-parse --short=12 HEAD)
  [ -z "$(git --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null | head -n 1)" ] ||
    commit="$commit+changes"
fi
[ -z "$commit" ] && [ -f .gpu/commit ] && commit=$(head -n 1 .gpu/commit)

# Data: tiny and synthetic for the smoke; the real set, or a synthetic one of its size.
real=${data:-/usr/share/datasets/fashion-mnist}
if ((smoke)); then
  data=$work/data data_kind='synthetic, 512 training and 256 test images'
  check synth "$data" 512 256
elif [ -e "$real/train-images-idx3-ubyte" ] || [ -e "$real/train-images-idx3-ubyte.gz" ]; then
  data=$real data_kind=Fashion-MNIST
elif [ -e "$real/train-images-idx3-ubyte.xz" ]; then
  # xz packs the set smaller than gzip, for a tree carried to a GPU machine (bench/README.md).
  mkdir -p "$work/data"
  for f in "$real"/*-ubyte.xz; do xz -dc "$f" >"$work/data/$(basename "$f" .xz)"; done
  data=$work/data data_kind=Fashion-MNIST
else
  data=$work/data data_kind="synthetic (no idx files in $real): speeds hold, accuracy parts skipped"
  check synth "$data" 60000 10000
fi

reserve=$((smoke ? 3 : 8)) # for the table
check begin "$out" date="$(date -u +%Y-%m-%dT%H:%MZ)" commit="${commit:-unknown}" budget="$budget" smoke="$smoke" \
  data="$data" data_kind="$data_kind" out="$out" node="$(node --version)" host="$(uname -srm)"

failed=0
# part NAME BOX MIN DEST COMMAND…: runs COMMAND for at most BOX seconds (less when less of the
# budget is left; skipped under MIN), its stdout appended to OUT/DEST (- : log.txt; /…: that file), its
# stderr to log.txt; its outcome into run.json and one line here. Returns the command's status.
part() {
  local name=$1 box=$2 min=$3 dest=$4
  shift 4
  local left=$((budget - SECONDS - reserve))
  if ((left < min)); then
    skip "$name" "no time left (${left} s of the budget)"
    return 1
  fi
  ((box > left)) && box=$left
  local target=$log t0=$SECONDS rc status=ok note=''
  case $dest in -) ;; /*) target=$dest ;; *) target=$out/$dest ;; esac
  echo "== $name (time box $box s): $*" >>"$log"
  : >"$work/err"
  timeout -k 5 "$box" "$@" >>"$target" 2>"$work/err"
  rc=$?
  noise <"$work/err" >>"$log"
  case $rc in
    0) ;;
    124 | 137) status=timeout note='cut by its time box' ;;
    3) status=budget note='stopped after the epoch in which its budget ran out' ;;
    *) status=failed note="exit $rc: $(said <"$work/err")" failed=1 ;;
  esac
  : >"$work/err"
  printf '%-15s %-8s %4d s of %4d%s\n' "$name" "$status" $((SECONDS - t0)) "$box" "${note:+  $note}"
  check record "$out" "$name" "$status" $((SECONDS - t0)) "$box" "$rc" "$note"
  return $rc
}
skip() {
  printf '%-15s %-8s %s\n' "$1" skipped "$2"
  echo "== $1: skipped: $2" >>"$log"
  check record "$out" "$1" skipped 0 0 '' "$2"
}

if ((smoke)); then
  box() { echo "$2"; } # the smoke's boxes
  batches=8,16 probe=(--probe-size 128 --probe-batch 4 --seconds 0.2) reps=2
  train=(--steps 6 --seconds 1 --infer-reps 2) peer=(--batch 8,16 --steps 6 --seconds 1 --device cpu)
  accuracy=(--epochs 1 --subset 256) zoo=(--models examples/quick.net --seeds 1 --ensemble '' --subset 128)
  bits=(--models examples/quick.net --batch 8 --steps 2 --tiles)
else
  box() { echo "$1"; }
  batches=64,256 probe=(--seconds 1) reps=20
  train=(--steps 100000 --seconds 8 --infer-reps 20) peer=(--batch 64,256 --steps 100000 --seconds 4)
  accuracy=() zoo=()
  bits=(--batch 64)
fi
model=examples/reference.net

echo "fmgpu gpu-check: budget $budget s, results in $out"
# 1. The adapter, then the calibration probes.
kind='' costdev=h100
# (the adapter part prints "GPU|CPU DEVICE TIMESTAMPS", kept in the work folder)
part adapter "$(box 30 20)" 5 "$work/adapter" node dist/bench/check.js adapter "$out"
timestamps=no
[ -f "$work/adapter" ] && read -r kind costdev timestamps <"$work/adapter"
[ -n "$device" ] && costdev=$device
check meta "$out" adapter_kind="${kind:-none}" cost_device="$costdev" model="$model"
# Without a WebGPU adapter only PyTorch can run: every fmgpu part says why it did not.
fm() { # NAME COMMAND…: the part's command when there is an adapter, else a skip
  if [ -n "$kind" ]; then "${@:2}"; else skip "$1" 'no WebGPU adapter (log.txt; on a GPU: source .gpu/setup.sh)'; fi
}
fm probes part probes "$(box 45 25)" 5 probes.jsonl node dist/bench/kernels.js --probe --json "${probe[@]}"
# Fused kernels against the unfused plan on this adapter (rows into probes.jsonl): a failure is a finding.
fm bits part bits "$(box 40 60)" 5 probes.jsonl node dist/bench/bits.js --json "${bits[@]}"

# 2. The per-dispatch profile, measured beside predicted, and the refit.
if [ -n "$kind" ] && [ "$timestamps" != yes ]; then
  skip profile 'the adapter has no timestamp queries'
else
  fm profile part profile "$(box 40 25)" 5 profile.jsonl node dist/bench/profile.js $model --batch $batches \
    --reps $reps --data "$data" --json
fi
if [ ! -f dist/bench/cost.js ]; then
  skip predicted 'no bench/cost.ts in this tree'
  skip refit 'no bench/cost.ts in this tree'
else
  part predicted "$(box 20 20)" 3 cost.json node dist/bench/cost.js $model --batch $batches --device "$costdev" --json
  if [ -s "$out/profile.jsonl" ]; then
    check meta "$out" refit="$costdev-refit.json"
    part refit "$(box 20 20)" 3 - node dist/bench/cost.js $model --batch $batches --device "$costdev" \
      --measured "$out/profile.jsonl" --out "$out/$costdev-refit.json"
  else
    skip refit 'no measured profile'
  fi
fi

# 3. fmgpu's training and inference speed.
fm train part train "$(box 60 30)" 5 speed.jsonl node dist/bench/train.js $model --batch $batches "${train[@]}" \
  --data "$data" --json

# 4. PyTorch on the same device and network: the first python3 with torch ($PYTHON: that one alone).
py=''
for c in ${PYTHON:-python3 /usr/bin/python3}; do
  if command -v "$c" >/dev/null && timeout 60 "$c" -c 'import torch' 2>/dev/null; then
    py=$c
    break
  fi
done
if [ -z "$py" ]; then
  skip torch-eager 'no python3 with torch here'
  skip torch-compile 'no python3 with torch here'
else
  export PYTHONUNBUFFERED=1
  part torch-eager "$(box 60 30)" 5 speed.jsonl "$py" bench/peer_torch.py --data "$data" "${peer[@]}" --infer
  part torch-compile "$(box 90 20)" 10 speed.jsonl "$py" bench/peer_torch.py --data "$data" "${peer[@]}" \
    --modes compile
fi

# 5. With the time left: time to 93% for examples/fast.net, then the zoo.
if [ -z "$kind" ] || { ((!smoke)) && [ "$data_kind" != Fashion-MNIST ]; }; then
  why='no Fashion-MNIST (--data DIR)'
  [ -n "$kind" ] || why='no WebGPU adapter'
  skip accuracy "$why"
  skip zoo "$why"
else
  left=$((budget - SECONDS - reserve))
  box=$((smoke ? 30 : left))
  part accuracy "$box" 20 accuracy.jsonl node dist/bench/accuracy.js examples/fast.net --seeds 1 --targets 93 \
    "${accuracy[@]}" --data "$data" --state "$work/accuracy" --budget $((box * 2 / 3)) --json
  left=$((budget - SECONDS - reserve))
  box=$((smoke ? 30 : left))
  part zoo "$box" 20 accuracy.jsonl node dist/bench/zoo.js "${zoo[@]}" --out "$work/zoo" --data "$data" \
    --budget $((box > 15 ? box - 10 : 5)) --json
fi

echo "== table" >>"$log"
echo
check table "$out" | tee -a "$log"
exit $failed

#!/usr/bin/env bash
# The GPU suite in one call, for a lent GPU machine that did not build hw1: probes what the machine has, then runs,
# each step under its own timeout and within one overall budget,
#   1. the op tests (test_gpu_ops), 2. the model tests, FCN32s first (test_gpu_models), 3. the device-only
#   training cases (test_gpu_train, one process per case), 4. hw1-bench-gpu for resnet101-train-224-b64,
#   deeplabv3-train-512-b8 and deeplabv3-infer-512-b8 in float32 and fp16 (img/s, peak GPU memory), each beside
#   PyTorch's bench/torch_bench.py on the same GPU when the machine's python3 has torch with CUDA,
# and prints one summary line per step. Logs go to $OUT (the device tool brings that folder back) or --out DIR.
# Programs: .gpu-bundle/bin (scripts/gpu-bundle.sh, built here for sm_90, carried), or --bin DIR (a build tree's
# programs, e.g. where the device can build hw1 itself: tests/ and examples/ and bench/ of that build).
#   scripts/gpu-check.sh --dry-run      lists what it would run, with the timeouts, and runs nothing
#   scripts/gpu-check.sh [--bin DIR] [--out DIR] [--budget SECONDS] [--skip-bench] [--only REGEX]
# --only runs the steps whose names match (e.g. --only 'test_gpu_train|bench.resnet'), for a rerun after a fix.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dry=0 bin="" out=${OUT:-/tmp/hw1-gpu-check} budget=540 bench=1 only=""
while (($#)); do
  case $1 in
    --dry-run) dry=1 ;;
    --bin) bin=$2; shift ;;
    --out) out=$2; shift ;;
    --budget) budget=$2; shift ;;
    --skip-bench) bench=0 ;;
    --only) only=$2; shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-check: unknown option '$1' (--help lists them)" >&2; exit 2 ;;
  esac
  shift
done
[[ -n $bin ]] || bin=$root/.gpu-bundle/bin
lib=$(dirname "$bin")/lib

# The steps: name, timeout (s), command. Test cases come from the programs' own lists where they can run.
steps=()
add() { [[ -z $only || $1 == probe || $1 =~ $only ]] && steps+=("$1|$2|$3"); return 0; }
cases_of() {  # the Boost.Test cases of a program, in source order (from the source: works in --dry-run too)
  grep -oE '^BOOST_AUTO_TEST_CASE\(([A-Za-z0-9_]+)' "tests/gpu/$1.cu" | sed 's/.*(//'
}
add probe 30 "probe"
add test_gpu_ops 180 "$bin/test_gpu_ops"
for c in $(cases_of test_gpu_models); do add "test_gpu_models.$c" 180 "$bin/test_gpu_models --run_test=$c"; done
for c in $(cases_of test_gpu_train); do add "test_gpu_train.$c" 180 "$bin/test_gpu_train --run_test=$c"; done
add nccl.one_rank 180 "nccl_one_rank"
if ((bench)); then
  for row in resnet101-train-224-b64 deeplabv3-train-512-b8 deeplabv3-infer-512-b8; do
    for p in float32 fp16; do
      add "bench.$row.$p" 150 "$bin/hw1-bench-gpu --row $row --precision $p --iters 10 --warmup 3"
      add "torch.$row.$p" 150 "torch_peer $row $p"
    done
  done
fi

if ((dry)); then
  echo "gpu-check --dry-run: programs from $bin$([[ -d $bin ]] || echo ' (absent here: scripts/gpu-bundle.sh makes it)')"
  echo "gpu-check --dry-run: logs to $out; overall budget ${budget} s; ${#steps[@]} steps:"
  i=0
  for s in "${steps[@]}"; do
    IFS='|' read -r name t cmd <<<"$s"
    printf '  %2d. %-58s timeout %3s s  %s\n' $((++i)) "$name" "$t" "${cmd#"$root/"}"
  done
  exit 0
fi

mkdir -p "$out"
log=$out/gpu-check.log
summary=$out/gpu-check-summary.txt
: >"$log"
: >"$summary"
start=$(date +%s)
failed=0
say() { echo "gpu-check: $*" | tee -a "$summary"; }

# Where the device keeps cuDNN and cuBLAS: the system's, a CUDA toolkit's, or the pip wheels (nvidia-cudnn-cu13,
# nvidia-cublas) beside the machine's PyTorch.
cuda_lib_dirs() {
  local d
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu; do
    [[ -d $d ]] && echo "$d"
  done
  if command -v python3 >/dev/null; then
    python3 - <<'EOF' 2>/dev/null
import glob, os, site, sys
roots = set(site.getsitepackages() + [site.getusersitepackages()] + sys.path)
for r in sorted(roots):
    for d in glob.glob(os.path.join(r, "nvidia", "*", "lib")):
        print(d)
EOF
  fi
}
probe() {
  echo "== nvidia-smi"; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1
  echo "== nvcc"; (nvcc --version 2>&1 | tail -n2) || echo "no nvcc"
  echo "== compilers"; (g++ --version 2>&1 | head -n1) || echo "no g++"; (cmake --version 2>&1 | head -n1) || true
  echo "== CPU"; grep -m1 'model name' /proc/cpuinfo; nproc
  echo "== cuDNN / cuBLAS found in"; printf '%s\n' "$LD_LIBRARY_PATH" | tr ':' '\n'
  echo "== python3 torch"; python3 -c 'import torch; print(torch.__version__, torch.cuda.is_available(), torch.backends.cudnn.version())' 2>&1 | tail -n1
  echo "== programs"; ls "$bin" 2>&1
  local missing
  missing=$(for b in "$bin"/*; do ldd "$b" 2>/dev/null | grep 'not found'; done | sort -u)
  if [[ -n $missing ]]; then
    echo "missing shared libraries:"; echo "$missing"; return 1
  fi
}
nccl_one_rank() {  # NCCL's all-reduce over 1 rank (HW1_FORCE_ALLREDUCE=1) must leave the checkpoint as without it
  local d; d=$(mktemp -d)
  "$bin/hw1-make-data" --kind classification --out "$d/data" --seed 1 --classes 2 --train-per-class 8 \
    --val-per-class 4 >/dev/null || return 1
  local a=(--model resnet50 --train "$d/data/train_50" --val "$d/data/val_50" --batch-size 8 --epochs 1
           --optimizer sgd --lr 0.01 --workers 0 --device cuda)
  "$bin/hw1-train-classifier" "${a[@]}" --out "$d/plain" || return 1
  HW1_FORCE_ALLREDUCE=1 "$bin/hw1-train-classifier" "${a[@]}" --out "$d/nccl" || return 1
  if cmp "$d/plain/epoch-001.safetensors" "$d/nccl/epoch-001.safetensors"; then
    echo "No errors: the 1-rank NCCL run's checkpoint equals the plain run's"
  else
    "$bin/hw1-train-classifier" "${a[@]}" --out "$d/again" || return 1
    if ! cmp -s "$d/plain/epoch-001.safetensors" "$d/again/epoch-001.safetensors"; then
      echo "SKIPPED: two plain runs differ too (cuDNN's algorithms are not deterministic here): no exact comparison"
      return 77
    fi
    echo "error: the 1-rank NCCL run's checkpoint differs from the plain run's"; return 1
  fi
}
torch_peer() {
  python3 -c 'import torch, torchvision, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null || {
    echo "SKIPPED: this machine's python3 has no torch / torchvision with CUDA"; return 77; }
  python3 "$root/bench/torch_bench.py" --device cuda --row "$1" --precision "$2" --iters 10 --warmup 3
}

extra=$(cuda_lib_dirs | tr '\n' ':')
export LD_LIBRARY_PATH="$lib:${extra}${LD_LIBRARY_PATH:-}"
export HW1_BIN_DIR=$bin

for s in "${steps[@]}"; do
  IFS='|' read -r name t cmd <<<"$s"
  left=$((budget - ($(date +%s) - start)))
  if ((left < 20)); then
    say "$name not-run (overall budget of ${budget} s spent)"
    continue
  fi
  ((t > left)) && t=$left
  echo "===== $name (timeout $t s): $cmd" >>"$log"
  t0=$(date +%s)
  step_out=$(mktemp)
  if [[ $cmd == probe ]]; then
    probe >"$step_out" 2>&1
    rc=$?
  elif [[ $cmd == torch_peer* || $cmd == nccl_one_rank ]]; then
    root=$root bin=$bin timeout "$t" bash -c "$(declare -f torch_peer nccl_one_rank); $cmd" >"$step_out" 2>&1
    rc=$?
  else
    # shellcheck disable=SC2086
    timeout "$t" $cmd >"$step_out" 2>&1
    rc=$?
  fi
  secs=$(($(date +%s) - t0))
  cat "$step_out" >>"$log"
  figure=""
  case $name in
    probe) figure=$(grep -A1 '^== nvidia-smi' "$step_out" | tail -n1) ;;
    bench.*|torch.*) figure=$(grep -m1 '^{' "$step_out" | python3 -c '
import json, sys
try:
    r = json.loads(sys.stdin.read())
except Exception:
    sys.exit(0)
keys = ["img_per_s", "peak_alloc_mib", "peak_reserved_mib"]
print(", ".join(f"{k} {r[k]:.1f}" if isinstance(r[k], float) else f"{k} {r[k]}" for k in keys if k in r))' 2>/dev/null) ;;
    *) figure=$(grep -m1 -E 'failure|error|SKIPPED|FAILED|No errors' "$step_out" | cut -c1-160) ;;
  esac
  case $rc in
    0) verdict=passed ;;
    77) verdict=skipped; figure=$(grep -m1 SKIPPED "$step_out" | cut -c1-160) ;;
    124|137) verdict=failed; figure="timed out after $t s"; failed=1 ;;
    *) verdict=failed; failed=1; [[ -n $figure ]] || figure="exit $rc: $(tail -n1 "$step_out" | cut -c1-160)" ;;
  esac
  say "$name $verdict${figure:+ ($figure)} [${secs} s]"
  rm -f "$step_out"
done
say "done in $(($(date +%s) - start)) s; logs in $log"
exit $failed

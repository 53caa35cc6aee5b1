#!/usr/bin/env bash
# The README's first command: HW1 end to end on built-in data, in about five minutes on 2 CPU cores.
# Generates a small problem-1-like and problem-2-like set in the course layouts, trains the ResNet101 classifier
# and the DeepLabv3-ResNet101 segmenter from scratch with the trainers, predicts (CSV, ensemble CSV, masks), scores the masks
# with hw1-miou, draws the t-SNE of the classifier's features, and prints what was reached next to chance level.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/demo.sh [--work DIR] [--bin DIR] [--force] [--quick]
  --work DIR  where data, runs, predictions and pictures go (default ./hw1-demo); refused if it holds files,
              unless --force (each program then replaces only its own files)
  --bin DIR   folder of the hw1-* programs (default: $HW1_BIN, else build/examples of this tree, else $PATH)
  --quick     a smoke run (tiny sets, 1 epoch each): checks the pipeline, learns nothing
EOF
}

work=./hw1-demo
bin=${HW1_BIN:-}
force=()
quick=0
while (($#)); do
  case $1 in
    --work) work=${2:?--work needs a folder}; shift 2 ;;
    --bin) bin=${2:?--bin needs a folder}; shift 2 ;;
    --force) force=(--force); shift ;;
    --quick) quick=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "demo.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -z $bin ]]; then
  if [[ -x $root/build/examples/hw1-predict ]]; then bin=$root/build/examples; fi
fi
prog() {
  if [[ -n $bin ]]; then echo "$bin/$1"; else command -v "$1" || echo "$1"; fi
}
for p in hw1-make-data hw1-train-classifier hw1-train-segmenter hw1-predict hw1-miou hw1-tsne; do
  if [[ ! -x $(prog $p) ]]; then
    echo "demo.sh: cannot find $p; build the examples first (cmake -S . -B build && cmake --build build)," \
      "or pass --bin DIR / set HW1_BIN" >&2
    exit 1
  fi
done
if [[ -d $work && -n $(ls -A "$work") && ${#force[@]} -eq 0 ]]; then
  echo "demo.sh: $work already holds files; pass --force to redo the demo there, or --work NEW_DIR" >&2
  exit 1
fi
mkdir -p "$work"

# libgomp's threads spin while they wait; on a busy machine (fewer free cores than threads) that spinning took
# 4x longer than sleeping. A user's own setting wins.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

# Sizes: each trainer gets about two minutes on 2 cores (README, "The two commands"; docs/demo.md). Small tiles buy
# steps: from scratch, a ResNet101 needs a few hundred of them before its predictions follow the input.
cls_classes=5 cls_train=120 cls_val=30 cls_epochs=15
seg_train=96 seg_val=16 seg_size=32 seg_epochs=20
if ((quick)); then
  cls_classes=3 cls_train=8 cls_val=4 cls_epochs=1
  seg_train=4 seg_val=3 seg_size=32 seg_epochs=1
fi
mid=$(((seg_epochs + 1) / 2))
snap_epochs=$(printf '%s\n' 1 $mid $seg_epochs | sort -nu | paste -sd, -)

data=$work/data
cls=$data/classification seg=$data/segmentation
runc=$work/runs/classifier runs=$work/runs/deeplabv3
pred=$work/predictions
mkdir -p "$pred"
log=$work/demo.log
: >"$log"
t_start=$SECONDS

step() {  # step NAME command...: stdout to the terminal and demo.log, stderr (progress bars) to the terminal
  local name=$1 t0=$SECONDS
  shift
  printf '\n== %s\n' "$name" | tee -a "$log"
  echo "\$ $*" >>"$log"
  if ! "$@" | tee -a "$log"; then
    echo "demo.sh: step '$name' failed (command: $*)" >&2
    exit 1
  fi
  printf '   (%d s)\n' $((SECONDS - t0)) | tee -a "$log"
}

step "data: problem-1-like set ($cls_classes classes x $cls_train train / $cls_val val, 32x32)" \
  "$(prog hw1-make-data)" --kind classification --out "$cls" --classes $cls_classes \
  --train-per-class $cls_train --val-per-class $cls_val --seed 1 "${force[@]}"
step "data: problem-2-like set ($seg_train train / $seg_val val tiles, ${seg_size}x${seg_size})" \
  "$(prog hw1-make-data)" --kind segmentation --out "$seg" --train $seg_train --val $seg_val --size $seg_size \
  --seed 1 "${force[@]}"

step "train ResNet101 classifier ($cls_epochs epochs, from scratch, input 32x32)" \
  "$(prog hw1-train-classifier)" --train "$cls/train_50" --val "$cls/val_50" --out "$runc" --epochs $cls_epochs \
  --batch-size 32 --optimizer adam --lr 1e-3 --hflip --seed 1 "${force[@]}"
step "train DeepLabv3-ResNet101 segmenter ($seg_epochs epochs, from scratch)" \
  "$(prog hw1-train-segmenter)" --model deeplabv3 --train "$seg/train" --val "$seg/validation" --out "$runs" \
  --epochs $seg_epochs --batch-size 8 --optimizer sgd --lr 0.02 --schedule poly \
  --hflip --vflip --rot90 --seed 1 --keep-epochs 1 \
  --snapshot-images 0000,0001,0002 --snapshot-epochs "$snap_epochs" "${force[@]}"

# Problem 1: the best epoch alone, and the report's ensemble: the epochs of lowest validation loss (the report
# took 5 of 15; here 3), by majority vote.
ens=()
for e in $(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "val_loss") c = i; next } { print $c, $1 }' \
  "$runc/metrics.csv" | sort -g | head -n 3 | awk '{ print $2 }'); do
  ens+=(--checkpoint "$runc/$(printf 'epoch-%03d.safetensors' "$e")")
done
step "predict problem 1 (best epoch)" "$(prog hw1-predict)" --checkpoint "$runc/best.safetensors" \
  --images "$cls/val_50" --csv "$pred/val_50.csv" "${force[@]}"
step "predict problem 1 (ensemble of the 3 lowest-val-loss epochs)" "$(prog hw1-predict)" "${ens[@]}" \
  --images "$cls/val_50" --csv "$pred/val_50_ensemble.csv" "${force[@]}"
# Problem 2: masks of the validation tiles, scored as the course does.
step "predict problem 2 masks" "$(prog hw1-predict)" --checkpoint "$runs/best.safetensors" \
  --images "$seg/validation" --masks "$pred/masks" "${force[@]}"
printf '\n== score masks (hw1-miou, the course metric)\n' | tee -a "$log"
miou_out=$("$(prog hw1-miou)" --gt "$seg/validation" --pred "$pred/masks" --chance)
echo "$miou_out" | tee -a "$log"
step "t-SNE of the classifier's penultimate features" "$(prog hw1-tsne)" --checkpoint "$runc/best.safetensors" \
  --images "$cls/val_50" --out "$work/tsne.png" --perplexity 30 --seed 1 "${force[@]}"

# Accuracy from the CSV: the {label}_ prefix of each name is the truth.
accuracy() {
  awk -F, 'NR > 1 { split($1, a, "_"); n++; c += (a[1] == $2) } END { printf "%.4f (%d/%d)", c / n, c, n }' "$1"
}
acc=$(accuracy "$pred/val_50.csv")
acc_ens=$(accuracy "$pred/val_50_ensemble.csv")
miou=$(awk '/^mean_iou:/ { print $2 }' <<<"$miou_out")
chance_miou=$(awk '/^chance_miou:/ { print $2 }' <<<"$miou_out")
chance_acc=$(awk "BEGIN { printf \"%.4f\", 1 / $cls_classes }")
ratio() { awk -v a="${1%% *}" -v b="$2" 'BEGIN { printf "%.1fx", (b > 0) ? a / b : 0 }'; }  # ratio 0.41 0.08 -> 5.1x

{
  printf '\n================ HW1 demo summary (%d s) ================\n' $((SECONDS - t_start))
  printf '%-44s %s = %s chance (%s = 1/%d)\n' "problem 1: ResNet101, $cls_classes classes, val accuracy" "$acc" \
    "$(ratio "$acc" "$chance_acc")" "$chance_acc" $cls_classes
  printf '%-44s %s = %s chance\n' "  ensemble of the 3 lowest-val-loss epochs" "$acc_ens" "$(ratio "$acc_ens" "$chance_acc")"
  printf '%-44s %s = %s chance (%s: best constant or random labels)\n' \
    "problem 2: DeepLabv3, 7 classes, val mIoU" "$miou" "$(ratio "$miou" "$chance_miou")" "$chance_miou"
  printf 'pictures and outputs\n'
  printf '  %-17s %s\n' "training curves" "$runc/curves.png" "" "$runs/curves.png" \
    "mask snapshots" "$runs/snapshots/ (epochs $snap_epochs: image | ground truth | prediction)" \
    "t-SNE" "$work/tsne.png (coordinates: $work/tsne.csv)" \
    "predictions" "$pred/val_50.csv, $pred/val_50_ensemble.csv, $pred/masks/" "full log" "$log"
} | tee -a "$log"

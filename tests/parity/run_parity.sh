#!/bin/sh
# One parity case, start to end: PyTorch writes the reference into DIR, parity_check holds hw1 to it, and DIR is
# removed when the case passes (a DeepLabv3 directory is ~1.5 GB; a failing case keeps it for a look, and
# HW1_PARITY_KEEP=1 keeps every one).
# Usage: run_parity.sh PYTHON MAKE_REFERENCE PARITY_CHECK HW1_FORWARD DIR MODEL K SHAPE SEED MODE
set -eu
if [ $# -ne 10 ]; then
  echo "usage: run_parity.sh PYTHON MAKE_REFERENCE PARITY_CHECK HW1_FORWARD DIR MODEL K SHAPE SEED MODE" >&2
  exit 2
fi
python=$1 make_reference=$2 parity_check=$3 forward=$4 dir=$5 model=$6 k=$7 shape=$8 seed=$9
shift 9
mode=$1
# Without PyTorch there is no reference: the case reports itself skipped (ctest: SKIP_RETURN_CODE 77).
if ! "$python" -c "import torch, torchvision" 2>/dev/null; then
  echo "run_parity.sh: $python has no torch / torchvision (Debian: python3-torch python3-torchvision): skipped"
  exit 77
fi
rm -rf "$dir"
# HW1_PARITY_PTH=SPEC: the weights as a torch.save .pth (make_reference.py --pth), read by hw1-forward as it is.
"$python" "$make_reference" --model "$model" --num-classes "$k" --shape "$shape" --seed "$seed" --mode "$mode" \
  --out "$dir" ${HW1_PARITY_PTH:+--pth "$HW1_PARITY_PTH"}
"$parity_check" -- "$forward" "$dir" "$model" "$k" "$mode"
if [ "${HW1_PARITY_KEEP:-0}" = 1 ]; then
  echo "run_parity.sh: kept $dir (HW1_PARITY_KEEP=1)"
else
  rm -rf "$dir"
fi

#!/bin/sh
# Loading a ResNet101 .pth (178 MB) with hw1 and with torch.load, same file, same machine, warm page cache.
# Usage: bench/pth_load.sh HW1_PTH_BENCH WORK_DIR [REPEATS]   (Python with torch: Debian's /usr/bin/python3)
# Writes WORK_DIR/resnet101-zip.pth and resnet101-legacy.pth (torchvision resnet101, seed 0) if missing, then per
# file: hw1-pth-bench's runs and median, torch.load's runs and median, both in-process (interpreter start-up and
# `import torch` not counted), and the wall time of one whole process each (`hw1-convert --list`-like: start-up
# included).
set -eu
bench=$1 dir=$2 reps=${3:-5}
py=/usr/bin/python3
mkdir -p "$dir"
"$py" - "$dir" <<'PY'
import os, sys, torch, torchvision
d = sys.argv[1]
if not os.path.exists(os.path.join(d, "resnet101-legacy.pth")):
    torch.manual_seed(0)
    sd = torchvision.models.resnet101().state_dict()
    torch.save(sd, os.path.join(d, "resnet101-zip.pth"))
    torch.save(sd, os.path.join(d, "resnet101-legacy.pth"), _use_new_zipfile_serialization=False)
PY
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); nproc: $(nproc)"
echo "torch $("$py" -c 'import torch; print(torch.__version__, "threads", torch.get_num_threads())')"
for f in "$dir/resnet101-zip.pth" "$dir/resnet101-legacy.pth"; do
  ls -l "$f" | awk '{print $5 " bytes: " $9}'
  "$bench" "$f" 1 >/dev/null  # warm the page cache
  "$bench" "$f" "$reps"
  "$py" - "$f" "$reps" <<'PY'
import sys, time, torch
f, reps = sys.argv[1], int(sys.argv[2])
t = []
for _ in range(reps):
    t0 = time.perf_counter()
    sd = torch.load(f, map_location="cpu")
    t.append(time.perf_counter() - t0)
print(f"torch.load {f}: {len(sd)} tensors; runs " + " ".join(f"{s:.3f}" for s in t) + f" s; median {sorted(t)[len(t) // 2]:.3f} s")
PY
  s=$(date +%s.%N); "$bench" "$f" 1 >/dev/null; e=$(date +%s.%N)
  echo "whole process, hw1-pth-bench FILE 1: $(echo "$e - $s" | bc) s"
  s=$(date +%s.%N); "$py" -c "import sys, torch; torch.load(sys.argv[1])" "$f"; e=$(date +%s.%N)
  echo "whole process, python3 -c 'import torch; torch.load(FILE)': $(echo "$e - $s" | bc) s"
done

#!/usr/bin/env bash
# Builds, on this (GPU-less) machine, what scripts/gpu-check.sh runs on a lent GPU machine, and gathers it into
# .gpu-bundle/ (ignored by git) for the device tool to carry:
#   bin/  the GPU test programs, the trainers, hw1-predict and hw1-bench-gpu, built for sm_90 (H100 / H200; override
#         with HW1_GPU_ARCH) with HW1_NATIVE=OFF, since the device's CPU may lack this machine's AVX-512 extensions;
#   lib/  the shared libraries they need that the device image may lack (Boost.Test, libpng, libjpeg, cairo and
#         its dependencies, OpenMP, ...): everything ldd resolves except glibc's own libraries and the CUDA ones
#         (driver, cuDNN, cuBLAS), which are far over the carry limit and come from the device.
# Prints the bundle's size: the device tool carries at most 64 MiB in all.
#   scripts/gpu-bundle.sh            then: device run, carry [".gpu-bundle"], command scripts/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
build=${HW1_GPU_BUILD:-build-gpu}
arch=${HW1_GPU_ARCH:-90}
out=.gpu-bundle
targets=(test_gpu_ops test_gpu_models test_gpu_train hw1-train-segmenter hw1-train-classifier hw1-predict
  hw1-bench-gpu hw1-make-data)

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHW1_CUDA=ON -DHW1_NATIVE=OFF \
  -DCMAKE_CUDA_ARCHITECTURES="$arch" >/dev/null
cmake --build "$build" -j"${HW1_JOBS:-2}" --target "${targets[@]}"

rm -rf "$out"
mkdir -p "$out/bin" "$out/lib"
for t in "${targets[@]}"; do
  f=$(find "$build" -type f -name "$t" -perm -u+x | head -n1)
  [[ -n $f ]] || { echo "gpu-bundle: $t was not built in $build" >&2; exit 1; }
  cp "$f" "$out/bin/"
  strip --strip-unneeded "$out/bin/$t"
done
# glibc's libraries and the loader stay the device's; the CUDA libraries come from the device too.
skip='^(linux-vdso|ld-linux|libc\.|libm\.|libpthread\.|libdl\.|librt\.|libresolv\.|libcuda\.|libnvidia|libcudnn|libcublas|libcudart|libnvrtc|libnccl|libnvJitLink)'
for b in "$out"/bin/*; do
  ldd "$b" | awk '/=> \//{print $1, $3}'
done | sort -u | while read -r name path; do
  [[ $name =~ $skip ]] && continue
  cp -L "$path" "$out/lib/$name"
done
strip --strip-unneeded "$out"/lib/* 2>/dev/null || true
cuda_needs=$(for b in "$out"/bin/*; do ldd "$b" | awk '{print $1}'; done | grep -E '^lib(cudnn|cublas|cudart|nccl)' | sort -u | tr '\n' ' ')
echo "gpu-bundle: $out holds $(ls "$out/bin" | wc -l) programs and $(ls "$out/lib" | wc -l) libraries," \
  "$(du -sm "$out" | cut -f1) MiB (the device tool carries at most 64 MiB with the working tree)"
echo "gpu-bundle: from the device they need: ${cuda_needs:-nothing beyond the driver}"

// OpenBLAS behind hw1's CPU GEMMs, loaded at run time: header-only users link nothing new, and a machine without
// OpenBLAS runs Eigen's GEMM instead. On the reference machine OpenBLAS's AVX-512 sgemm runs about 1.8x Eigen's.
//
// Loading it is the library's business, not the environment's:
//  * Which library: HW1_OPENBLAS (a path) if set, else Debian's OpenMP build
//    (/usr/lib/<arch>/openblas-openmp/libopenblas.so.0, package libopenblas0-openmp), else libopenblas.so.0.
//    hw1's kernels call GEMM from inside their own OpenMP regions, where the OpenMP build runs single-threaded by
//    itself; a pthreads build is told to use one thread, so the two never stack threads on two cores.
//  * Which kernels: OpenBLAS 0.3.21 misdetects recent AVX-512 CPUs (AMD Zen 4/5) and machines are often set up
//    with OPENBLAS_CORETYPE=Haswell because of it, which halves its speed. On a CPU with AVX-512F, hw1 loads it
//    with OPENBLAS_CORETYPE=SkylakeX unless HW1_BLAS_CORETYPE names another core; the variable is restored
//    afterwards, so child processes see the environment they were given.
//  * HW1_BLAS=0 (or off / eigen) keeps Eigen's GEMM.
// blas_name() says which one runs ("OpenBLAS 0.3.21 (SkylakeX)" or "Eigen (...)").
#pragma once
#include <cstdlib>
#include <string>

#if defined(__linux__) && !defined(HW1_NO_BLAS)
#include <dlfcn.h>
#define HW1_BLAS_LOADER 1
#endif

namespace hw1::cpu {
// Whether the environment variable `name` switches a kernel path off: 0, off, OFF or no (or `also`).
inline bool env_off(const char* name, const char* also = nullptr) {
  const char* v = std::getenv(name);
  if (!v) return false;
  const std::string s(v);
  return s == "0" || s == "off" || s == "OFF" || s == "no" || (also && s == also);
}
}  // namespace hw1::cpu

namespace hw1::cpu::blas {

// The CBLAS entry points hw1 uses (OpenBLAS's 32-bit-integer build; enum values from cblas.h).
enum : int { RowMajor = 101, NoTrans = 111, Trans = 112 };
using sgemm_fn = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
using dgemm_fn = void (*)(int, int, int, int, int, int, double, const double*, int, const double*, int, double,
                          double*, int);

struct Library {
  sgemm_fn sgemm = nullptr;
  dgemm_fn dgemm = nullptr;
  std::string name = "Eigen";
  bool loaded() const { return sgemm && dgemm; }
};

namespace detail {

inline bool disabled_by_env() { return env_off("HW1_BLAS", "eigen"); }

#ifdef HW1_BLAS_LOADER
inline void* open_first() {
  if (const char* path = std::getenv("HW1_OPENBLAS"); path && *path) return dlopen(path, RTLD_NOW | RTLD_LOCAL);
  const char* candidates[] = {
#if defined(__x86_64__)
      "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0",
#elif defined(__aarch64__)
      "/usr/lib/aarch64-linux-gnu/openblas-openmp/libopenblas.so.0",
#endif
      "libopenblas.so.0", "libopenblas.so"};
  for (const char* c : candidates)
    if (void* h = dlopen(c, RTLD_NOW | RTLD_LOCAL)) return h;
  return nullptr;
}

inline bool cpu_has_avx512f() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  return __builtin_cpu_supports("avx512f");
#else
  return false;
#endif
}

inline Library load() {
  Library lib;
  if (disabled_by_env()) {
    lib.name = "Eigen (HW1_BLAS=" + std::string(std::getenv("HW1_BLAS")) + ")";
    return lib;
  }
  // OpenBLAS reads OPENBLAS_CORETYPE once, when it is loaded.
  const char* old = std::getenv("OPENBLAS_CORETYPE");
  const std::string saved = old ? old : "";
  const char* want = std::getenv("HW1_BLAS_CORETYPE");
  std::string core = want && *want ? want : cpu_has_avx512f() ? "SkylakeX" : "";
  if (!core.empty()) setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
  void* h = open_first();
  if (!core.empty()) {
    if (old)
      setenv("OPENBLAS_CORETYPE", saved.c_str(), 1);
    else
      unsetenv("OPENBLAS_CORETYPE");
  }
  if (!h) {
    lib.name = "Eigen (no OpenBLAS found; Debian: libopenblas0-openmp)";
    return lib;
  }
  lib.sgemm = reinterpret_cast<sgemm_fn>(dlsym(h, "cblas_sgemm"));
  lib.dgemm = reinterpret_cast<dgemm_fn>(dlsym(h, "cblas_dgemm"));
  auto parallel = reinterpret_cast<int (*)()>(dlsym(h, "openblas_get_parallel"));
  auto set_threads = reinterpret_cast<void (*)(int)>(dlsym(h, "openblas_set_num_threads"));
  auto corename = reinterpret_cast<char* (*)()>(dlsym(h, "openblas_get_corename"));
  auto config = reinterpret_cast<char* (*)()>(dlsym(h, "openblas_get_config"));
  if (!lib.loaded() || !parallel || !set_threads) {
    lib = Library{};
    lib.name = "Eigen (the OpenBLAS found lacks cblas_sgemm/dgemm)";
    return lib;
  }
  if (parallel() != 2) set_threads(1);  // not the OpenMP build: one thread per call (see above)
  std::string cfg = config ? config() : "OpenBLAS";  // "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY ..."
  const auto sp = cfg.find(' ', cfg.find(' ') + 1);
  lib.name = cfg.substr(0, sp) + " (" + (corename ? corename() : "?") + ")";
  return lib;
}
#else
inline Library load() {
  Library lib;
  lib.name = "Eigen";
  return lib;
}
#endif

}  // namespace detail

// Loaded once, on first use (thread-safe).
inline const Library& library() {
  static const Library lib = detail::load();
  return lib;
}

}  // namespace hw1::cpu::blas

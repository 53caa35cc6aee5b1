// hw1::read_pth (every .pth the programs take: --weights, --init-weights, --checkpoint, hw1-convert): the input is
// written to a file on /dev/shm (the reader takes a path: minizip opens the zip itself) and read through the real
// entry point, then every tensor is converted to float as Model::load does. Seeds: a zip archive and a legacy file
// of the unit tests' state_dict (views sharing a storage, offsets, F16 / BF16 / F64 / I64), built by
// tests/common/pth_files.hpp. Mutations of a zip mostly meet minizip's CRC check; the legacy seed reaches the
// pickle interpreter directly.
#include "common/pth_files.hpp"
#include "fuzz_common.hpp"

namespace {
namespace tp = hw1::test::pth;
}  // namespace

void hw1_fuzz_seeds(const std::filesystem::path& dir) {
  const std::vector<float> f32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  const std::vector<std::uint16_t> f16{0x3c00, 0xc000, 0x3800}, bf16{0x3f80, 0xc040};
  const std::vector<double> f64{0.5, -1.25};
  const std::vector<std::int64_t> i64{7};
  const std::vector<tp::TensorSpec> ts{
      {"a", "FloatStorage", "0", 12, 2, {2, 3}, {3, 1}},  {"b", "FloatStorage", "0", 12, 0, {3, 2}, {1, 3}},
      {"h", "HalfStorage", "1", 3, 0, {3}, {1}},          {"bf", "BFloat16Storage", "2", 2, 0, {2, 1}, {1, 1}},
      {"d", "DoubleStorage", "3", 2, 1, {1}, {1}},        {"bn.num_batches_tracked", "LongStorage", "4", 1, 0, {}, {}},
  };
  tp::write_zip_file(dir / "state_dict.pth",
                     {{"archive/data.pkl", tp::state_dict_pickle(ts, false)}, {"archive/data/0", tp::raw(f32)},
                      {"archive/data/1", tp::raw(f16)}, {"archive/data/2", tp::raw(bf16)},
                      {"archive/data/3", tp::raw(f64)}, {"archive/data/4", tp::raw(i64)},
                      {"archive/version", "3\n"}});
  hw1::fuzz::write_seed(dir, "legacy.pth",
                        tp::legacy_file(tp::state_dict_pickle(ts, true),
                                        {{"0", tp::raw(f32)}, {"1", tp::raw(f16)}, {"2", tp::raw(bf16)},
                                         {"3", tp::raw(f64)}, {"4", tp::raw(i64)}},
                                        {4, 2, 2, 8, 8}));
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = hw1::fuzz::scratch_dir("hw1-fuzz-pth-") / "input.pth";
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(data), std::streamsize(size));
  }
  return hw1::fuzz::run([&] {
    hw1::fuzz::read_every_tensor(hw1::read_pth(path.string()));  // ASan: the views stay inside their storages
  });
}

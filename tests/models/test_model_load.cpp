// Model::load is transactional: a load that throws (strict or not) leaves every value of the model bit-identical,
// whichever tensor of the file is the bad one. A two-layer model keeps it fast; the rule lives in model.hpp.
#define BOOST_TEST_MODULE model_load
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <string>
#include <vector>

#include "common/testing.hpp"
#include "hw1/backend/cpu.hpp"
#include "hw1/models/model.hpp"

using namespace hw1;
using hw1::test::contains;
using hw1::test::error_of;
using hw1::test::TempDir;

namespace {

// Registered in this order: a.weight, a.bias, bn.running_mean (a buffer), z.weight (last, so a bad z.weight
// is found only after everything before it would have been written by a load that writes as it goes).
struct Tiny : Model<Tiny, backend::cpu_t<float>> {
  static constexpr const char* model_name = "tiny";
  explicit Tiny(std::uint64_t seed) { finalize(seed); }
  void visit(ParamSet<float>& ps, const std::string& p) {
    ps.add(p + "a.weight", {4, 3}, true, {Init::uniform, 1.0});
    ps.add(p + "a.bias", {4}, true, {Init::uniform, 1.0});
    ps.add(p + "bn.running_mean", {4}, false, {Init::normal, 1.0});
    ps.add(p + "z.weight", {2, 2}, true, {Init::uniform, 1.0});
  }
};

std::vector<unsigned char> snapshot(const Tiny& m) {
  std::vector<unsigned char> out;
  for (const auto& e : m.params().entries()) {
    const auto* p = reinterpret_cast<const unsigned char*>(m.params().data(e));
    out.insert(out.end(), p, p + e.size * sizeof(float));
  }
  return out;
}

// The tensors of `Tiny(seed)`, optionally with z.weight replaced, dropped, or a stray tensor added.
std::string write_file(const TempDir& dir, const std::string& name, std::uint64_t seed, const std::string& change) {
  Tiny src(seed);
  SafeTensorsWriter w;
  const std::vector<float> wrong_shape(6, 9.0f);
  const std::vector<double> f64(4, 2.0);
  for (const auto& e : src.params().entries()) {
    if (e.name == "z.weight" && change == "shape") w.add(e.name, Shape{3, 2}, wrong_shape.data());
    else if (e.name == "z.weight" && change == "missing") continue;
    else w.add(e.name, e.shape, src.params().data(e));
  }
  if (change == "unexpected") w.add("zz.extra", Shape{1}, f64.data());
  const std::string path = (dir.path / name).string();
  w.write(path);
  return path;
}

}  // namespace

BOOST_AUTO_TEST_CASE(good_load_copies_every_value) {
  TempDir tmp("model-load-good");
  Tiny m(1);
  const std::string path = write_file(tmp, "good.safetensors", 2, "");
  const LoadReport r = m.load(path);
  BOOST_TEST(r.loaded.size() == 4u);
  BOOST_TEST((snapshot(m) == snapshot(Tiny(2))));
}

BOOST_AUTO_TEST_CASE(failing_strict_load_leaves_the_model_bit_identical) {
  TempDir tmp("model-load-strict");
  for (const std::string change : {"shape", "missing", "unexpected"}) {
    Tiny m(1);
    const auto before = snapshot(m);
    BOOST_REQUIRE(before != snapshot(Tiny(2)));
    const std::string path = write_file(tmp, change + ".safetensors", 2, change);
    const std::string e = error_of([&] { m.load(path); });
    BOOST_TEST(contains(e, path + ": "), change << ": " << e);
    BOOST_TEST((snapshot(m) == before), change << ": a failing strict load changed the model's values");
  }
}

BOOST_AUTO_TEST_CASE(unconvertible_dtype_fails_before_writing) {
  // A U16 tensor passes the reader (a valid safetensors dtype) but cannot be converted: checked up front.
  TempDir tmp("model-load-dtype");
  Tiny src(2);
  nlohmann::ordered_json j;
  std::vector<unsigned char> data;
  for (const auto& e : src.params().entries()) {
    const bool bad = e.name == "z.weight";
    const std::size_t n = e.size * (bad ? 2 : 4);
    j[e.name] = {{"dtype", bad ? "U16" : "F32"}, {"shape", e.shape}, {"data_offsets", {data.size(), data.size() + n}}};
    const auto* p = reinterpret_cast<const unsigned char*>(src.params().data(e));
    data.insert(data.end(), p, p + n);
  }
  const std::string header = j.dump();
  std::vector<unsigned char> bytes(8);
  for (int i = 0; i < 8; ++i) bytes[std::size_t(i)] = (std::uint64_t(header.size()) >> (8 * i)) & 0xff;
  bytes.insert(bytes.end(), header.begin(), header.end());
  bytes.insert(bytes.end(), data.begin(), data.end());
  const SafeTensors file = SafeTensors::parse(bytes, "u16.safetensors");
  for (bool strict : {true, false}) {
    Tiny m(1);
    const auto before = snapshot(m);
    const std::string e = error_of([&] { m.load(file, {strict}); });
    BOOST_TEST(contains(e, "u16.safetensors: tensor z.weight has dtype U16, which cannot be converted"), e);
    BOOST_TEST((snapshot(m) == before));
  }
}

BOOST_AUTO_TEST_CASE(non_strict_load_skips_and_reports) {
  TempDir tmp("model-load-loose");
  Tiny m(1);
  const auto z_before = std::vector<float>(m.params().data(*m.params().find("z.weight")),
                                           m.params().data(*m.params().find("z.weight")) + 4);
  const LoadReport r = m.load(write_file(tmp, "shape.safetensors", 2, "shape"), {false});
  BOOST_TEST(r.loaded.size() == 3u);
  BOOST_TEST(r.mismatched.size() == 1u);
  const float* z = m.params().data(*m.params().find("z.weight"));
  BOOST_TEST((std::vector<float>(z, z + 4) == z_before));
}

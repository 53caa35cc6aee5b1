// The safetensors reader refuses every header whose shapes, dtypes and data_offsets disagree or point outside
// the file (hand-made headers; tests/fuzz/fuzz_safetensors.cpp throws random ones at it), and the writer makes
// its file durable (fsync of the file and its directory, through hw1::AtomicFile).
#define BOOST_TEST_MODULE safetensors
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "common/testing.hpp"
#include "hw1/core/safetensors.hpp"

using namespace hw1;
using hw1::test::contains;
using hw1::test::error_of;
using hw1::test::TempDir;

namespace {

// A file: 8-byte length, `header` (JSON), then `data_bytes` bytes of data.
std::vector<unsigned char> file_bytes(const std::string& header, std::size_t data_bytes) {
  std::string b(8, '\0');
  for (int i = 0; i < 8; ++i) b[std::size_t(i)] = char((std::uint64_t(header.size()) >> (8 * i)) & 0xff);
  b += header;
  b.append(data_bytes, '\x3f');
  return {b.begin(), b.end()};
}
std::string parse_error(const std::string& header, std::size_t data_bytes) {
  return error_of([&] { SafeTensors::parse(file_bytes(header, data_bytes), "w.safetensors"); });
}

}  // namespace

BOOST_AUTO_TEST_CASE(round_trip_and_in_memory_parse) {
  TempDir tmp("safetensors-rt");
  const std::vector<float> a{1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.0f};
  SafeTensorsWriter w;
  w.metadata["format"] = "test";
  w.add("a", Shape{2, 3}, a.data());
  const std::string path = (tmp.path / "t.safetensors").string();
  w.write(path);
  const SafeTensors st = SafeTensors::read(path);
  BOOST_TEST(st.metadata.at("format") == "test");
  BOOST_TEST((st.info("a").shape == Shape{2, 3}));
  std::vector<float> back(6);
  st.copy_to("a", back.data());
  BOOST_TEST(back == a);
  const std::string bytes = hw1::test::bytes_of(path);
  const SafeTensors mem = SafeTensors::parse(std::vector<unsigned char>(bytes.begin(), bytes.end()), "mem");
  std::vector<float> back2(6);
  mem.copy_to("a", back2.data());
  BOOST_TEST(back2 == a);
  // A zero-sized tensor and a scalar are fine.
  BOOST_TEST(parse_error(R"({"z":{"dtype":"F32","shape":[0,5],"data_offsets":[0,0]},)"
                         R"("s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})", 4) == "");
}

BOOST_AUTO_TEST_CASE(negative_shape_is_refused) {
  // [-1,-1] used to be cast to size_t (2^64-1 each), whose product wraps to 1: a "1-element" tensor of shape
  // [18446744073709551615,18446744073709551615] that hw1-forward then read far out of bounds.
  const std::string e = parse_error(R"({"w":{"dtype":"F32","shape":[-1,-1],"data_offsets":[0,4]}})", 4);
  BOOST_TEST(contains(e, "w.safetensors: tensor w: shape [-1,-1] has an entry that is not a non-negative integer"), e);
}

BOOST_AUTO_TEST_CASE(non_integer_shape_is_refused) {
  for (const char* shape : {"[2.5]", "[\"2\"]", "[true]", "[null]", "[[2]]", "2", "{}"}) {
    const std::string e =
        parse_error(std::string(R"({"w":{"dtype":"F32","shape":)") + shape + R"(,"data_offsets":[0,8]}})", 8);
    BOOST_TEST(contains(e, "w.safetensors: tensor w: "), shape << ": " << e);
  }
}

BOOST_AUTO_TEST_CASE(overflowing_shape_is_refused) {
  // 2^32 * 2^32 * 4 bytes wraps to 0 in 64 bits: it used to match data_offsets [0,0].
  const std::string e =
      parse_error(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", 0);
  BOOST_TEST(contains(e, "w.safetensors: tensor w: shape [4294967296,4294967296] of F32 needs more bytes than the "
                         "file holds"), e);
  // 2^62 * 4 bytes wraps to 0 as well.
  const std::string e2 = parse_error(R"({"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})", 0);
  BOOST_TEST(contains(e2, "needs more bytes than the file holds"), e2);
  // A zero dimension next to huge ones.
  const std::string e3 =
      parse_error(R"({"w":{"dtype":"F32","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}})", 0);
  BOOST_TEST(contains(e3, "is too large"), e3);
}

BOOST_AUTO_TEST_CASE(offsets_must_match_the_shape_and_lie_in_the_file) {
  const std::string e = parse_error(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", 24);
  BOOST_TEST(contains(e, "w.safetensors: tensor w: data_offsets [0,20] do not match shape [2,3] of F32 (24 bytes)"), e);
  const std::string e2 = parse_error(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}})", 12);
  BOOST_TEST(contains(e2, "w.safetensors: tensor w: data ends at byte 24 but the file holds only 12 data bytes"), e2);
  const std::string e3 = parse_error(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 12);
  BOOST_TEST(contains(e3, "do not match"), e3);
  for (const char* off : {"[0]", "[0,8,9]", "[-8,0]", "[0.0,8.0]", "\"0,8\"", "[0,18446744073709551616]"}) {
    const std::string e4 =
        parse_error(std::string(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":)") + off + "}}", 8);
    BOOST_TEST(contains(e4, "w.safetensors: tensor w: "), off << ": " << e4);
  }
}

BOOST_AUTO_TEST_CASE(deeply_nested_values_are_refused_without_recursion) {
  // Error messages used to print the shape with json::dump, which recurses once per nesting level.
  const std::size_t depth = 2000000;
  const std::string nested = std::string(depth, '[') + std::string(depth, ']');
  const std::string e =
      parse_error(R"({"w":{"dtype":"F32","shape":)" + nested + R"(,"data_offsets":[0,4]}})", 4);
  BOOST_TEST(e == "w.safetensors: tensor w: shape (a nested list) has an entry that is not a non-negative integer");
  const std::string e2 =
      parse_error(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":)" + nested + "}}", 4);
  BOOST_TEST(e2 == "w.safetensors: tensor w: data_offsets (a nested list) is not a pair of non-negative integers");
  const std::string e3 = parse_error(R"({"w":{"dtype":"F32","shape":[")" + std::string(1000, 'x') +
                                         R"("],"data_offsets":[0,4]}})", 4);
  BOOST_TEST(e3.size() < 200u);
}

BOOST_AUTO_TEST_CASE(malformed_entries_and_headers) {
  BOOST_TEST(contains(parse_error(R"({"w":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}})", 4), "unsupported dtype F33"));
  BOOST_TEST(contains(parse_error(R"({"w":{"dtype":7,"shape":[1],"data_offsets":[0,4]}})", 4), "dtype is not a string"));
  BOOST_TEST(contains(parse_error(R"({"w":[1,2]})", 4), "tensor w: malformed header entry"));
  BOOST_TEST(contains(parse_error(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", 4), "tensor w: malformed header entry"));
  BOOST_TEST(contains(parse_error("[1,2]", 0), "not a JSON object"));
  BOOST_TEST(contains(parse_error("{", 0), "invalid JSON"));
  BOOST_TEST(contains(error_of([] { SafeTensors::parse({1, 2, 3}, "s"); }), "s: not a safetensors file"));
  std::vector<unsigned char> huge(8, 0xff);
  BOOST_TEST(contains(error_of([&] { SafeTensors::parse(huge, "h"); }), "h: not a safetensors file or truncated"));
}

BOOST_AUTO_TEST_CASE(writer_syncs_the_file_and_its_directory) {
  TempDir tmp("safetensors-sync");
  const float v = 1.0f;
  SafeTensorsWriter w;
  w.add("v", Shape{1}, &v);
  const auto before = detail::atomic_file_fsyncs.load();
  w.write((tmp.path / "v.safetensors").string());
  BOOST_TEST(detail::atomic_file_fsyncs.load() - before == 2u);  // the temporary, then the directory
  BOOST_TEST(SafeTensors::read((tmp.path / "v.safetensors").string()).has("v"));
  // Overwriting keeps one file and leaves no temporary; a missing directory is one clear line.
  w.write((tmp.path / "v.safetensors").string());
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(tmp.path)) {
    ++files;
    BOOST_TEST(!contains(e.path().string(), ".tmp"));
  }
  BOOST_TEST(files == 1u);
  const std::string e = error_of([&] { w.write((tmp.path / "no/such/v.safetensors").string()); });
  BOOST_TEST(contains(e, "v.safetensors: cannot create: No such file or directory"), e);
}

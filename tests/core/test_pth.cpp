// The .pth reader (hw1/core/pth.hpp) on files built byte by byte here (the pickles by hand, the zips with minizip's
// zip.h), so every format detail and every refusal is checked without PyTorch: views (offsets, transposed strides,
// shared storages), the dtypes, _metadata, the containers (bare, wrapped, --pth-key, DataParallel prefixes), both
// formats, and one clear line per bad file. Then, where Debian's /usr/bin/python3 has torch (label needs_torch),
// the same views as PyTorch itself writes them, in both formats, against the values PyTorch reads back.
#define BOOST_TEST_MODULE pth
#include <boost/test/unit_test.hpp>
#include <zip.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/pth_files.hpp"
#include "common/precondition.hpp"
#include "common/testing.hpp"
#include "hw1/core/pth.hpp"

namespace {

namespace fs = std::filesystem;
using hw1::test::contains;
using hw1::test::error_of;

using namespace hw1::test::pth;

void write_zip(const fs::path& path, const std::vector<Record>& recs) {
  BOOST_REQUIRE_NO_THROW(write_zip_file(path, recs));
}

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

// The standard test state_dict: views of one float32 storage (an offset view, a transposed view sharing it),
// float16, bfloat16, float64 and an int64 scalar (num_batches_tracked), in both formats.
struct Fixture {
  hw1::test::TempDir dir{"pth"};
  std::vector<float> f32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  std::vector<std::uint16_t> f16{0x3c00, 0xc000, 0x3800}, bf16{0x3f80, 0xc040};
  std::vector<double> f64{0.5, -1.25};
  std::vector<std::int64_t> i64{7};
  std::vector<TensorSpec> ts{
      {"a", "FloatStorage", "0", 12, 2, {2, 3}, {3, 1}},
      {"b", "FloatStorage", "0", 12, 0, {3, 2}, {1, 3}},
      {"h", "HalfStorage", "1", 3, 0, {3}, {1}},
      {"bf", "BFloat16Storage", "2", 2, 0, {2, 1}, {1, 1}},
      {"d", "DoubleStorage", "3", 2, 1, {1}, {1}},
      {"bn.num_batches_tracked", "LongStorage", "4", 1, 0, {}, {}},
  };
  std::vector<Record> records(const std::string& pickle, const std::string& top = "archive") const {
    return {{top + "/data.pkl", pickle}, {top + "/data/0", raw(f32)}, {top + "/data/1", raw(f16)},
            {top + "/data/2", raw(bf16)},  {top + "/data/3", raw(f64)}, {top + "/data/4", raw(i64)},
            {top + "/version", "3\n"}};
  }
  fs::path zip(const std::string& name, const std::string& pickle, const std::string& top = "archive") const {
    const fs::path p = dir.path / name;
    write_zip(p, records(pickle, top));
    return p;
  }
  fs::path legacy(const std::string& name, const std::string& object, bool little = true) const {
    const fs::path p = dir.path / name;
    write_file(p, legacy_file(object, {{"0", raw(f32)}, {"1", raw(f16)}, {"2", raw(bf16)}, {"3", raw(f64)}, {"4", raw(i64)}},
                              {4, 2, 2, 8, 8}, little));
    return p;
  }
};

void check_values(const hw1::SafeTensors& f, const std::string& prefix = "") {
  BOOST_TEST(f.names().size() == 6u);
  auto v = [&](const std::string& n) {
    auto t = f.tensor<double>(prefix + n);
    return std::vector<double>(t.data(), t.data() + t.size());
  };
  BOOST_TEST(v("a") == (std::vector<double>{2, 3, 4, 5, 6, 7}), boost::test_tools::per_element());
  BOOST_TEST(v("b") == (std::vector<double>{0, 3, 1, 4, 2, 5}), boost::test_tools::per_element());
  BOOST_TEST(v("h") == (std::vector<double>{1, -2, 0.5}), boost::test_tools::per_element());
  BOOST_TEST(v("bf") == (std::vector<double>{1, -3}), boost::test_tools::per_element());
  BOOST_TEST(v("d") == (std::vector<double>{-1.25}), boost::test_tools::per_element());
  BOOST_TEST(v("bn.num_batches_tracked") == (std::vector<double>{7}), boost::test_tools::per_element());
  BOOST_TEST(f.info(prefix + "a").dtype == "F32");
  BOOST_TEST(f.info(prefix + "h").dtype == "F16");
  BOOST_TEST(f.info(prefix + "bf").dtype == "BF16");
  BOOST_TEST(f.info(prefix + "d").dtype == "F64");
  BOOST_TEST(f.info(prefix + "bn.num_batches_tracked").dtype == "I64");
  BOOST_TEST(hw1::shape_str(f.info(prefix + "b").shape) == "[3,2]");
  BOOST_TEST(hw1::shape_str(f.info(prefix + "bf").shape) == "[2,1]");
  BOOST_TEST(f.info(prefix + "bn.num_batches_tracked").shape.empty());
}

// One line, naming the file, saying `what`.
void check_error(const fs::path& p, const std::string& what, const std::string& key = "") {
  const std::string e = error_of([&] { hw1::read_weights(p.string(), key); });
  BOOST_TEST_INFO("error: " << e);
  BOOST_TEST(e.rfind(p.string() + ": ", 0) == 0u);
  BOOST_TEST(contains(e, what));
  BOOST_TEST(!contains(e, "\n"));
}

}  // namespace

BOOST_FIXTURE_TEST_CASE(zip_views_dtypes_and_metadata, Fixture) {
  check_values(hw1::read_pth(zip("z.pth", state_dict_pickle(ts, false)).string()));
  // The folder name inside the archive varies (PyTorch uses the file's stem); any one is found.
  check_values(hw1::read_weights(zip("other.pt", state_dict_pickle(ts, false), "resnet101-63fe2227").string()));
}

BOOST_FIXTURE_TEST_CASE(legacy_views_dtypes_and_metadata, Fixture) {
  check_values(hw1::read_weights(legacy("l.pth", state_dict_pickle(ts, true)).string()));
}

BOOST_FIXTURE_TEST_CASE(containers_keys_and_prefixes, Fixture) {
  // {"epoch": 3, "state_dict": <sd>, "best": 0.5}: found alone, or by --pth-key.
  Pickle w;
  w.op('}').mark().str("epoch").integer(3).str("state_dict");
  w.b += state_dict_pickle(ts, false, "", true);
  w.str("best").b += 'G' + std::string("\x3f\xe0\0\0\0\0\0\0", 8);
  w.op('u');
  const fs::path wrapped = zip("wrapped.pth", w.done());
  check_values(hw1::read_weights(wrapped.string()));
  check_values(hw1::read_weights(wrapped.string(), "state_dict"));
  check_error(wrapped, "has no key 'model' (--pth-key); its keys: 'epoch' (an int), 'state_dict' (a dict), 'best' (a float)",
              "model");
  check_error(wrapped, "the value under --pth-key 'epoch' is an int, not a state_dict", "epoch");
  // Two state_dicts: --pth-key chooses.
  Pickle two;
  two.op('}').mark().str("model").b += state_dict_pickle(ts, false, "", true);
  two.str("ema").b += state_dict_pickle(ts, false, "", true);
  two.op('u');
  const fs::path both = zip("two.pth", two.done());
  check_error(both, "several state_dicts (under 'model', 'ema'): choose one with --pth-key");
  check_values(hw1::read_weights(both.string(), "ema"));
  // DataParallel / DDP: every name starts with module.; the prefix goes.
  check_values(hw1::read_weights(zip("dp.pth", state_dict_pickle(ts, false, "module.")).string()));
  // A bare state_dict with --pth-key, or a list at the top: said so.
  check_error(zip("bare.pth", state_dict_pickle(ts, false)), "--pth-key state_dict given, but the file holds a bare state_dict",
              "state_dict");
  Pickle list;
  list.op(']');
  check_error(zip("list.pth", list.done()), "holds a list, not a state_dict");
  Pickle nosd;
  nosd.op('}').str("epoch").integer(3).op('s');
  check_error(zip("nosd.pth", nosd.done()), "holds a dict with no state_dict in it");
}

BOOST_FIXTURE_TEST_CASE(refuses_every_other_global_by_name, Fixture) {
  Pickle sys;
  sys.global("posix", "system").str("touch never").op('\x85').op('R');
  check_error(zip("system.pth", sys.done()), "refusing `posix.system`: hw1 reads tensors, it never runs pickled code");
  Pickle ev;
  ev.global("builtins", "eval").str("1").op('\x85').op('R');
  check_error(zip("eval.pth", ev.done()), "refusing `builtins.eval`");
  // STACK_GLOBAL (protocol 4) is checked the same way.
  Pickle sg;
  sg.str("os").str("system").op('\x93');
  check_error(zip("stack.pth", sg.done()), "refusing `os.system`");
  // torch.save(model): the model's class comes first; the error says what to save instead.
  Pickle model;
  model.global("torchvision.models.resnet", "ResNet").op(')').op('\x81');
  check_error(zip("model.pth", model.done()), "save the weights with torch.save(model.state_dict(), PATH) instead");
  // Inside a tensor's place, in the legacy format too.
  Pickle inner;
  inner.ordered_dict().mark().str("x").global("subprocess", "call").op(')').op('R').op('u');
  check_error(legacy("inner.pth", inner.done()), "refusing `subprocess.call`");
}

BOOST_FIXTURE_TEST_CASE(bad_files_give_one_clear_line, Fixture) {
  const std::string pk = state_dict_pickle(ts, false);
  // Truncated: a zip cut short loses its central directory; a legacy file cut inside a storage or the pickle.
  const fs::path z = zip("z.pth", pk);
  std::string bytes = hw1::test::bytes_of(z);
  write_file(dir.path / "cut.pth", bytes.substr(0, bytes.size() / 2));
  check_error(dir.path / "cut.pth", "not a readable zip archive (truncated");
  const std::string leg = hw1::test::bytes_of(legacy("l.pth", state_dict_pickle(ts, true)));
  write_file(dir.path / "lcut.pth", leg.substr(0, leg.size() - 3));
  check_error(dir.path / "lcut.pth", "truncated file (storage 4 needs 1 x 8 bytes, 5 are left)");
  write_file(dir.path / "lcut2.pth", leg.substr(0, 100));
  check_error(dir.path / "lcut2.pth", "truncated file (the pickle at byte");
  // Wrong record: a storage record shorter than its pickle says, or missing.
  auto recs = records(pk);
  recs[1].bytes.resize(40);
  write_zip(dir.path / "short.pth", recs);
  check_error(dir.path / "short.pth", "record archive/data/0 holds 40 bytes, the pickle says 12 F32 elements (48 bytes)");
  recs = records(pk);
  recs.erase(recs.begin() + 3);
  write_zip(dir.path / "missing.pth", recs);
  check_error(dir.path / "missing.pth", "has no record archive/data/2");
  // A damaged record: its CRC fails.
  bytes = hw1::test::bytes_of(z);
  const auto at = bytes.find(std::string("\0\0\x80\x3f\0\0\0\x40", 8));  // inside archive/data/0
  BOOST_REQUIRE(at != std::string::npos);
  bytes[at + 3] = 0x40;
  write_file(dir.path / "crc.pth", bytes);
  check_error(dir.path / "crc.pth", "record archive/data/0 fails its CRC check");
  // Oversized: a view past its storage, a string longer than the file, sizes that overflow, a huge storage.
  auto big = ts;
  big[0].size = {4, 3};
  check_error(zip("past.pth", state_dict_pickle(big, false)),
              "tensor a (offset 2, size [4,3], stride [3,1]) reaches element 13 of storage 0, which holds 12");
  big = ts;
  big[0].size = {std::int64_t(1) << 40, std::int64_t(1) << 40};
  check_error(zip("overflow.pth", state_dict_pickle(big, false)), "tensor a: its sizes overflow");
  big = ts;
  big[0].numel = std::uint64_t(1) << 62;
  check_error(zip("twice.pth", state_dict_pickle(big, false)), "storage 0 is described twice with different types or sizes");
  big[1].numel = big[0].numel;
  check_error(zip("huge.pth", state_dict_pickle(big, false)),
              "record archive/data/0 holds 48 bytes, the pickle says 4611686018427387904 F32 elements (more than 2^64 bytes)");
  Pickle longstr;
  longstr.b += "X\xff\xff\xff\x7f";
  check_error(zip("longstr.pth", longstr.done()), "truncated file (the pickle at byte 7 needs 2147483647 more bytes");
  // Big-endian files are refused in both formats.
  recs = records(pk);
  recs.push_back({"archive/byteorder", "big"});
  write_zip(dir.path / "be.pth", recs);
  check_error(dir.path / "be.pth", "written on a 'big'-endian machine");
  check_error(legacy("lbe.pth", state_dict_pickle(ts, true), false), "written on a big-endian machine");
  // Not a checkpoint at all; an opcode torch.save never writes; a zip without data.pkl.
  write_file(dir.path / "text.pth", "hello, this is not a checkpoint");
  check_error(dir.path / "text.pth", "not a PyTorch checkpoint");
  Pickle odd;
  odd.b += "I12\n";
  check_error(zip("odd.pth", odd.done()), "unsupported pickle opcode (not one torch.save writes) (pickle opcode 0x49 at byte 2)");
  write_zip(dir.path / "nopkl.pth", {{"archive/version", "3\n"}});
  check_error(dir.path / "nopkl.pth", "a zip archive without a <folder>/data.pkl record");
  check_error(dir.path / "absent.pth", "cannot open: no such file");
}

BOOST_FIXTURE_TEST_CASE(stack_memo_and_nesting_are_bounded, Fixture) {
  // Lists nested through the memo (constant stack depth): refused at the nesting bound, not a stack overflow.
  Pickle deep;
  deep.op(']').op('q').b += '\x00';
  for (int i = 0; i < 200; ++i) deep.op(']').op('h').op('\x00').op('a').op('q').op('\x00');
  check_error(zip("deep.pth", deep.done()), "pickle nests values deeper than 64 levels");
  Pickle memo;
  memo.op('h').op('\x05');
  check_error(zip("memo.pth", memo.done()), "memo entry 5 was never stored");
  Pickle marks;
  for (int i = 0; i < 70000; ++i) marks.mark();
  check_error(zip("marks.pth", marks.done()), "more than 65536 open MARKs");
  Pickle empty;
  empty.op('0');
  check_error(zip("empty.pth", empty.done()), "pops an empty stack");
}

BOOST_FIXTURE_TEST_CASE(safetensors_still_read_and_pth_key_refused_there, Fixture) {
  hw1::SafeTensorsWriter w;
  w.add("x", hw1::Shape{2}, f32.data());
  w.add("y", hw1::Shape{2}, f64.data());
  w.write((dir.path / "w.safetensors").string());
  const auto st = hw1::read_weights((dir.path / "w.safetensors").string());
  BOOST_TEST(st.names().size() == 2u);
  // bytes(): a tensor's stored bytes (hw1-convert copies them), for a read file as for a .pth.
  BOOST_TEST(std::memcmp(st.bytes("x"), f32.data(), 8) == 0);
  BOOST_TEST(std::memcmp(st.bytes("y"), f64.data(), 16) == 0);
  const auto p = hw1::read_pth(zip("z.pth", state_dict_pickle(ts, false)).string());
  BOOST_TEST(std::memcmp(p.bytes("a"), f32.data() + 2, 24) == 0);
  BOOST_TEST(std::memcmp(p.bytes("h"), f16.data(), 6) == 0);
  check_error(dir.path / "w.safetensors", "--pth-key k given, but this is not a .pth file", "k");
}

// ---- what PyTorch itself writes (Debian's /usr/bin/python3 with torch) ----

namespace {
bool have_torch() { return std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0; }
const hw1::test::RunsWhen<have_torch> Torch{"/usr/bin/python3 has no torch (Debian: python3-torch)"};
}  // namespace

// Views (offset, transposed, channels-last, a slice of a shared storage, an expanded stride-0 view), dtypes and
// _metadata as torch.save writes them, in both formats, plain and wrapped: equal to what PyTorch reads back (the
// reference, written by tests/parity/st.py as contiguous float64). And torch.save(model) refused with its class.
BOOST_AUTO_TEST_CASE(torch_written_views_and_dtypes, *boost::unit_test::label("needs_torch") * boost::unit_test::precondition(Torch)) {
  hw1::test::TempDir dir("pth-torch");
  const std::string tests = fs::path(__FILE__).parent_path().parent_path().string();
  const std::string script = R"PY(
import collections, sys, torch
sys.path.insert(0, sys.argv[1] + "/parity")
import st
d = sys.argv[2]
g = torch.Generator().manual_seed(5)
base = torch.randn(60, generator=g)
sd = collections.OrderedDict()
sd["offset"] = base[7:19].view(3, 4)
sd["transposed"] = base[:20].view(4, 5).t()
sd["channels_last"] = torch.randn(3, 4, 2, 5, generator=g).contiguous(memory_format=torch.channels_last)
sd["sliced"] = base.view(6, 10)[1:4, 2:9:3]
sd["expanded"] = torch.randn(3, 1, generator=g).expand(3, 4)
sd["half"] = torch.randn(5, 3, generator=g).half().t()
sd["bfloat16"] = torch.randn(7, generator=g).bfloat16()
sd["double"] = torch.randn(2, 3, generator=g).double()
sd["bn.num_batches_tracked"] = torch.tensor(12345678901)
sd["empty"] = torch.zeros(0, 3)
sd._metadata = collections.OrderedDict([("", {"version": 1}), ("bn", {"version": 2})])
torch.save(sd, d + "/zip.pth")
torch.save(sd, d + "/legacy.pth", _use_new_zipfile_serialization=False)
torch.save({"epoch": 3, "state_dict": sd, "optimizer": {"state": {0: {"momentum_buffer": torch.ones(3)}}}},
           d + "/wrapped.pth")
torch.save(torch.nn.Linear(2, 3), d + "/model.pth")  # a whole model: refused, with what to save instead
back = torch.load(d + "/zip.pth")
st.save(d + "/expected.safetensors", {k: v.double().contiguous().numpy() for k, v in back.items()})
)PY";
  write_file(dir.path / "make.py", script);
  BOOST_REQUIRE_EQUAL(std::system(("/usr/bin/python3 " + (dir.path / "make.py").string() + " " + tests + " " + dir.str()).c_str()), 0);
  const auto expected = hw1::SafeTensors::read((dir.path / "expected.safetensors").string());
  for (const std::string file : {"zip.pth", "legacy.pth", "wrapped.pth"}) {
    BOOST_TEST_CONTEXT(file) {
      const auto f = hw1::read_weights((dir.path / file).string());
      BOOST_TEST(f.names() == expected.names(), boost::test_tools::per_element());
      for (const auto& n : expected.names()) {
        BOOST_TEST_CONTEXT(n) {
          BOOST_TEST(f.info(n).shape == expected.info(n).shape, boost::test_tools::per_element());
          const auto a = f.tensor<double>(n), b = expected.tensor<double>(n);
          BOOST_TEST(std::vector<double>(a.data(), a.data() + a.size()) == std::vector<double>(b.data(), b.data() + b.size()),
                     boost::test_tools::per_element());
        }
      }
      BOOST_TEST(f.info("half").dtype == "F16");
      BOOST_TEST(f.info("bfloat16").dtype == "BF16");
      BOOST_TEST(f.info("double").dtype == "F64");
      BOOST_TEST(f.info("bn.num_batches_tracked").dtype == "I64");
      BOOST_TEST(f.tensor<double>("bn.num_batches_tracked").data()[0] == 12345678901.0);
    }
  }
  check_error(dir.path / "model.pth", "refusing `torch.nn.modules.linear.Linear`: the file holds a pickled Python object");
  check_error(dir.path / "model.pth", "save the weights with torch.save(model.state_dict(), PATH) instead");
}

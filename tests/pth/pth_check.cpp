// The programs on .pth files (tests/pth/tests.cmake passes their paths). Without torch: a .pth whose pickle would
// run a shell command (posix.system, builtins.eval) is refused by hw1-convert and hw1-forward with the global's
// name, and provably runs nothing (Python's own pickle does run it: the marker file appears there, never here).
// With Debian's torch (label needs_torch): torchvision's resnet101 and vgg16 state_dicts, saved by torch.save at
// test time under their download names, through hw1-convert (--list, conversion byte for byte), the trainers'
// --init-weights recipes of the report (1000-class fc into a 50-class model; VGG16 features into FCN32s) and
// hw1-predict --checkpoint on a bare state_dict (--model, --num-classes).
#define BOOST_TEST_MODULE pth_programs
#include <boost/test/unit_test.hpp>
#include <sys/wait.h>
#include <zip.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/precondition.hpp"
#include "common/testing.hpp"
#include "hw1/core/pth.hpp"

namespace fs = std::filesystem;
using hw1::test::contains;

namespace {

struct Result {
  int rc;
  std::string out, err;
};

Result run(const fs::path& work, const std::string& prog, const std::string& args) {
  const fs::path o = work / "last.out", e = work / "last.err";
  const std::string cmd = "'" + prog + "' " + args + " >'" + o.string() + "' 2>'" + e.string() + "'";
  const int st = std::system(cmd.c_str());
  Result r{WIFEXITED(st) ? WEXITSTATUS(st) : -1, hw1::test::bytes_of(o), hw1::test::bytes_of(e)};
  BOOST_TEST_MESSAGE(cmd << " -> " << r.rc << "\n" << r.out << r.err);
  return r;
}
std::string q(const fs::path& p) {  // appended, not concatenated: GCC 12's false -Wrestrict warning
  std::string s(1, '\'');
  s += p.string();
  s += '\'';
  return s;
}

// A valid PyTorch-style zip whose data.pkl is `pickle`.
void write_pth_zip(const fs::path& path, const std::string& pickle) {
  zipFile z = zipOpen64(path.c_str(), APPEND_STATUS_CREATE);
  BOOST_REQUIRE(z);
  for (const auto& [name, bytes] : std::vector<std::pair<std::string, std::string>>{{"archive/data.pkl", pickle},
                                                                                   {"archive/version", "3\n"}}) {
    zip_fileinfo zi{};
    BOOST_REQUIRE_EQUAL(zipOpenNewFileInZip64(z, name.c_str(), &zi, nullptr, 0, nullptr, 0, nullptr, 0, 0, 0), ZIP_OK);
    BOOST_REQUIRE_EQUAL(zipWriteInFileInZip(z, bytes.data(), unsigned(bytes.size())), ZIP_OK);
    BOOST_REQUIRE_EQUAL(zipCloseFileInZip(z), ZIP_OK);
  }
  BOOST_REQUIRE_EQUAL(zipClose(z, nullptr), ZIP_OK);
}
// \x80\x02 c<module>\n<name>\n X<len><arg> TUPLE1 REDUCE STOP: calls module.name(arg) when Python unpickles it.
std::string call_pickle(const std::string& module, const std::string& name, const std::string& arg) {
  std::string len;
  for (int i = 0; i < 4; ++i) len.push_back(char((arg.size() >> (8 * i)) & 0xff));
  return "\x80\x02" "c" + module + "\n" + name + "\nX" + len + arg + "\x85R.";
}

bool have_python() { return fs::exists("/usr/bin/python3"); }
bool have_torch() { return std::system("/usr/bin/python3 -c 'import torch, torchvision' >/dev/null 2>&1") == 0; }
const hw1::test::RunsWhen<have_torch> Torch{"/usr/bin/python3 has no torch / torchvision (Debian: python3-torch python3-torchvision)"};

}  // namespace

BOOST_AUTO_TEST_CASE(refuses_pickled_code_and_runs_nothing) {
  hw1::test::TempDir dir("pth-code");
  struct Case {
    std::string module, name, arg, file;
  };
  const fs::path marker = dir.path / "marker";
  const std::vector<Case> cases{
      {"posix", "system", "touch '" + marker.string() + "'", "system.pth"},
      {"builtins", "eval", "open('" + marker.string() + "', 'w').close()", "eval.pth"},
  };
  hw1::SafeTensorsWriter in;
  std::vector<float> x(3 * 32 * 32, 0.5f);
  in.add("input", hw1::Shape{1, 3, 32, 32}, x.data());
  in.write((dir.path / "input.safetensors").string());
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT(c.module << "." << c.name) {
      const fs::path f = dir.path / c.file;
      write_pth_zip(f, call_pickle(c.module, c.name, c.arg));
      // The file is live: Python's unpickler runs the call (stdlib only, no torch needed).
      if (have_python()) {
        const std::string py = "/usr/bin/python3 -c \"import pickle, sys, zipfile; "
                               "pickle.loads(zipfile.ZipFile(sys.argv[1]).read('archive/data.pkl'))\" " + q(f);
        BOOST_REQUIRE_EQUAL(std::system(py.c_str()), 0);
        BOOST_REQUIRE_MESSAGE(fs::exists(marker), "Python's pickle should have created the marker");
        fs::remove(marker);
      } else {
        BOOST_TEST_MESSAGE("no /usr/bin/python3: the pickle's liveness is not shown, only hw1's refusal");
      }
      const std::string refusal = "refusing `" + c.module + "." + c.name + "`: hw1 reads tensors, it never runs pickled code";
      Result r = run(dir.path, HW1_CONVERT, "--list " + q(f));
      BOOST_TEST(r.rc == 1);
      BOOST_TEST(contains(r.err, f.string() + ": " + refusal));
      r = run(dir.path, HW1_CONVERT, q(f) + " " + q(dir.path / "out.safetensors"));
      BOOST_TEST(r.rc == 1);
      BOOST_TEST(contains(r.err, refusal));
      BOOST_TEST(!fs::exists(dir.path / "out.safetensors"));
      r = run(dir.path, HW1_FORWARD, "--model resnet101 --num-classes 10 --weights " + q(f) + " --input " +
                                         q(dir.path / "input.safetensors") + " --output " + q(dir.path / "y.safetensors"));
      BOOST_TEST(r.rc == 1);
      BOOST_TEST(contains(r.err, "hw1-forward: error: " + f.string() + ": " + refusal));
      BOOST_TEST(std::count(r.err.begin(), r.err.end(), '\n') == 1);
      BOOST_TEST(!fs::exists(dir.path / "y.safetensors"));
      BOOST_TEST(!fs::exists(marker), "hw1 ran the pickled call");
    }
  }
}

BOOST_AUTO_TEST_CASE(torchvision_checkpoints, *boost::unit_test::label("needs_torch") * boost::unit_test::precondition(Torch)) {
  hw1::test::TempDir dir("pth-torchvision");
  const fs::path r101 = dir.path / "resnet101-63fe2227.pth", vgg = dir.path / "vgg16-397923af.pth";
  // torchvision's own models, randomly initialised (fixed seed), saved as download.pytorch.org's files are.
  const std::string py = "/usr/bin/python3 -c \"import sys, torch, torchvision; torch.manual_seed(3); "
                         "torch.save(torchvision.models.resnet101().state_dict(), sys.argv[1]); "
                         "torch.save(torchvision.models.vgg16().state_dict(), sys.argv[2])\" " + q(r101) + " " + q(vgg);
  BOOST_REQUIRE_EQUAL(std::system(py.c_str()), 0);

  // hw1-convert --list, then the conversion: every tensor's bytes as read from the .pth.
  Result r = run(dir.path, HW1_CONVERT, "--list " + q(r101));
  BOOST_REQUIRE_EQUAL(r.rc, 0);
  BOOST_TEST(contains(r.out, "\nfc.weight [1000,2048] F32\n"));
  BOOST_TEST(contains(r.out, "\nbn1.num_batches_tracked [] I64\n"));
  BOOST_TEST(contains(r.out, "\n626 tensors, "));
  r = run(dir.path, HW1_CONVERT, q(r101) + " " + q(dir.path / "r101.safetensors"));
  BOOST_REQUIRE_EQUAL(r.rc, 0);
  {
    const auto a = hw1::read_pth(r101.string()), b = hw1::SafeTensors::read((dir.path / "r101.safetensors").string());
    BOOST_TEST(a.names() == b.names(), boost::test_tools::per_element());
    for (const auto& n : a.names()) {
      const auto& ia = a.info(n);
      BOOST_TEST((ia.dtype == b.info(n).dtype && ia.shape == b.info(n).shape), n);
      BOOST_TEST(std::memcmp(a.bytes(n), b.bytes(n), ia.end - ia.begin) == 0, n);
    }
  }

  // The report's recipes through the trainers, on a few generated images.
  const fs::path data = dir.path / "data", seg = dir.path / "seg";
  BOOST_REQUIRE_EQUAL(run(dir.path, HW1_MAKE_DATA, "--kind classification --classes 2 --train-per-class 2 --val-per-class 1 "
                                                   "--seed 1 --out " + q(data)).rc, 0);
  r = run(dir.path, HW1_TRAIN_CLASSIFIER,
          "--train " + q(data / "train_50") + " --val " + q(data / "val_50") + " --out " + q(dir.path / "run-c") +
              " --init-weights " + q(r101) + " --num-classes 50 --input-size 32 --epochs 1 --batch-size 2 --workers 0");
  BOOST_TEST(r.rc == 0);
  // Every tensor but the 1000-class fc loads (num_batches_tracked is not a parameter hw1 keeps).
  BOOST_TEST(contains(r.out, "init-weights " + r101.string() + ": loaded 520 tensors\n"));
  BOOST_TEST(contains(r.out, "  skipped (shape differs): fc.weight [1000,2048] vs [50,2048]\n"));
  BOOST_TEST(contains(r.out, "  skipped (shape differs): fc.bias [1000] vs [50]\n"));
  BOOST_TEST(!contains(r.out, "not in the file"));
  fs::remove_all(dir.path / "run-c");
  BOOST_REQUIRE_EQUAL(run(dir.path, HW1_MAKE_DATA, "--kind segmentation --train 2 --val 1 --size 32 --seed 1 --out " + q(seg)).rc, 0);
  r = run(dir.path, HW1_TRAIN_SEGMENTER,
          "--model fcn32s --train " + q(seg / "train") + " --val " + q(seg / "validation") + " --out " +
              q(dir.path / "run-s") + " --init-weights " + q(vgg) + " --epochs 1 --batch-size 1 --workers 0");
  BOOST_TEST(r.rc == 0);
  // VGG16's 13 convolutions load into FCN32s's features.N; its classifier.* is listed as skipped.
  BOOST_TEST(contains(r.out, "init-weights " + vgg.string() + ": loaded 26 tensors\n"));
  for (const char* n : {"classifier.0.weight", "classifier.0.bias", "classifier.3.weight", "classifier.6.bias"})
    BOOST_TEST(contains(r.out, std::string("  skipped (not in the model): ") + n + "\n"), n);
  BOOST_TEST(contains(r.out, "  not in the file (kept initial value): fc6.weight\n"));
  fs::remove_all(dir.path / "run-s");
  // The same options refuse a key where there is none to pick.
  r = run(dir.path, HW1_TRAIN_CLASSIFIER,
          "--train " + q(data / "train_50") + " --val " + q(data / "val_50") + " --out " + q(dir.path / "run-k") +
              " --init-weights " + q(r101) + " --pth-key model --num-classes 50 --input-size 32 --epochs 1");
  BOOST_TEST(r.rc == 1);
  BOOST_TEST(contains(r.err, r101.string() + ": --pth-key model given, but the file holds a bare state_dict"));

  // hw1-predict on the bare state_dict (.pth, and the converted .safetensors): the same labels.
  r = run(dir.path, HW1_PREDICT, "--checkpoint " + q(r101) + " --images " + q(data / "val_50") + " --csv " +
                                     q(dir.path / "a.csv") + " --model resnet101 --num-classes 1000 --input-size 32");
  BOOST_TEST(r.rc == 0);
  r = run(dir.path, HW1_PREDICT, "--checkpoint " + q(dir.path / "r101.safetensors") + " --images " + q(data / "val_50") +
                                     " --csv " + q(dir.path / "b.csv") + " --model resnet101 --num-classes 1000 --input-size 32");
  BOOST_TEST(r.rc == 0);
  BOOST_TEST(hw1::test::bytes_of(dir.path / "a.csv").size() > 20u);
  BOOST_TEST(hw1::test::bytes_of(dir.path / "a.csv") == hw1::test::bytes_of(dir.path / "b.csv"));
  r = run(dir.path, HW1_PREDICT, "--checkpoint " + q(r101) + " --images " + q(data / "val_50") + " --csv " +
                                     q(dir.path / "c.csv") + " --model resnet101 --num-classes 50");
  BOOST_TEST(r.rc == 1);
  BOOST_TEST(contains(r.err, "--num-classes is 50 but its fc.weight has 1000 output rows: give the --num-classes it was trained with"));
  r = run(dir.path, HW1_PREDICT, "--checkpoint " + q(r101) + " --images " + q(data / "val_50") + " --csv " + q(dir.path / "d.csv"));
  BOOST_TEST(r.rc == 1);
  BOOST_TEST(contains(r.err, "a bare state_dict (no hw1 checkpoint metadata): give --model"));
}

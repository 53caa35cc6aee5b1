// End-to-end checks of hw1-predict, hw1-miou, hw1-tsne and hw1-make-data on small generated data. The `setup`
// case writes the data and checkpoints whose last layer is zeroed with a chosen bias, so every image (or pixel)
// gets known probabilities: that makes the ensemble rule, the mask colours and the mIoU checkable exactly.
// Program paths and the work directory come from tests.cmake.
#define BOOST_TEST_MODULE tools
#include <boost/test/unit_test.hpp>
#include <sys/wait.h>

#include <algorithm>
#include <cstdint>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "hw1/data/augment.hpp"
#include "hw1/data/image_io.hpp"
#include "hw1/data/layout.hpp"
#include "hw1/data/synthetic.hpp"
#include "hw1/models.hpp"
#include "hw1/train/checkpoint.hpp"

namespace fs = std::filesystem;

namespace {

const fs::path W = HW1_TOOLS_WORK;

struct Result {
  int rc;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

Result run(const std::string& prog, const std::string& args) {
  const fs::path o = W / "last.out", e = W / "last.err";
  const std::string cmd = "'" + prog + "' " + args + " >'" + o.string() + "' 2>'" + e.string() + "'";
  const int st = std::system(cmd.c_str());
  Result r{WIFEXITED(st) ? WEXITSTATUS(st) : -1, slurp(o), slurp(e)};
  BOOST_TEST_MESSAGE(cmd << " -> " << r.rc << "\n" << r.out << r.err);
  return r;
}
Result predict(const std::string& a) { return run(HW1_PREDICT, a); }

std::string p(const fs::path& x) {  // appends (GCC 12 warns falsely, -Wrestrict, on "'" + string)
  std::string q = "'";
  q += x.string();
  q += '\'';
  return q;
}

std::vector<std::string> lines(const fs::path& f) {
  std::ifstream in(f);
  std::vector<std::string> v;
  for (std::string l; std::getline(in, l);) v.push_back(l);
  return v;
}

// Reads a predictions CSV; accepts both header spellings graders used.
std::map<std::string, int> read_csv(const fs::path& f) {
  const auto ls = lines(f);
  BOOST_REQUIRE(!ls.empty());
  BOOST_REQUIRE(ls[0] == "image_id,label" || ls[0] == "image_id, label");
  std::map<std::string, int> m;
  for (std::size_t i = 1; i < ls.size(); ++i) {
    const auto c = ls[i].find(',');
    BOOST_REQUIRE(c != std::string::npos);
    m[ls[i].substr(0, c)] = std::stoi(ls[i].substr(c + 1));
  }
  return m;
}

std::vector<float> log_of(std::vector<float> probs) {
  for (float& v : probs) v = std::log(v);
  return probs;
}

// Zeroes weight `w` and sets bias `b` = logits, so the layer outputs the same logits everywhere.
template <class Net>
void set_constant_logits(Net& net, const std::string& w, const std::string& b, const std::vector<float>& logits) {
  auto& ps = net.params();
  const auto* we = ps.find(w);
  const auto* be = ps.find(b);
  BOOST_REQUIRE(we && be && be->size == logits.size());
  std::fill_n(ps.data(*we), we->size, 0.f);
  std::copy(logits.begin(), logits.end(), ps.data(*be));
}

hw1::CheckpointInfo info(const char* model, int k, int input_size, bool aux = false) {
  hw1::CheckpointInfo i;
  i.model = model;
  i.num_classes = k;
  i.input_size = input_size;
  i.aux_loss = aux;
  return i;
}

// Classifier probabilities of the constructed ensemble cases (4 classes).
const std::vector<float> kA{0.05f, 0.50f, 0.40f, 0.05f}, kB{0.05f, 0.30f, 0.60f, 0.05f}, kC{0.10f, 0.20f, 0.10f, 0.60f},
    kSure2{0.001f, 0.002f, 0.996f, 0.001f};

int class_count(const fs::path& gt_dir, int c, std::size_t& total) {
  int n = 0;
  total = 0;
  for (const auto& e : fs::directory_iterator(gt_dir)) {
    if (!e.path().string().ends_with("_mask.png")) continue;
    const auto m = hw1::mask_to_classes(hw1::read_png(e.path().string(), 3));
    for (auto v : m.pixels) n += v == c;
    total += m.pixels.size();
  }
  return n;
}

}  // namespace

BOOST_AUTO_TEST_CASE(setup) {
  fs::remove_all(W);
  fs::create_directories(W / "ckpt");
  hw1::make_classification_set((W / "cls").string(), 4, 3, 5, 7);  // val_50: 20 images
  // Segmentation inputs of awkward sizes (FCN32s crop, DeepLabv3 upsampling), with ground-truth masks.
  fs::create_directories(W / "seg");
  const int sizes[][2] = {{48, 48}, {40, 72}, {64, 33}};
  for (int i = 0; i < 3; ++i) {
    const auto t = hw1::synth_seg_tile(64, 100 + i, i);
    char id[8];
    std::snprintf(id, sizeof id, "%04d", i);
    hw1::write_jpeg((W / "seg" / (std::string(id) + "_sat.jpg")).string(), hw1::resize_bilinear(t.image, sizes[i][0], sizes[i][1]));
    hw1::write_png((W / "seg" / (std::string(id) + "_mask.png")).string(), hw1::resize_nearest(t.mask, sizes[i][0], sizes[i][1]));
  }
  {
    hw1::ResNet101<hw1::dynamic> net(4, 3);
    const std::pair<const char*, const std::vector<float>*> cases[] = {{"A", &kA}, {"B", &kB}, {"C", &kC}, {"S2", &kSure2}};
    for (const auto& [name, probs] : cases) {
      set_constant_logits(net, "fc.weight", "fc.bias", log_of(*probs));
      hw1::save_checkpoint((W / "ckpt" / (std::string(name) + ".safetensors")).string(), net, info("resnet101", 4, 32));
    }
  }
  {
    hw1::DeepLabV3<hw1::dynamic> aux(7, true, 5), plain(7, false, 6);
    set_constant_logits(aux, "classifier.4.weight", "classifier.4.bias", log_of({.05f, .05f, .05f, .6f, .05f, .15f, .05f}));
    hw1::save_checkpoint((W / "ckpt" / "D3.safetensors").string(), aux, info("deeplabv3", 7, 0, true));
    set_constant_logits(plain, "classifier.4.weight", "classifier.4.bias", log_of({.01f, .01f, .01f, .03f, .01f, .9f, .03f}));
    hw1::save_checkpoint((W / "ckpt" / "D5.safetensors").string(), plain, info("deeplabv3", 7, 0));
  }
  {
    // FCN32s: constant scores, and an upscore kernel that copies each class to itself (so argmax is kept).
    hw1::FCN32s<hw1::dynamic> fcn(7, 8);
    set_constant_logits(fcn, "score_fr.weight", "score_fr.bias", {0.f, 2.f, 1.f, 0.f, 0.f, 0.f, 0.f});
    auto& ps = fcn.params();
    const auto* up = ps.find("upscore.weight");  // [7, 7, 64, 64]
    float* u = ps.data(*up);
    std::fill_n(u, up->size, 0.f);
    for (int c = 0; c < 7; ++c) std::fill_n(u + (std::size_t(c) * 7 + c) * 64 * 64, 64 * 64, 1.f);
    hw1::save_checkpoint((W / "ckpt" / "F1.safetensors").string(), fcn, info("fcn32s", 7, 0));
  }
}

BOOST_AUTO_TEST_CASE(csv_format_and_single_model) {
  const auto out = W / "single.csv";
  fs::remove(out);
  const auto r = predict("--checkpoint " + p(W / "ckpt/A.safetensors") + " --images " + p(W / "cls/val_50") + " --csv " + p(out));
  BOOST_REQUIRE_EQUAL(r.rc, 0);
  const auto ls = lines(out);
  BOOST_REQUIRE_EQUAL(ls.size(), 21u);
  BOOST_TEST(ls[0] == "image_id,label");
  // One row per file, sorted by name, "name.png,label".
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(W / "cls/val_50")) files.push_back(e.path().filename().string());
  std::sort(files.begin(), files.end());
  for (std::size_t i = 0; i < files.size(); ++i) BOOST_TEST(ls[i + 1] == files[i] + ",1");
}

BOOST_AUTO_TEST_CASE(ensemble_vote) {
  auto vote = [](const std::vector<std::string>& members) {
    std::string args;
    for (const auto& m : members) args += " --checkpoint " + p(W / "ckpt" / (m + ".safetensors"));
    const auto out = W / "ens.csv";
    const auto r = predict(args + " --images " + p(W / "cls/val_50") + " --csv " + p(out) + " --force");
    BOOST_REQUIRE_EQUAL(r.rc, 0);
    const auto m = read_csv(out);
    BOOST_REQUIRE_EQUAL(m.size(), 20u);
    std::set<int> labels;
    for (const auto& [k, v] : m) labels.insert(v);
    BOOST_REQUIRE_EQUAL(labels.size(), 1u);
    return *labels.begin();
  };
  // Votes 1, 2, 3: a three-way tie; mean probabilities 0.333, 0.367, 0.233 -> 2.
  BOOST_TEST(vote({"A", "B", "C"}) == 2);
  // Votes 1, 1, 2: the majority wins although label 2's mean probability (0.60) is higher than label 1's (0.33).
  BOOST_TEST(vote({"A", "A", "S2"}) == 1);
  // Two members, one vote each: mean probabilities 0.40 (label 1) and 0.50 (label 2) -> 2.
  BOOST_TEST(vote({"A", "B"}) == 2);
  BOOST_TEST(vote({"C"}) == 3);
}

BOOST_AUTO_TEST_CASE(masks_colours_sizes_names) {
  struct Case {
    std::vector<std::string> members;
    int cls;
  };
  const Case cases[] = {{{"D3"}, 3}, {{"D3", "D5"}, 5}, {{"F1"}, 1}};
  for (const auto& c : cases) {
    const auto out = W / ("masks_" + c.members.back());
    fs::remove_all(out);
    std::string args;
    for (const auto& m : c.members) args += " --checkpoint " + p(W / "ckpt" / (m + ".safetensors"));
    const auto r = predict(args + " --images " + p(W / "seg") + " --masks " + p(out));
    BOOST_REQUIRE_EQUAL(r.rc, 0);
    const auto pal = hw1::seg_palette()[c.cls];
    for (const char* id : {"0000", "0001", "0002"}) {
      const auto f = out / (std::string(id) + ".png");
      BOOST_REQUIRE(fs::exists(f));
      const auto m = hw1::read_png(f.string(), 0);
      const auto in = hw1::read_jpeg((W / "seg" / (std::string(id) + "_sat.jpg")).string());
      BOOST_TEST(m.channels == 3);
      BOOST_TEST(m.height == in.height);
      BOOST_TEST(m.width == in.width);
      bool all = true;
      for (std::size_t i = 0; i < m.pixels.size(); i += 3)
        all = all && m.pixels[i] == pal[0] && m.pixels[i + 1] == pal[1] && m.pixels[i + 2] == pal[2];
      BOOST_TEST(all, "every pixel of " << f << " has the colour of class " << c.cls);
    }
    BOOST_TEST(std::distance(fs::directory_iterator(out), fs::directory_iterator()) == 3);
  }
  // hw1-miou on the all-Forest prediction: IoU(Forest) = #Forest / #pixels, every other present class 0.
  std::size_t total = 0;
  const int forest = class_count(W / "seg", 3, total);
  const auto r = run(HW1_MIOU, "--gt " + p(W / "seg") + " --pred " + p(W / "masks_D3"));
  BOOST_REQUIRE_EQUAL(r.rc, 0);
  char want[64];
  std::snprintf(want, sizeof want, "class #3 : %1.5f\n", double(forest) / double(total));
  BOOST_TEST(r.out.find(want) != std::string::npos, r.out << " lacks " << want);
}

BOOST_AUTO_TEST_CASE(miou_hand_made) {
  // Two 2x3 masks; expected IoUs worked out by hand over both images together:
  // 0: tp 2, pred 3, gt 3 -> 0.5; 1: 2 / (3 + 2 - 2); 2..5: 0.5 each; mean 3.16667 / 6.
  const auto gt = W / "miou_gt", pr = W / "miou_pred";
  fs::remove_all(gt);
  fs::remove_all(pr);
  fs::create_directories(gt);
  fs::create_directories(pr);
  auto mask = [](std::vector<std::uint8_t> cls) {
    hw1::Image c(2, 3, 1);
    c.pixels = std::move(cls);
    return hw1::classes_to_mask(c);
  };
  hw1::write_png((gt / "0001_mask.png").string(), mask({0, 0, 1, 1, 2, 6}));
  hw1::write_png((pr / "0001.png").string(), mask({0, 1, 1, 1, 2, 2}));
  hw1::write_png((gt / "0002_mask.png").string(), mask({3, 3, 4, 5, 5, 0}));
  hw1::write_png((pr / "0002.png").string(), mask({3, 4, 4, 5, 0, 0}));
  const auto r = run(HW1_MIOU, "--gt " + p(gt) + " --pred " + p(pr));
  BOOST_REQUIRE_EQUAL(r.rc, 0);
  BOOST_TEST(r.out ==
             "class #0 : 0.50000\nclass #1 : 0.66667\nclass #2 : 0.50000\nclass #3 : 0.50000\n"
             "class #4 : 0.50000\nclass #5 : 0.50000\n\nmean_iou: 0.527778\n\n");
  // Chance: uniform labels give mean(n / (N + 6n)) = 0.076852 (N = 12, n = 3,2,1,2,1,2), better than the best
  // constant prediction (all Urban: 3/12 / 6 = 0.041667).
  const auto c = run(HW1_MIOU, "--gt " + p(gt) + " --pred " + p(pr) + " --chance");
  BOOST_TEST(c.out.find("chance_miou: 0.076852 (the better of: every pixel Urban 0.041667, uniformly random labels "
                        "0.076852)") != std::string::npos, c.out);
  // A missing prediction is an error naming the pair, not a silent shift.
  fs::remove(pr / "0001.png");
  const auto bad = run(HW1_MIOU, "--gt " + p(gt) + " --pred " + p(pr));
  BOOST_TEST(bad.rc == 1);
  BOOST_TEST(bad.err.find("masks but") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(refuses_and_errors) {
  const auto a = " --checkpoint " + p(W / "ckpt/A.safetensors");
  const auto d3 = " --checkpoint " + p(W / "ckpt/D3.safetensors");
  const auto val = " --images " + p(W / "cls/val_50");
  // An existing CSV is kept unless --force.
  const auto csv = W / "keep.csv";
  { std::ofstream(csv) << "mine\n"; }
  auto r = predict(a + val + " --csv " + p(csv));
  BOOST_TEST(r.rc == 1);
  BOOST_TEST(r.err.find("already exists; pass --force") != std::string::npos);
  BOOST_TEST(slurp(csv) == "mine\n");
  BOOST_TEST(predict(a + val + " --csv " + p(csv) + " --force").rc == 0);
  BOOST_TEST(lines(csv).size() == 21u);
  // A mask folder that holds files is refused unless --force; with it the other file stays.
  const auto md = W / "busy";
  fs::create_directories(md);
  { std::ofstream(md / "notes.txt") << "keep"; }
  r = predict(d3 + " --images " + p(W / "seg") + " --masks " + p(md));
  BOOST_TEST(r.rc == 1);
  BOOST_TEST(r.err.find("already holds files") != std::string::npos);
  BOOST_TEST(!fs::exists(md / "0000.png"));
  BOOST_TEST(predict(d3 + " --images " + p(W / "seg") + " --masks " + p(md) + " --force").rc == 0);
  BOOST_TEST(fs::exists(md / "0000.png"));
  BOOST_TEST(slurp(md / "notes.txt") == "keep");
  // Checkpoints of the wrong model, and files that are no checkpoint.
  r = predict(d3 + val + " --csv " + p(W / "x.csv"));
  BOOST_TEST(r.rc == 1);
  BOOST_TEST(r.err.find("is a deeplabv3 checkpoint, this program needs resnet101") != std::string::npos, r.err);
  r = predict(a + " --images " + p(W / "seg") + " --masks " + p(W / "m_wrong"));
  BOOST_TEST(r.rc == 1);
  BOOST_TEST(r.err.find("is a resnet101 checkpoint") != std::string::npos, r.err);
  BOOST_TEST(!fs::exists(W / "m_wrong"));
  { std::ofstream(W / "junk.safetensors") << "not a checkpoint at all"; }
  r = predict(" --checkpoint " + p(W / "junk.safetensors") + val + " --csv " + p(W / "x.csv"));
  BOOST_TEST(r.rc == 1);
  BOOST_TEST(r.err.find("junk.safetensors") != std::string::npos, r.err);
  // Missing and empty folders.
  r = predict(a + " --images " + p(W / "no_such_dir") + " --csv " + p(W / "x.csv"));
  BOOST_TEST(r.rc == 1);
  BOOST_TEST(r.err.find("no_such_dir: no such directory") != std::string::npos, r.err);
  fs::create_directories(W / "empty");
  r = predict(a + " --images " + p(W / "empty") + " --csv " + p(W / "x.csv"));
  BOOST_TEST(r.rc == 1);
  BOOST_TEST(r.err.find("holds no *.png") != std::string::npos, r.err);
  BOOST_TEST(!fs::exists(W / "x.csv"));
  // A truncated image: an error naming it, or with --skip-bad one row fewer and a count.
  const auto bad = W / "with_bad";
  fs::remove_all(bad);
  fs::copy(W / "cls/val_50", bad);
  const auto bytes = slurp(bad / "0_3.png");
  { std::ofstream(bad / "0_3.png", std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() / 2); }
  r = predict(a + " --images " + p(bad) + " --csv " + p(W / "bad.csv"));
  BOOST_TEST(r.rc == 1);
  BOOST_TEST(r.err.find("0_3.png: truncated PNG data") != std::string::npos, r.err);
  BOOST_TEST(!fs::exists(W / "bad.csv"));
  r = predict(a + " --images " + p(bad) + " --csv " + p(W / "bad.csv") + " --skip-bad");
  BOOST_TEST(r.rc == 0);
  BOOST_TEST(r.err.find("skipped 1 unreadable image") != std::string::npos, r.err);
  const auto m = read_csv(W / "bad.csv");
  BOOST_TEST(m.size() == 19u);
  BOOST_TEST(!m.count("0_3.png"));
  // Usage errors exit 2.
  BOOST_TEST(predict(a + val).rc == 2);
}

BOOST_AUTO_TEST_CASE(tsne_small) {
  const auto png = W / "tsne" / "t.png", csv = W / "tsne" / "t.csv";
  fs::remove_all(W / "tsne");
  const auto args = "--checkpoint " + p(W / "ckpt/A.safetensors") + " --images " + p(W / "cls/val_50") + " --out " +
                    p(png) + " --limit 16 --perplexity 4 --seed 3";
  auto r = run(HW1_TSNE, args);
  BOOST_REQUIRE_EQUAL(r.rc, 0);
  const auto img = hw1::read_png(png.string());
  BOOST_TEST(img.width > 100);
  const auto ls = lines(csv);
  BOOST_REQUIRE_EQUAL(ls.size(), 17u);
  BOOST_TEST(ls[0] == "image_id,label,x,y");
  for (std::size_t i = 1; i < ls.size(); ++i) {
    std::istringstream in(ls[i]);
    std::string name, label, x, y;
    std::getline(in, name, ',');
    std::getline(in, label, ',');
    std::getline(in, x, ',');
    std::getline(in, y, ',');
    BOOST_TEST(name.substr(0, name.find('_')) == label);
    BOOST_TEST(std::isfinite(std::stod(x)));
    BOOST_TEST(std::isfinite(std::stod(y)));
  }
  r = run(HW1_TSNE, args);
  BOOST_TEST(r.rc == 1);
  BOOST_TEST(r.err.find("already exists") != std::string::npos);
  // A segmenter cannot give classifier features.
  r = run(HW1_TSNE, "--checkpoint " + p(W / "ckpt/D5.safetensors") + " --images " + p(W / "cls/val_50") + " --out " +
                        p(W / "tsne" / "u.png"));
  BOOST_TEST(r.rc == 1);
  BOOST_TEST(r.err.find("is a deeplabv3 checkpoint") != std::string::npos);
}

// Bad values on the command line: one line, exit status 2, and no output file or folder created (a fresh path
// each time; the existing CSV keeps its bytes).
BOOST_AUTO_TEST_CASE(cli_refusals) {
  const auto a = " --checkpoint " + p(W / "ckpt/A.safetensors");
  const auto f1 = " --checkpoint " + p(W / "ckpt/F1.safetensors");
  const auto val = " --images " + p(W / "cls/val_50");
  const auto fresh = W / "cli_fresh";
  const auto kept = W / "cli_kept.csv";
  { std::ofstream(kept) << "mine\n"; }
  fs::remove_all(fresh);
  auto refused = [&](const std::string& prog, const std::string& args, const std::string& text) {
    const auto r = run(prog, args);
    BOOST_TEST(r.rc == 2, args << " -> " << r.rc << "\n" << r.err);
    BOOST_TEST(r.err.find(text) != std::string::npos, "expected \"" << text << "\" in:\n" << r.err);
    BOOST_TEST(std::count(r.err.begin(), r.err.end(), '\n') == 1, r.err);  // one line, not the usage after it
    BOOST_TEST(r.out.empty(), r.out);
    BOOST_TEST(!fs::exists(fresh), fresh << " was created by: " << args);
    BOOST_TEST(slurp(kept) == "mine\n");
    fs::remove_all(fresh);
  };
  // hw1-predict
  refused(HW1_PREDICT, a + val + " --csv " + p(fresh / "p.csv") + " --batch-size 4294967296",
          "--batch-size needs an integer in 1..65536, got '4294967296'");
  refused(HW1_PREDICT, a + val + " --csv " + p(fresh / "p.csv") + " --batch-size 0",
          "--batch-size needs an integer in 1..65536, got '0'");
  refused(HW1_PREDICT, f1 + " --images " + p(W / "seg") + " --masks " + p(fresh) + " --batch-size -2",
          "--batch-size needs an integer in 1..65536, got '-2'");
  refused(HW1_PREDICT, a + val + " --csv --force", "--csv needs a file name, got the flag --force");
  refused(HW1_PREDICT, a + val + " --csv " + p(kept) + " --force --batch-size x", "--batch-size needs an integer in 1..65536, got 'x'");
  refused(HW1_PREDICT, f1 + " --images " + p(W / "seg") + " --masks --force", "--masks needs a folder, got the flag --force");
  refused(HW1_PREDICT, " --checkpoint --images " + p(W / "seg") + " --masks " + p(fresh), "--checkpoint needs a file, got the flag --images");
  // hw1-tsne
  const auto tsne = a + val + " --out " + p(fresh / "t.png");
  refused(HW1_TSNE, tsne + " --perplexity nan", "--perplexity needs a number > 0, got 'nan'");
  refused(HW1_TSNE, tsne + " --perplexity -inf", "--perplexity needs a number > 0, got '-inf'");
  refused(HW1_TSNE, tsne + " --iterations 4294967297", "--iterations needs an integer in 1..1000000, got '4294967297'");
  refused(HW1_TSNE, tsne + " --batch-size 65537", "--batch-size needs an integer in 1..65536, got '65537'");
  refused(HW1_TSNE, tsne + " --limit 1", "--limit needs an integer >= 2, got '1'");
  refused(HW1_TSNE, tsne + " --seed 1e3", "--seed needs an integer >= 0, got '1e3'");
  refused(HW1_TSNE, a + val + " --out --force", "--out needs a .png file name, got the flag --force");
  // hw1-make-data: the counts are checked before --force removes anything.
  const auto made = W / "cli_made";
  fs::remove_all(made);
  BOOST_REQUIRE_EQUAL(run(HW1_MAKE_DATA, "--kind classification --out " + p(made) +
                                             " --classes 2 --train-per-class 1 --val-per-class 1 --seed 2").rc, 0);
  const auto image = slurp(made / "val_50" / "1_1.png");
  BOOST_REQUIRE(!image.empty());
  refused(HW1_MAKE_DATA, "--kind classification --out " + p(made) + " --seed 2 --force --classes 4294967298",
          "--classes needs an integer in 2..1000, got '4294967298'");
  refused(HW1_MAKE_DATA, "--kind classification --out " + p(made) + " --seed 2 --force --val-per-class -1",
          "--val-per-class needs an integer in 0..100000, got '-1'");
  BOOST_TEST(slurp(made / "val_50" / "1_1.png") == image);  // --force removed nothing
  refused(HW1_MAKE_DATA, "--kind segmentation --out " + p(fresh) + " --seed 2 --size 8", "--size needs an integer in 16..8192, got '8'");
  refused(HW1_MAKE_DATA, "--kind segmentation --out " + p(fresh) + " --seed 2 --train 0", "--train needs an integer in 1..100000, got '0'");
  refused(HW1_MAKE_DATA, "--kind segmentation --out " + p(fresh) + " --seed -1", "--seed needs an integer >= 0, got '-1'");
  refused(HW1_MAKE_DATA, "--kind segmentation --out --force --seed 1", "--out needs a folder, got the flag --force");
  refused(HW1_MAKE_DATA, "--kind segmentation --out " + p(fresh) + " --seed 1 --train --val 3",
          "--train needs an integer, got the flag --val");
  // hw1-miou
  refused(HW1_MIOU, "--gt --pred " + p(W / "seg"), "--gt needs a folder, got the flag --pred");
  refused(HW1_MIOU, "--gt " + p(W / "seg") + " --pred", "--pred needs a folder, got nothing");
  BOOST_TEST(!fs::exists("--force"));
}

// hw1-predict reads num_classes from a checkpoint's metadata; a file whose metadata disagrees with its last
// layer is refused with both numbers, before any output exists.
BOOST_AUTO_TEST_CASE(predict_num_classes_mismatch) {
  // Rewrites the safetensors header of `from` with metadata num_classes = k; the tensor bytes stay as they were.
  auto relabel = [](const fs::path& from, const fs::path& to, int k) {
    const std::string bytes = slurp(from);
    BOOST_REQUIRE(bytes.size() > 8);
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
    auto header = nlohmann::ordered_json::parse(bytes.substr(8, n));
    header["__metadata__"]["num_classes"] = std::to_string(k);
    std::string h = header.dump();
    while (h.size() % 8) h.push_back(' ');
    std::string len(8, '\0');
    for (int i = 0; i < 8; ++i) len[i] = char((std::uint64_t(h.size()) >> (8 * i)) & 0xff);
    std::ofstream(to, std::ios::binary | std::ios::trunc) << len << h << bytes.substr(8 + n);
    BOOST_REQUIRE_EQUAL(hw1::CheckpointInfo::from(hw1::SafeTensors::read(to.string())).num_classes, k);
  };
  const auto a5 = W / "ckpt" / "A_k5.safetensors", d6 = W / "ckpt" / "D5_k6.safetensors";
  relabel(W / "ckpt" / "A.safetensors", a5, 5);  // fc.weight: [4, 2048]
  relabel(W / "ckpt" / "D5.safetensors", d6, 6);  // classifier.4.weight: [7, 256, 1, 1]
  const auto csv = W / "mismatch.csv", masks = W / "mismatch_masks";
  fs::remove_all(csv);
  fs::remove_all(masks);
  auto r = predict(" --checkpoint " + p(a5) + " --images " + p(W / "cls/val_50") + " --csv " + p(csv));
  BOOST_TEST(r.rc == 1);
  BOOST_TEST(r.err.find("A_k5.safetensors: its metadata says num_classes 5 but its fc.weight has 4 output rows") !=
                 std::string::npos, r.err);
  BOOST_TEST(std::count(r.err.begin(), r.err.end(), '\n') == 1, r.err);
  BOOST_TEST(!fs::exists(csv));
  r = predict(" --checkpoint " + p(d6) + " --images " + p(W / "seg") + " --masks " + p(masks));
  BOOST_TEST(r.rc == 1);
  BOOST_TEST(r.err.find("D5_k6.safetensors: its metadata says num_classes 6 but its classifier.4.weight has 7 output rows") !=
                 std::string::npos, r.err);
  BOOST_TEST(!fs::exists(masks));
  // In an ensemble too, whichever member disagrees.
  r = predict(" --checkpoint " + p(W / "ckpt/A.safetensors") + " --checkpoint " + p(a5) + " --images " +
              p(W / "cls/val_50") + " --csv " + p(csv));
  BOOST_TEST(r.rc == 1);
  BOOST_TEST(r.err.find("A_k5.safetensors: its metadata says num_classes 5") != std::string::npos, r.err);
  BOOST_TEST(!fs::exists(csv));
  fs::remove(a5);
  fs::remove(d6);
}

BOOST_AUTO_TEST_CASE(make_data) {
  const auto d = W / "made";
  fs::remove_all(d);
  auto r = run(HW1_MAKE_DATA, "--kind classification --out " + p(d) + " --classes 3 --train-per-class 2 --val-per-class 1 --seed 4");
  BOOST_REQUIRE_EQUAL(r.rc, 0);
  BOOST_TEST(hw1::list_classification_dir((d / "train_50").string(), 3).size() == 6u);
  BOOST_TEST(hw1::list_classification_dir((d / "val_50").string(), 3).size() == 3u);
  const auto first = slurp(d / "val_50" / "2_2.png");
  r = run(HW1_MAKE_DATA, "--kind classification --out " + p(d) + " --classes 3 --seed 4");
  BOOST_TEST(r.rc == 1);
  BOOST_TEST(r.err.find("already holds files; pass --force") != std::string::npos);
  // --force with the same seed and sizes rewrites the same bytes.
  r = run(HW1_MAKE_DATA, "--kind classification --out " + p(d) + " --classes 3 --train-per-class 2 --val-per-class 1 --seed 4 --force");
  BOOST_REQUIRE_EQUAL(r.rc, 0);
  BOOST_TEST(slurp(d / "val_50" / "2_2.png") == first);
  const auto s = W / "made_seg";
  fs::remove_all(s);
  r = run(HW1_MAKE_DATA, "--kind segmentation --out " + p(s) + " --train 3 --val 2 --size 40 --seed 1");
  BOOST_REQUIRE_EQUAL(r.rc, 0);
  const auto pairs = hw1::list_segmentation_dir((s / "validation").string());
  BOOST_REQUIRE_EQUAL(pairs.size(), 2u);
  BOOST_TEST(hw1::read_png(pairs[0].mask_path).width == 40);
}

// The trainers under mpirun (2 ranks on this machine, 1 thread each; tests/distributed/tests.cmake runs one ctest
// entry per case): 2 ranks with --sync-bn equal 1 rank with the same global batch, per-rank batch norm learns, a
// run resumes with another number of ranks (both ways), a bad file in one rank's shard stops both with the file named, and
// Ctrl-C on mpirun leaves a resumable run directory.
#define BOOST_TEST_MODULE mpi_programs
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <climits>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/process.hpp"
#include "hw1/core/safetensors.hpp"
#include "hw1/data/layout.hpp"
#include "hw1/data/loader.hpp"
#include "hw1/data/synthetic.hpp"
#include "hw1/train/checkpoint.hpp"
#include "train/learnable_seg.hpp"

using namespace hw1;
namespace fs = std::filesystem;
using test::Proc;

namespace {

fs::path scratch(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("hw1-test-mpi-" + std::to_string(getpid())) / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

bool has(const Proc& p, const std::string& s) { return p.out.find(s) != std::string::npos; }

// 2 texture classes, 16 train and 8 val images of 32x32.
const fs::path& data() {
  static const fs::path root = [] {
    auto r = scratch("cls");
    make_classification_set(r.string(), 2, 8, 4, 9);
    return r;
  }();
  return root;
}

std::vector<std::string> args(const fs::path& train, const fs::path& out, std::vector<std::string> more = {},
                              const std::string& lr = "0.01") {
  std::vector<std::string> a{"--model", "resnet50", "--train", train.string(), "--val", (data() / "val_50").string(),
                             "--out", out.string(), "--batch-size", "8", "--optimizer", "sgd", "--lr", lr,
                             "--seed", "3", "--workers", "0"};
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

Proc one_rank(const std::vector<std::string>& a) { return test::run_process(HW1_TRAIN_CLASSIFIER, a, {}, "hw1-test-mpi"); }
Proc two_ranks(const std::vector<std::string>& a, const fs::path& interrupt_when = {},
               const std::string& exe = HW1_TRAIN_CLASSIFIER) {
  std::vector<std::string> m{"--oversubscribe", "--bind-to", "none", "-np", "2", "-x", "OMP_NUM_THREADS=1", exe};
  m.insert(m.end(), a.begin(), a.end());
  return test::run_process(HW1_MPIEXEC, m, interrupt_when, "hw1-test-mpi");
}

// max |a - b| / max |a| over all weights (stats false) or all running statistics (stats true) of two checkpoints.
double spread(const fs::path& x, const fs::path& y, bool stats) {
  const SafeTensors a = SafeTensors::read(x.string()), b = SafeTensors::read(y.string());
  BOOST_TEST_REQUIRE(a.names() == b.names());
  double d = 0, m = 1e-30;
  for (const auto& n : a.names()) {
    if ((n.find("running_") != std::string::npos) != stats) continue;
    const auto u = a.tensor<float>(n), v = b.tensor<float>(n);
    for (std::size_t i = 0; i < u.size(); ++i) {
      d = std::max(d, std::abs(double(u.data()[i]) - double(v.data()[i])));
      m = std::max(m, std::abs(double(u.data()[i])));
    }
  }
  return d / m;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(mpi, *boost::unit_test::disabled())

BOOST_AUTO_TEST_CASE(sync_bn_equals_one_rank) {
  // One SGD step on all 16 images (global batch 16) from the same weights: 1 rank on 1 thread, 1 rank on 2
  // threads, 2 ranks of 1 thread with --sync-bn (the batch-norm statistics of all 16 images, as 1 rank).
  const auto a = scratch("one"), a2 = scratch("one-2threads"), b = scratch("two"), c = scratch("two-local");
  const auto step = [](const fs::path& out, bool sync) {
    auto v = args(data() / "train_50", out, {"--epochs", "1", "--batch-size", "16"});
    if (sync) v.push_back("--sync-bn");  // accepted by 1 rank, without effect there
    return v;
  };
  setenv("OMP_NUM_THREADS", "1", 1);
  const Proc p1 = one_rank(step(a, true));
  BOOST_TEST_REQUIRE(p1.rc == 0, p1.out);
  setenv("OMP_NUM_THREADS", "2", 1);
  const Proc p12 = one_rank(step(a2, false));
  setenv("OMP_NUM_THREADS", "1", 1);
  BOOST_TEST_REQUIRE(p12.rc == 0, p12.out);
  const Proc p2 = two_ranks(step(b, true));
  BOOST_TEST_REQUIRE(p2.rc == 0, p2.out);
  BOOST_TEST(has(p2, "all-reduce over 2 ranks"), p2.out);
  BOOST_TEST(!has(p2, "rank 1"), "rank 1 printed:\n" << p2.out);
  // The bound. The gradients of a from-scratch ResNet at 32x32 are ill-conditioned in float32 (batch norm over
  // few values per channel; PyTorch 1.13's own float32 gradient of conv1.weight in this setting is 1.5e-2 off its
  // float64 one), so no fixed tolerance fits every seed, and after a second step any rounding difference has
  // grown to the size of the update (1 and 2 threads of one process diverge as fast: checked with lr 1e-6).
  // One process on 2 threads sums in another order too: after one step 2 ranks must stay within 4x of that
  // spread (seen: 1.1x, 2.6e-3 of the largest weight; running statistics 1.5e-5). The multi-step equality on a
  // well-conditioned network is tests/distributed/test_data_parallel.cpp's (8 steps: 6e-8 at 1 thread per rank).
  const auto ck = [](const fs::path& d) { return d / "epoch-001.safetensors"; };
  const double threads = spread(ck(a), ck(a2), false), ranks = spread(ck(a), ck(b), false);
  const double threads_stat = spread(ck(a), ck(a2), true), ranks_stat = spread(ck(a), ck(b), true);
  BOOST_TEST_MESSAGE("after one step, max |dw| / max |w|: 2 ranks vs 1 " << ranks << ", 2 threads vs 1 " << threads
                     << "; running statistics " << ranks_stat << " vs " << threads_stat);
  BOOST_TEST(ranks <= 4 * threads + 1e-7);
  BOOST_TEST(ranks_stat <= 4 * threads_stat + 1e-7);
  // Without --sync-bn each rank normalises its 8 images alone: another computation, far outside that spread.
  const Proc p3 = two_ranks(step(c, false));
  BOOST_TEST_REQUIRE(p3.rc == 0, p3.out);
  const double local = spread(ck(a), ck(c), true);
  BOOST_TEST_MESSAGE("running statistics, 2 ranks without --sync-bn vs 1 rank: " << local);
  BOOST_TEST(local > 4 * threads_stat + 1e-7);
}

BOOST_AUTO_TEST_CASE(per_rank_bn_learns_and_resumes_with_one_rank) {
  // DeepLabv3-ResNet50 from scratch on 32 learnable 64x64 tiles (tests/train/learnable_seg.hpp), global batch 4:
  // each rank normalises its own 2 tiles. The training loss falls by 5 % in 6 epochs, and the 2-rank checkpoint
  // goes on with 1 rank.
  const auto data = scratch("seg");
  test::make_learnable_segmentation_set(data, 32, 8, 64, 9, false);
  const auto b = scratch("seg-run");
  const std::vector<std::string> a{"--model", "deeplabv3_resnet50", "--train", (data / "train").string(), "--val",
                                   (data / "validation").string(), "--out", b.string(), "--seed", "3", "--workers",
                                   "0", "--epochs", "6", "--batch-size", "4", "--optimizer", "sgd", "--lr", "0.01",
                                   "--keep-epochs", "1"};
  const Proc p = two_ranks(a, {}, HW1_TRAIN_SEGMENTER);
  BOOST_TEST_REQUIRE(p.rc == 0, p.out);
  const MetricsLog log = MetricsLog::read((b / "metrics.csv").string(), 1e9);
  BOOST_TEST_REQUIRE(log.rows.size() == 6u);
  BOOST_TEST_MESSAGE("2 ranks, per-rank batch norm: train loss " << log.rows.front()[1] << " -> " << log.rows.back()[1]
                                                                  << ", val mIoU " << log.rows.back()[3]);
  BOOST_TEST(log.rows.back()[1] < 0.95 * log.rows.front()[1]);  // seen: 1.883 -> 1.608
  const Proc r1 = test::run_process(HW1_TRAIN_SEGMENTER, {"--resume", b.string(), "--epochs", "7"}, {}, "hw1-test-mpi");
  BOOST_TEST_REQUIRE(r1.rc == 0, r1.out);
  BOOST_TEST(has(r1, "resuming " + b.string() + " after epoch 6"));
  BOOST_TEST(fs::exists(b / "epoch-007.safetensors"));
}

BOOST_AUTO_TEST_CASE(one_rank_run_resumes_with_two) {
  const auto c = scratch("grow");
  BOOST_TEST_REQUIRE(one_rank(args(data() / "train_50", c, {"--epochs", "1"})).rc == 0);
  const Proc r2 = two_ranks({"--resume", c.string(), "--epochs", "2"});
  BOOST_TEST_REQUIRE(r2.rc == 0, r2.out);
  BOOST_TEST(has(r2, "after epoch 1"));
  BOOST_TEST(has(r2, "all-reduce over 2 ranks"));
  BOOST_TEST(CheckpointInfo::from(SafeTensors::read((c / "epoch-002.safetensors").string())).epoch == 2);
}

BOOST_AUTO_TEST_CASE(batch_must_divide_over_the_ranks) {
  const auto b = scratch("odd");
  const Proc p = two_ranks(args(data() / "train_50", b, {"--epochs", "1", "--batch-size", "7"}));
  BOOST_TEST(p.rc != 0);
  BOOST_TEST(has(p, "--batch-size 7 is the global batch and must divide evenly over the 2 ranks"), p.out);
  BOOST_TEST(!fs::exists(b / "run.json"));
}

BOOST_AUTO_TEST_CASE(a_bad_file_in_one_shard_stops_every_rank) {
  // Epoch 1, batch 0 holds positions 0..7 of the epoch order; rank 1 reads positions 4..7. Corrupt position 4.
  const auto train = scratch("bad-train");
  for (const auto& e : fs::directory_iterator(data() / "train_50")) fs::copy(e.path(), train / e.path().filename());
  const auto files = list_classification_dir(train.string(), INT_MAX);
  const auto order = epoch_order(files.size(), true, 3, 0);
  const fs::path bad = files[order[4]].path;
  std::ofstream(bad, std::ios::binary | std::ios::trunc) << "not a PNG";
  const auto b = scratch("bad-run");
  const Proc p = two_ranks(args(train, b, {"--epochs", "1"}));
  BOOST_TEST(p.rc != 0, p.out);
  BOOST_TEST(has(p, "rank 1 of 2"), p.out);
  BOOST_TEST(has(p, bad.filename().string()), p.out);
  BOOST_TEST(!fs::exists(b / "epoch-001.safetensors"));
}

BOOST_AUTO_TEST_CASE(ctrl_c_on_mpirun_leaves_a_resumable_run) {
  const auto b = scratch("cut");
  const Proc cut = two_ranks(args(data() / "train_50", b, {"--epochs", "3"}), b / "optimizer.safetensors");
  BOOST_TEST(cut.rc != 0, cut.out);
  BOOST_TEST_REQUIRE(fs::exists(b / "epoch-001.safetensors"));
  BOOST_TEST(!fs::exists(b / "epoch-003.safetensors"));
  const Proc rest = two_ranks({"--resume", b.string()});
  BOOST_TEST_REQUIRE(rest.rc == 0, rest.out);
  BOOST_TEST(fs::exists(b / "epoch-003.safetensors"));
}

BOOST_AUTO_TEST_SUITE_END()

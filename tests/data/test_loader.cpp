#define BOOST_TEST_MODULE loader
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <thread>
#include <map>
#include <unistd.h>

#include "hw1/data/image_io.hpp"
#include "hw1/data/layout.hpp"
#include "hw1/data/loader.hpp"

namespace fs = std::filesystem;

namespace {

// An in-memory data set: a sample records its index and seed and draws a few bytes from that seed, like an
// augmentation would. Uneven sleeps make workers finish out of order.
struct ToySample {
  std::size_t index;
  std::uint64_t seed;
  std::vector<std::uint64_t> draws;
};
struct ToyBatch {
  std::vector<std::size_t> indices;
  std::vector<std::uint64_t> seeds, draws;
  bool operator==(const ToyBatch&) const = default;
};
struct Toy {
  std::size_t n = 23;
  std::set<std::size_t> bad;
  int delay_us = 0;
  std::shared_ptr<std::atomic<int>> calls = std::make_shared<std::atomic<int>>(0);

  std::size_t size() const { return n; }
  ToySample get(std::size_t i, std::uint64_t seed) const {
    ++*calls;
    if (delay_us) std::this_thread::sleep_for(std::chrono::microseconds((i * 37 % 7) * delay_us));
    if (bad.count(i)) throw hw1::Error("bad_" + std::to_string(i) + ".png: truncated PNG data");
    std::mt19937_64 rng(seed);
    return {i, seed, {rng(), rng()}};
  }
  static ToyBatch collate(std::vector<ToySample>&& v) {
    ToyBatch b;
    for (auto& s : v) {
      b.indices.push_back(s.index);
      b.seeds.push_back(s.seed);
      b.draws.insert(b.draws.end(), s.draws.begin(), s.draws.end());
    }
    return b;
  }
};

template <class L>
auto drain(L& loader, std::uint64_t epoch, std::size_t first = 0) {
  loader.start_epoch(epoch, first);
  std::vector<typename L::Batch> out;
  while (auto b = loader.next()) out.push_back(std::move(*b));
  return out;
}

hw1::LoaderOptions opts(std::size_t batch, int workers, bool shuffle = true, std::uint64_t seed = 7) {
  hw1::LoaderOptions o;
  o.batch_size = batch, o.num_workers = workers, o.shuffle = shuffle, o.seed = seed;
  return o;
}

// A fresh temporary folder, removed at the end of the test.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& tag) {
    path = fs::temp_directory_path() / ("hw1_loader_" + tag + "_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

hw1::Image solid(int h, int w, std::uint8_t r, std::uint8_t g, std::uint8_t b) {
  hw1::Image img(h, w, 3);
  for (std::size_t p = 0; p < img.pixels.size(); p += 3) img.pixels[p] = r, img.pixels[p + 1] = g, img.pixels[p + 2] = b;
  return img;
}

// Undo the ImageNet normalisation of one value.
int pixel_of(float v, int c) { return int(std::lround((v * hw1::kImageNetStd[c] + hw1::kImageNetMean[c]) * 255)); }

}  // namespace

BOOST_AUTO_TEST_CASE(order_and_batch_counts) {
  hw1::Loader plain(Toy{}, opts(5, 0, false));
  BOOST_TEST(plain.num_batches() == 5u);
  const auto batches = drain(plain, 0);
  BOOST_TEST(batches.size() == 5u);
  BOOST_TEST(batches.back().indices.size() == 3u);  // 23 = 4*5 + 3
  std::size_t expect = 0;
  for (const auto& b : batches)
    for (auto i : b.indices) BOOST_TEST(i == expect++);

  auto o = opts(5, 0);
  o.drop_last = true;
  hw1::Loader dropping(Toy{}, o);
  BOOST_TEST(dropping.num_batches() == 4u);
  BOOST_TEST(drain(dropping, 0).size() == 4u);

  // shuffled: a permutation that depends on (seed, epoch) only
  const auto e0 = hw1::epoch_order(23, true, 7, 0), e1 = hw1::epoch_order(23, true, 7, 1);
  BOOST_TEST((e0 == hw1::epoch_order(23, true, 7, 0)));
  BOOST_TEST((e0 != e1));
  BOOST_TEST((e0 != hw1::epoch_order(23, true, 8, 0)));
  std::vector<std::size_t> sorted = e1;
  std::sort(sorted.begin(), sorted.end());
  BOOST_TEST((sorted == hw1::epoch_order(23, false, 7, 1)));
  hw1::Loader shuffled(Toy{}, opts(4, 2));
  std::vector<std::size_t> seen;
  for (const auto& b : drain(shuffled, 1)) seen.insert(seen.end(), b.indices.begin(), b.indices.end());
  BOOST_TEST((seen == e1));
}

BOOST_AUTO_TEST_CASE(sample_seeds_follow_seed_epoch_index) {
  hw1::Loader a(Toy{}, opts(4, 0, true)), b(Toy{}, opts(6, 0, false));
  // the seed of sample i does not depend on where the shuffle put it or on the batch size
  std::map<std::size_t, std::uint64_t> sa, sb;
  for (const auto& bt : drain(a, 3))
    for (std::size_t k = 0; k < bt.indices.size(); ++k) sa[bt.indices[k]] = bt.seeds[k];
  for (const auto& bt : drain(b, 3))
    for (std::size_t k = 0; k < bt.indices.size(); ++k) sb[bt.indices[k]] = bt.seeds[k];
  BOOST_TEST((sa == sb));
  BOOST_TEST(sa[5] == hw1::sample_seed(7, 3, 5));
  std::set<std::uint64_t> distinct;
  for (auto& [i, s] : sa) distinct.insert(s);
  BOOST_TEST(distinct.size() == 23u);
  BOOST_TEST(hw1::sample_seed(7, 3, 5) != hw1::sample_seed(7, 4, 5));
  BOOST_TEST(hw1::sample_seed(7, 3, 5) != hw1::sample_seed(8, 3, 5));
}

BOOST_AUTO_TEST_CASE(identical_batches_whatever_the_workers) {
  Toy t;
  t.delay_us = 200;
  hw1::Loader l0(t, opts(4, 0)), l1(t, opts(4, 1)), l3(t, opts(4, 3));
  const auto ref = drain(l0, 2);
  BOOST_TEST((drain(l1, 2) == ref));
  BOOST_TEST((drain(l3, 2) == ref));
  auto o = opts(4, 3);
  o.prefetch = 1;  // fewer batches in flight than workers: still the same batches
  hw1::Loader lp(t, o);
  BOOST_TEST((drain(lp, 2) == ref));
  // a different epoch gives other batches; re-running an epoch gives the same ones; resuming skips ahead
  BOOST_TEST((drain(l3, 3) != ref));
  BOOST_TEST((drain(l3, 2) == ref));
  const auto resumed = drain(l3, 2, 2);
  BOOST_TEST((resumed == std::vector<ToyBatch>(ref.begin() + 2, ref.end())));
  BOOST_CHECK_THROW(l3.start_epoch(2, 7), hw1::Error);
}

BOOST_AUTO_TEST_CASE(prefetch_is_bounded) {
  Toy t;
  auto o = opts(2, 3);
  o.prefetch = 2;
  hw1::Loader loader(t, o);
  loader.start_epoch(0);
  auto wait_for = [&](int n) {
    for (int k = 0; k < 500 && *t.calls < n; ++k) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  };
  wait_for(4);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  BOOST_TEST(*t.calls == 4);  // 2 batches of 2, not more, before anything is taken
  BOOST_REQUIRE(loader.next());
  wait_for(6);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  BOOST_TEST(*t.calls == 6);
  // abandoning an epoch with work in flight, and destroying a busy loader, must not hang
  loader.start_epoch(1);
  BOOST_REQUIRE(loader.next());
}

BOOST_AUTO_TEST_CASE(errors_reach_next_in_order) {
  Toy t;
  t.bad = {5};
  t.delay_us = 100;
  for (int workers : {0, 1, 3}) {
    hw1::Loader loader(t, opts(4, workers, false));
    loader.start_epoch(0);
    BOOST_REQUIRE(loader.next());  // samples 0..3
    try {
      loader.next();  // samples 4..7 hold the bad one
      BOOST_FAIL("a failing sample must throw from next()");
    } catch (const hw1::Error& e) {
      const std::string msg = e.what();
      BOOST_TEST(msg.find("bad_5.png") != std::string::npos, msg);
      BOOST_TEST(msg.find("sample 5") != std::string::npos, msg);
    }
    auto after = loader.next();  // the epoch goes on after the failed batch
    BOOST_REQUIRE(after);
    BOOST_TEST(after->indices.front() == 8u);
  }
  hw1::Loader unstarted(t, opts(4, 1));
  BOOST_CHECK_THROW(unstarted.next(), hw1::Error);
  BOOST_CHECK_THROW((void)hw1::Loader<Toy>(t, opts(0, 1)), hw1::Error);
  BOOST_CHECK_THROW((void)hw1::Loader<Toy>(t, opts(1, -1)), hw1::Error);
}

BOOST_AUTO_TEST_CASE(skip_bad_drops_and_counts_deterministically) {
  Toy t;
  t.bad = {2, 5, 8, 9, 10, 11};  // 8..11 fill one unshuffled batch of 4 completely
  t.delay_us = 100;
  std::vector<ToyBatch> ref;
  for (int workers : {0, 1, 3}) {
    auto o = opts(4, workers, false);
    o.skip_bad = true;
    hw1::Loader loader(t, o);
    const auto got = drain(loader, 0);
    BOOST_TEST(loader.skipped() == 6u);
    std::size_t total = 0;
    for (const auto& b : got) {
      total += b.indices.size();
      for (auto i : b.indices) BOOST_TEST(!t.bad.count(i));
    }
    BOOST_TEST(total == 23u - 6u);
    BOOST_TEST(got.size() == 5u);  // the all-bad batch is left out
    BOOST_TEST((got[0].indices == std::vector<std::size_t>{0, 1, 3}));
    if (ref.empty()) ref = got;
    BOOST_TEST((got == ref));
  }
  // shuffled too
  auto o = opts(3, 0);
  o.skip_bad = true;
  hw1::Loader a(t, o);
  o.num_workers = 2;
  hw1::Loader b(t, o);
  BOOST_TEST((drain(a, 4) == drain(b, 4)));
  BOOST_TEST(a.skipped() == 6u);
  BOOST_TEST(b.skipped() == 6u);
}

BOOST_AUTO_TEST_CASE(classification_files) {
  TempDir dir("cls");
  // 4 images 6x5 of class-specific colours, one 4x4 odd one out, one corrupt file
  for (int k = 0; k < 4; ++k) hw1::write_png(dir / (std::to_string(k % 2) + "_" + std::to_string(k) + ".png"),
                                              solid(6, 5, std::uint8_t(40 * k), 100, std::uint8_t(200 - k)));
  auto files = hw1::list_classification_dir(dir.path.string(), 2);
  BOOST_REQUIRE(files.size() == 4u);

  hw1::Loader loader(hw1::ClassificationDataset(files), opts(4, 2, false));
  const auto batches = drain(loader, 0);
  BOOST_REQUIRE(batches.size() == 1u);
  const auto& b = batches[0];
  BOOST_TEST((hw1::shape_of(b.images) == hw1::Shape{4, 3, 6, 5}));
  BOOST_TEST((b.names == std::vector<std::string>{"0_0.png", "0_2.png", "1_1.png", "1_3.png"}));
  BOOST_TEST((b.labels == std::vector<std::int64_t>{0, 0, 1, 1}));
  const int ks[4] = {0, 2, 1, 3};
  for (int n = 0; n < 4; ++n) {
    const int rgb[3] = {40 * ks[n], 100, 200 - ks[n]};
    for (int c = 0; c < 3; ++c) {
      BOOST_TEST(b.images(n, c, 5, 4) == (rgb[c] / 255.0f - hw1::kImageNetMean[c]) / hw1::kImageNetStd[c],
                 boost::test_tools::tolerance(1e-5f));
      BOOST_TEST(b.images(n, c, 0, 0) == b.images(n, c, 3, 2));
    }
  }

  // an image of another size in the batch: a clear error unless the config gives one size
  hw1::write_png(dir / "1_9.png", solid(4, 4, 1, 2, 3));
  files = hw1::list_classification_dir(dir.path.string(), 2);
  hw1::Loader mixed(hw1::ClassificationDataset(files), opts(5, 0, false));
  mixed.start_epoch(0);
  try {
    mixed.next();
    BOOST_FAIL("mixed sizes must throw");
  } catch (const hw1::Error& e) {
    const std::string msg = e.what();
    BOOST_TEST(msg.find("1_9.png") != std::string::npos, msg);
    BOOST_TEST(msg.find("0_0.png") != std::string::npos, msg);
  }
  hw1::AugmentConfig resize;
  resize.out_h = resize.out_w = 8;
  resize.hflip = true;
  resize.rotate_degrees = 15;
  hw1::Loader resized(hw1::ClassificationDataset(files, resize), opts(5, 2));
  const auto rb = drain(resized, 0);
  BOOST_TEST((hw1::shape_of(rb.at(0).images) == hw1::Shape{5, 3, 8, 8}));
  hw1::Loader resized1(hw1::ClassificationDataset(files, resize), opts(5, 0));
  const auto rb1 = drain(resized1, 0);
  BOOST_TEST((rb1.at(0).images == rb.at(0).images));  // bit-identical with 0 and 2 workers
  BOOST_TEST((rb1.at(0).names == rb.at(0).names));

  // a corrupt file: the error names it; skip_bad drops and counts it
  { std::ofstream(dir / "0_5.png", std::ios::binary) << "not a png at all"; }
  files = hw1::list_classification_dir(dir.path.string(), 2);
  hw1::Loader broken(hw1::ClassificationDataset(files, resize), opts(2, 2, false));
  broken.start_epoch(0);
  bool thrown = false;
  try {
    while (broken.next()) {
    }
  } catch (const hw1::Error& e) {
    thrown = true;
    BOOST_TEST(std::string(e.what()).find("0_5.png") != std::string::npos, e.what());
  }
  BOOST_TEST(thrown);
  auto o = opts(2, 2);
  o.skip_bad = true;
  hw1::Loader skipping(hw1::ClassificationDataset(files, resize), o);
  std::size_t n = 0;
  for (const auto& bt : drain(skipping, 0)) n += bt.names.size();
  BOOST_TEST(n == 5u);
  BOOST_TEST(skipping.skipped() == 1u);
}

BOOST_AUTO_TEST_CASE(segmentation_pairs) {
  TempDir dir("seg");
  const auto pal = hw1::seg_palette();
  // 12x10 pairs: PNG images whose grey level is 20 * class (lossless, so alignment can be checked exactly)
  std::vector<hw1::SegSample> pairs;
  for (int k = 0; k < 5; ++k) {
    hw1::Image cls(12, 10, 1), mask(12, 10, 3), img(12, 10, 3);
    for (int y = 0; y < 12; ++y)
      for (int x = 0; x < 10; ++x) {
        const int c = (x / 3 + y / 4 + k) % 6;
        cls.at(y, x) = std::uint8_t(c);
        for (int ch = 0; ch < 3; ++ch) mask.at(y, x, ch) = pal[c][ch], img.at(y, x, ch) = std::uint8_t(20 * c + 10);
      }
    const std::string id = "000" + std::to_string(k);
    hw1::write_png(dir / (id + "_img.png"), img);
    hw1::write_png(dir / (id + "_mask.png"), mask);
    pairs.push_back({id, dir / (id + "_img.png"), dir / (id + "_mask.png")});
  }
  hw1::AugmentConfig aug;
  aug.crop_h = 8, aug.crop_w = 8;
  aug.hflip = aug.vflip = aug.rot90 = true;
  hw1::Loader loader(hw1::SegmentationDataset(pairs, aug), opts(2, 2));
  const auto batches = drain(loader, 0);
  BOOST_REQUIRE(batches.size() == 3u);
  std::set<std::string> names;
  for (const auto& b : batches) {
    const std::size_t n = b.names.size();
    BOOST_TEST((hw1::shape_of(b.images) == hw1::Shape{n, 3, 8, 8}));
    BOOST_REQUIRE(b.targets.size() == n * 64);
    for (std::size_t i = 0; i < n; ++i) {
      names.insert(b.names[i]);
      for (int y = 0; y < 8; ++y)
        for (int x = 0; x < 8; ++x) {
          const auto t = b.targets[i * 64 + y * 8 + x];
          BOOST_TEST((t >= 0 && t < 6));
          BOOST_TEST(pixel_of(b.images(i, 1, y, x), 1) == 20 * t + 10);  // image and mask moved together
        }
    }
  }
  BOOST_TEST(names.size() == 5u);
  hw1::Loader again(hw1::SegmentationDataset(pairs, aug), opts(2, 0));
  const auto batches0 = drain(again, 0);
  for (std::size_t k = 0; k < 3; ++k) {
    BOOST_TEST((batches0[k].images == batches[k].images));
    BOOST_TEST((batches0[k].targets == batches[k].targets));
  }

  // no augmentation: targets are exactly mask_to_classes of the file
  hw1::Loader plain(hw1::SegmentationDataset(pairs), opts(5, 1, false));
  const auto pb = drain(plain, 0).at(0);
  const auto expect = hw1::mask_to_classes(hw1::read_image(pairs[3].mask_path, 3));
  BOOST_TEST((std::vector<std::int64_t>(pb.targets.begin() + 3 * 120, pb.targets.begin() + 4 * 120) ==
              std::vector<std::int64_t>(expect.pixels.begin(), expect.pixels.end())));

  // image and mask of different sizes: an error naming both files
  hw1::write_png(dir / "0009_mask.png", solid(12, 11, 0, 0, 0));
  hw1::SegmentationDataset mismatched({{"0009", pairs[0].image_path, dir / "0009_mask.png"}});
  try {
    mismatched.get(0, 1);
    BOOST_FAIL("a size mismatch must throw");
  } catch (const hw1::Error& e) {
    const std::string msg = e.what();
    BOOST_TEST(msg.find("0000_img.png") != std::string::npos, msg);
    BOOST_TEST(msg.find("0009_mask.png") != std::string::npos, msg);
  }
}

BOOST_AUTO_TEST_CASE(segmentation_folder_layout) {
  // the course layout (JPEG images, RGB masks) read through list_segmentation_dir
  TempDir dir("segdir");
  const auto pal = hw1::seg_palette();
  for (int k = 0; k < 3; ++k) {
    hw1::Image mask(16, 16, 3);
    for (int y = 0; y < 16; ++y)
      for (int x = 0; x < 16; ++x)
        for (int ch = 0; ch < 3; ++ch) mask.at(y, x, ch) = pal[(x / 8 + 2 * (y / 8) + k) % 7][ch];
    const std::string id = "00" + std::to_string(10 + k);
    hw1::write_jpeg(dir / (id + "_sat.jpg"), solid(16, 16, 90, 120, std::uint8_t(30 * k)));
    hw1::write_png(dir / (id + "_mask.png"), mask);
  }
  hw1::Loader loader(hw1::SegmentationDataset(hw1::list_segmentation_dir(dir.path.string())), opts(3, 2, false));
  const auto b = drain(loader, 0).at(0);
  BOOST_TEST((b.names == std::vector<std::string>{"0010", "0011", "0012"}));
  BOOST_TEST(b.targets.size() == 3u * 256u);
  BOOST_TEST(b.targets[2 * 256 + 15 * 16 + 15] == (1 + 2 + 2) % 7);
  BOOST_TEST(std::abs(pixel_of(b.images(1, 0, 8, 8), 0) - 90) <= 3);  // JPEG is lossy, but close
}

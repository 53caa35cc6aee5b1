#define BOOST_TEST_MODULE augment
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <set>

#include "hw1/data/augment.hpp"

using hw1::Image;

namespace {

// A 1-channel image from rows of values.
Image gray(std::initializer_list<std::initializer_list<int>> rows) {
  Image img(int(rows.size()), int(rows.begin()->size()), 1);
  int y = 0;
  for (auto& r : rows) {
    int x = 0;
    for (int v : r) img.at(y, x++) = std::uint8_t(v);
    ++y;
  }
  return img;
}

// Distinct values everywhere (for permutation checks), with `c` channels.
Image ramp(int h, int w, int c) {
  Image img(h, w, c);
  for (std::size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = std::uint8_t((i * 7 + 3) % 251);
  return img;
}

Image random_labels(int h, int w, std::vector<int> labels, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  Image m(h, w, 1);
  for (auto& v : m.pixels) v = std::uint8_t(labels[hw1::rand_below(rng, labels.size())]);
  return m;
}

std::set<int> values(const Image& img) { return {img.pixels.begin(), img.pixels.end()}; }

bool same(const Image& a, const Image& b) {
  return a.height == b.height && a.width == b.width && a.channels == b.channels && a.pixels == b.pixels;
}

}  // namespace

BOOST_AUTO_TEST_CASE(flips_exact) {
  Image a = gray({{1, 2, 3}, {4, 5, 6}});
  BOOST_TEST(same(hw1::hflip(a), gray({{3, 2, 1}, {6, 5, 4}})));
  BOOST_TEST(same(hw1::vflip(a), gray({{4, 5, 6}, {1, 2, 3}})));
  // channels move together
  Image rgb(1, 2, 3);
  rgb.pixels = {1, 2, 3, 4, 5, 6};
  BOOST_TEST((hw1::hflip(rgb).pixels == std::vector<std::uint8_t>{4, 5, 6, 1, 2, 3}));
}

BOOST_AUTO_TEST_CASE(rot90_exact) {
  Image a = gray({{1, 2, 3}, {4, 5, 6}});
  BOOST_TEST(same(hw1::rot90(a, 1), gray({{3, 6}, {2, 5}, {1, 4}})));  // counter-clockwise, as numpy.rot90
  BOOST_TEST(same(hw1::rot90(a, 2), gray({{6, 5, 4}, {3, 2, 1}})));
  BOOST_TEST(same(hw1::rot90(a, 3), gray({{4, 1}, {5, 2}, {6, 3}})));
  BOOST_TEST(same(hw1::rot90(a, -1), hw1::rot90(a, 3)));
  BOOST_TEST(same(hw1::rot90(a, 4), a));
  Image r = ramp(5, 7, 3);
  BOOST_TEST(same(hw1::rot90(hw1::rot90(r, 1), 3), r));
}

BOOST_AUTO_TEST_CASE(crop_exact_and_padded) {
  Image a = gray({{1, 2, 3}, {4, 5, 6}, {7, 8, 9}});
  BOOST_TEST(same(hw1::crop(a, 1, 1, 2, 2), gray({{5, 6}, {8, 9}})));
  BOOST_TEST(same(hw1::crop(a, -1, 2, 2, 3, 9), gray({{9, 9, 9}, {3, 9, 9}})));
  BOOST_CHECK_THROW(hw1::crop(a, 0, 0, 0, 2), hw1::Error);
}

BOOST_AUTO_TEST_CASE(random_crop_is_a_window_of_image_and_mask) {
  const Image img = ramp(6, 7, 3);
  Image mask(6, 7, 1);
  for (int y = 0; y < 6; ++y)
    for (int x = 0; x < 7; ++x) mask.at(y, x) = std::uint8_t(10 * y + x);  // encodes its own position
  std::set<std::pair<int, int>> offsets;
  for (std::uint64_t s = 0; s < 200; ++s) {
    std::mt19937_64 rng(s);
    Image i = img, m = mask;
    hw1::random_crop(i, &m, 4, 5, rng);
    BOOST_REQUIRE(i.height == 4 && i.width == 5 && m.height == 4 && m.width == 5);
    const int y0 = m.at(0, 0) / 10, x0 = m.at(0, 0) % 10;
    offsets.insert({y0, x0});
    BOOST_TEST(same(i, hw1::crop(img, y0, x0, 4, 5)));
    BOOST_TEST(same(m, hw1::crop(mask, y0, x0, 4, 5)));
  }
  BOOST_TEST(offsets.size() == 3u * 3u);  // every placement occurs

  // Smaller than the crop: the image sits somewhere inside, image padded with 0, mask with the fill label.
  std::set<std::pair<int, int>> places;
  for (std::uint64_t s = 0; s < 200; ++s) {
    std::mt19937_64 rng(s);
    Image i = gray({{11, 12}, {13, 14}}), m = gray({{1, 2}, {3, 4}});
    hw1::random_crop(i, &m, 3, 4, rng, 6);
    int found = 0;
    for (int y = 0; y < 2; ++y)
      for (int x = 0; x < 3; ++x)
        if (m.at(y, x) == 1 && m.at(y, x + 1) == 2 && m.at(y + 1, x) == 3 && m.at(y + 1, x + 1) == 4) {
          ++found;
          places.insert({y, x});
          BOOST_TEST(same(i, hw1::crop(gray({{11, 12}, {13, 14}}), -y, -x, 3, 4, 0)));
          BOOST_TEST(same(m, hw1::crop(gray({{1, 2}, {3, 4}}), -y, -x, 3, 4, 6)));
        }
    BOOST_TEST(found == 1);
  }
  BOOST_TEST(places.size() == 2u * 3u);
}

BOOST_AUTO_TEST_CASE(resize_nearest_exact) {
  BOOST_TEST(same(hw1::resize_nearest(gray({{1, 2}, {3, 4}}), 4, 4),
                  gray({{1, 1, 2, 2}, {1, 1, 2, 2}, {3, 3, 4, 4}, {3, 3, 4, 4}})));
  // centres: 4 -> 2 takes sources 1 and 3; 3 -> 2 takes 0 and 2
  BOOST_TEST(same(hw1::resize_nearest(gray({{1, 2, 3, 4}}), 1, 2), gray({{2, 4}})));
  BOOST_TEST(same(hw1::resize_nearest(gray({{1, 2, 3}}), 1, 2), gray({{1, 3}})));
}

BOOST_AUTO_TEST_CASE(resize_bilinear_hand_values) {
  // 1-d: source centres at 0.5 and 1.5 in output pixel units 2 apart; the ends clamp.
  BOOST_TEST(same(hw1::resize_bilinear(gray({{0, 100}}), 1, 4), gray({{0, 25, 75, 100}})));
  // 2-d separable: row weights (1,0),(.75,.25),(.25,.75),(0,1) in both directions.
  // row0 = [0,25,75,100], row1 = [200,160,80,40]; row 1 of the output = .75*row0 + .25*row1, etc.
  BOOST_TEST(same(hw1::resize_bilinear(gray({{0, 100}, {200, 40}}), 4, 4),
                  gray({{0, 25, 75, 100}, {50, 59, 76, 85}, {150, 126, 79, 55}, {200, 160, 80, 40}})));
  // downsampling 2:1 averages pairs (no antialias filter, as PyTorch's default)
  BOOST_TEST(same(hw1::resize_bilinear(gray({{0, 10, 20, 30}}), 1, 2), gray({{5, 25}})));
  // 3 -> 2: source positions 0.25 and 1.75
  BOOST_TEST(same(hw1::resize_bilinear(gray({{0, 100, 200}}), 1, 2), gray({{25, 175}})));
  const Image r = ramp(5, 6, 3);
  BOOST_TEST(same(hw1::resize_bilinear(r, 5, 6), r));
}

BOOST_AUTO_TEST_CASE(normalisation) {
  Image img(1, 2, 3);
  img.pixels = {0, 255, 128, 10, 20, 30};
  std::vector<float> out(6);
  hw1::to_tensor_normalized(img, hw1::kImageNetMean, hw1::kImageNetStd, out.data());
  const float m[3] = {0.485f, 0.456f, 0.406f}, s[3] = {0.229f, 0.224f, 0.225f};
  for (int c = 0; c < 3; ++c)
    for (int x = 0; x < 2; ++x)  // CHW: channel planes of W values
      BOOST_TEST(out[c * 2 + x] == (img.pixels[x * 3 + c] / 255.0f - m[c]) / s[c], boost::test_tools::tolerance(1e-5f));
  BOOST_TEST(out[0] == -0.485f / 0.229f, boost::test_tools::tolerance(1e-6f));
  BOOST_TEST(out[2] == (1 - 0.456f) / 0.224f, boost::test_tools::tolerance(1e-6f));
  // gray is repeated into three channels
  Image g = gray({{51}});
  float o3[3];
  const float half[3] = {0.5f, 0.5f, 0.5f}, one[3] = {1, 1, 1};
  hw1::to_tensor_normalized(g, half, one, o3);
  for (float v : o3) BOOST_TEST(v == 0.2f - 0.5f, boost::test_tools::tolerance(1e-6f));
  BOOST_CHECK_THROW(hw1::to_tensor_normalized(Image(1, 1, 2), half, one, o3), hw1::Error);
}

BOOST_AUTO_TEST_CASE(rotate_zero_is_identity_and_90_is_rot90) {
  const Image r = ramp(9, 9, 3);
  BOOST_TEST(same(hw1::rotate(r, 0), r));
  BOOST_TEST(same(hw1::rotate(r, 0, 0, hw1::Interp::Nearest), r));
  // square: the pixel grid maps onto itself, the whole image matches
  BOOST_TEST(same(hw1::rotate(r, 90), hw1::rot90(r, 1)));
  BOOST_TEST(same(hw1::rotate(r, -90), hw1::rot90(r, 3)));
  BOOST_TEST(same(hw1::rotate(r, 180), hw1::rot90(r, 2)));
  BOOST_TEST(same(hw1::rotate(r, 90, 0, hw1::Interp::Nearest), hw1::rot90(r, 1)));
  // non-square (6x8): the same size is kept; where the rotated source exists it equals rot90's pixels
  const Image n = ramp(6, 8, 1), q = hw1::rot90(n, 1), out = hw1::rotate(n, 90);
  int checked = 0;
  for (int y = 0; y < 6; ++y)
    for (int x = 0; x < 8; ++x) {
      // output (y,x) is 1 row / 1 column off centre of rot90's 8x6 grid: rows shift by -1, columns by +1
      const int qy = y + 1, qx = x - 1;
      if (qy < 0 || qy >= 8 || qx < 0 || qx >= 6) {
        BOOST_TEST(out.at(y, x) == 0);  // outside the rotated source: fill
        continue;
      }
      BOOST_TEST(out.at(y, x) == q.at(qy, qx));
      ++checked;
    }
  BOOST_TEST(checked == 6 * 6);
}

BOOST_AUTO_TEST_CASE(rotate_small_angle) {
  // weights sum to one: a constant image rotated with the same fill stays constant
  Image c(7, 9, 3);
  std::fill(c.pixels.begin(), c.pixels.end(), 77);
  BOOST_TEST(same(hw1::rotate(c, 13.0, 77), c));
  // with fill 0 the corners go dark and the centre stays
  const Image o = hw1::rotate(c, 30.0, 0);
  BOOST_TEST(o.at(0, 0, 0) == 0);
  BOOST_TEST(o.at(3, 4, 1) == 77);
  // a point at the right of the centre moves up under a counter-clockwise turn
  Image dot(21, 21, 1);
  dot.at(10, 18) = 255;
  const Image d = hw1::rotate(dot, 10.0, 0, hw1::Interp::Nearest);
  const double t = 10.0 * std::numbers::pi / 180;
  BOOST_TEST(d.at(int(std::lround(10 - 8 * std::sin(t))), int(std::lround(10 + 8 * std::cos(t)))) == 255);
  BOOST_TEST(values(d) == (std::set<int>{0, 255}));
}

BOOST_AUTO_TEST_CASE(mask_labels_survive_geometry) {
  const std::set<int> labels = {0, 2, 5}, with_fill = {0, 2, 5, 6};
  const Image m = random_labels(13, 17, {0, 2, 5}, 1);
  auto within = [](const Image& img, const std::set<int>& allowed) {
    for (int v : values(img))
      if (!allowed.count(v)) return false;
    return true;
  };
  BOOST_TEST(within(hw1::resize_nearest(m, 31, 40), labels));
  BOOST_TEST(within(hw1::resize_nearest(m, 5, 6), labels));
  BOOST_TEST(within(hw1::hflip(m), labels));
  BOOST_TEST(within(hw1::vflip(m), labels));
  for (int k = 1; k < 4; ++k) BOOST_TEST(within(hw1::rot90(m, k), labels));
  for (double deg : {-15.0, 10.0, 30.0, 45.0}) {
    const Image r = hw1::rotate(m, deg, 6, hw1::Interp::Nearest);
    BOOST_TEST(within(r, with_fill));
    BOOST_TEST(values(r).count(6) == 1u);  // corners come from outside
  }
  hw1::AugmentConfig cfg;
  cfg.out_h = 20, cfg.out_w = 22, cfg.crop_h = 24, cfg.crop_w = 16;
  cfg.hflip = cfg.vflip = cfg.rot90 = true;
  cfg.rotate_degrees = 15;
  cfg.brightness = cfg.contrast = cfg.saturation = 0.4f;
  for (std::uint64_t s = 0; s < 20; ++s) {
    std::mt19937_64 rng(s);
    Image img = ramp(13, 17, 3), mask = m;
    hw1::augment_pair(img, &mask, cfg, rng);
    BOOST_TEST(within(mask, with_fill));
    BOOST_TEST((img.height == mask.height && img.width == mask.width));
  }
}

BOOST_AUTO_TEST_CASE(augment_pair_keeps_image_and_mask_aligned) {
  // image = 40 * label: after crops, flips and quarter turns the image must still equal 40 * mask
  const Image m = random_labels(12, 10, {0, 1, 2, 3, 4, 5}, 2);
  Image img(12, 10, 3);
  for (int y = 0; y < 12; ++y)
    for (int x = 0; x < 10; ++x)
      for (int c = 0; c < 3; ++c) img.at(y, x, c) = std::uint8_t(40 * m.at(y, x));
  hw1::AugmentConfig cfg;
  cfg.crop_h = 8, cfg.crop_w = 7;
  cfg.hflip = cfg.vflip = cfg.rot90 = true;
  std::set<std::pair<int, int>> shapes;
  for (std::uint64_t s = 0; s < 30; ++s) {
    std::mt19937_64 rng(s);
    Image i = img, k = m;
    hw1::augment_pair(i, &k, cfg, rng);
    shapes.insert({i.height, i.width});
    bool ok = i.height == k.height && i.width == k.width;
    for (int y = 0; ok && y < i.height; ++y)
      for (int x = 0; x < i.width; ++x)
        for (int c = 0; c < 3; ++c) ok = ok && i.at(y, x, c) == 40 * k.at(y, x);
    BOOST_TEST(ok);
  }
  BOOST_TEST(shapes.size() == 2u);  // odd quarter turns swap the sides
}

BOOST_AUTO_TEST_CASE(augment_pair_is_seeded) {
  hw1::AugmentConfig cfg;
  cfg.crop_h = cfg.crop_w = 10;
  cfg.hflip = cfg.vflip = cfg.rot90 = true;
  cfg.rotate_degrees = 15;
  cfg.brightness = cfg.contrast = cfg.saturation = 0.3f;
  auto run = [&](std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    Image i = ramp(16, 16, 3), m = random_labels(16, 16, {0, 1}, 3);
    hw1::augment_pair(i, &m, cfg, rng);
    return std::pair{i.pixels, m.pixels};
  };
  BOOST_TEST((run(42) == run(42)));
  BOOST_TEST((run(42) != run(43)));
  // no enabled step: nothing changes and nothing is drawn
  std::mt19937_64 rng(5), ref(5);
  Image i = ramp(4, 4, 3);
  hw1::augment_pair(i, nullptr, hw1::AugmentConfig{}, rng);
  BOOST_TEST(same(i, ramp(4, 4, 3)));
  BOOST_TEST(rng() == ref());
  Image bad_mask(3, 4, 1);
  BOOST_CHECK_THROW(hw1::augment_pair(i, &bad_mask, cfg, rng), hw1::Error);
}

BOOST_AUTO_TEST_CASE(colour_adjustments) {
  Image p(1, 2, 3);
  p.pixels = {100, 200, 50, 10, 20, 30};
  BOOST_TEST((hw1::adjust_brightness(p, 1.5f).pixels == std::vector<std::uint8_t>{150, 255, 75, 15, 30, 45}));
  BOOST_TEST(same(hw1::adjust_brightness(p, 1.0f), p));
  // saturation 0: every channel becomes the pixel's grey level .299R + .587G + .114B
  const int g0 = int(std::lround(0.299 * 100 + 0.587 * 200 + 0.114 * 50)), g1 = int(std::lround(0.299 * 10 + 0.587 * 20 + 0.114 * 30));
  BOOST_TEST((hw1::adjust_saturation(p, 0.0f).pixels ==
              std::vector<std::uint8_t>(std::initializer_list<std::uint8_t>{std::uint8_t(g0), std::uint8_t(g0), std::uint8_t(g0),
                                                                             std::uint8_t(g1), std::uint8_t(g1), std::uint8_t(g1)})));
  // contrast 0: everything becomes the image's mean grey level
  const double mean = (0.299 * 100 + 0.587 * 200 + 0.114 * 50 + 0.299 * 10 + 0.587 * 20 + 0.114 * 30) / 2;
  for (auto v : hw1::adjust_contrast(p, 0.0f).pixels) BOOST_TEST(int(v) == int(std::lround(mean)));
  // contrast 2: 2v - mean, clamped
  const auto c2 = hw1::adjust_contrast(p, 2.0f).pixels;
  for (std::size_t k = 0; k < 6; ++k)
    BOOST_TEST(int(c2[k]) == int(std::lround(std::clamp(2.0 * p.pixels[k] - mean, 0.0, 255.0))));
  // jitter: brightness only, factor in [0.5, 1.5], the same factor for every pixel
  Image big(4, 4, 3);
  for (std::size_t k = 0; k < big.pixels.size(); ++k) big.pixels[k] = std::uint8_t(40 + k);
  std::set<int> ratios;
  for (std::uint64_t s = 0; s < 50; ++s) {
    std::mt19937_64 rng(s);
    Image j = big;
    hw1::color_jitter(j, 0.5f, 0, 0, rng);
    const double f = j.pixels.back() / double(big.pixels.back());
    BOOST_TEST((f > 0.49 && f < 1.51));
    for (std::size_t k = 0; k < j.pixels.size(); ++k) BOOST_TEST(std::abs(j.pixels[k] - f * big.pixels[k]) <= 1.01);
    ratios.insert(int(f * 10));
  }
  BOOST_TEST(ratios.size() >= 5u);
}

BOOST_AUTO_TEST_CASE(portable_draws) {
  std::mt19937_64 rng(9);
  std::vector<int> hits(7, 0);
  for (int k = 0; k < 7000; ++k) ++hits[hw1::rand_below(rng, 7)];
  for (int h : hits) BOOST_TEST((h > 850 && h < 1150));
  for (int k = 0; k < 1000; ++k) {
    const double u = hw1::rand_uniform(rng, -2, 3);
    BOOST_TEST((u >= -2 && u < 3));
  }
  BOOST_TEST(hw1::mix_seed(1, 2) != hw1::mix_seed(2, 1));
  BOOST_TEST(hw1::mix_seed(1, 2) == hw1::mix_seed(1, 2));
}

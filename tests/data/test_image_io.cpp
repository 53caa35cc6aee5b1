#define BOOST_TEST_MODULE image_io
#include <boost/test/unit_test.hpp>

#include "common/testing.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <zlib.h>

#include "hw1/data/image_io.hpp"

namespace fs = std::filesystem;
using hw1::Image;

namespace {

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("hw1-test-image-io-" + std::to_string(::getpid()));
  TempDir() { fs::remove_all(path); fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

Image pattern(int h, int w, int c) {
  Image img(h, w, c);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < c; ++k) img.at(y, x, k) = std::uint8_t((y * 37 + x * 11 + k * 85 + x * y) % 256);
  return img;
}

// Smooth content, which JPEG reproduces closely.
Image smooth(int h, int w, int c) {
  Image img(h, w, c);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < c; ++k) img.at(y, x, k) = std::uint8_t(40 + 150 * x / w + 50 * y / h + 30 * k);
  return img;
}

void write_bytes(const std::string& path, const std::vector<std::uint8_t>& b) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

std::vector<std::uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

using hw1::test::error_of;
using hw1::test::contains;

double mean_abs_diff(const Image& a, const Image& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.pixels.size(); ++i) s += std::abs(int(a.pixels[i]) - int(b.pixels[i]));
  return s / double(a.pixels.size());
}

// Fixtures written by a minimal Python PNG writer (zlib + struct), checked against PIL's decoding.
const std::vector<std::uint8_t> kPalettePng = {137,80,78,71,13,10,26,10,0,0,0,13,73,72,68,82,0,0,0,3,0,0,0,2,8,3,0,0,0,170,170,150,40,0,0,0,9,80,76,84,69,10,20,30,200,100,50,0,255,0,129,82,59,16,0,0,0,2,116,82,78,83,255,0,229,183,48,74,0,0,0,16,73,68,65,84,120,218,99,96,96,100,98,96,98,100,0,0,0,32,0,7,245,42,223,47,0,0,0,0,73,69,78,68,174,66,96,130};
const std::vector<std::uint8_t> kPalette2BitPng = {137,80,78,71,13,10,26,10,0,0,0,13,73,72,68,82,0,0,0,5,0,0,0,1,2,3,0,0,0,107,144,140,96,0,0,0,12,80,76,84,69,1,2,3,4,5,6,7,8,9,250,251,252,192,166,87,221,0,0,0,11,73,68,65,84,120,218,99,144,118,0,0,0,121,0,92,156,208,48,245,0,0,0,0,73,69,78,68,174,66,96,130};
const std::vector<std::uint8_t> kGray16Png = {137,80,78,71,13,10,26,10,0,0,0,13,73,72,68,82,0,0,0,2,0,0,0,2,16,0,0,0,0,7,77,142,187,0,0,0,18,73,68,65,84,120,218,99,16,50,249,207,200,208,240,191,158,1,0,15,70,3,69,216,80,164,169,0,0,0,0,73,69,78,68,174,66,96,130};
const std::vector<std::uint8_t> kRgb16Png = {137,80,78,71,13,10,26,10,0,0,0,13,73,72,68,82,0,0,0,2,0,0,0,1,16,2,0,0,0,43,208,52,158,0,0,0,21,73,68,65,84,120,218,99,96,252,223,192,240,175,158,65,64,80,201,216,5,0,29,27,3,184,249,216,14,30,0,0,0,0,73,69,78,68,174,66,96,130};
const std::vector<std::uint8_t> kRgbaPng = {137,80,78,71,13,10,26,10,0,0,0,13,73,72,68,82,0,0,0,2,0,0,0,1,8,6,0,0,0,244,34,127,138,0,0,0,17,73,68,65,84,120,218,99,96,100,98,102,248,245,251,79,3,0,9,130,3,120,93,189,97,38,0,0,0,0,73,69,78,68,174,66,96,130};
const std::vector<std::uint8_t> kGrayAlphaPng = {137,80,78,71,13,10,26,10,0,0,0,13,73,72,68,82,0,0,0,2,0,0,0,1,8,4,0,0,0,94,43,183,1,0,0,0,13,73,68,65,84,120,218,99,240,101,56,254,31,0,3,198,2,20,228,151,206,52,0,0,0,0,73,69,78,68,174,66,96,130};
const std::vector<std::uint8_t> kOneBitPng = {137,80,78,71,13,10,26,10,0,0,0,13,73,72,68,82,0,0,0,9,0,0,0,1,1,0,0,0,0,36,185,185,208,0,0,0,11,73,68,65,84,120,218,99,216,212,0,0,1,231,1,51,61,187,148,253,0,0,0,0,73,69,78,68,174,66,96,130};

std::vector<int> px(const Image& img) { return {img.pixels.begin(), img.pixels.end()}; }

}  // namespace

BOOST_AUTO_TEST_CASE(png_round_trip_rgb_and_gray_odd_sizes) {
  TempDir tmp;
  for (auto [h, w] : {std::pair{5, 7}, std::pair{1, 1}, std::pair{13, 3}}) {
    const Image rgb = pattern(h, w, 3), gray = pattern(h, w, 1);
    hw1::write_png(tmp / "rgb.png", rgb);
    hw1::write_png(tmp / "gray.png", gray);
    const Image r = hw1::read_png(tmp / "rgb.png");
    BOOST_TEST((r.height == h && r.width == w && r.channels == 3));
    BOOST_TEST(r.pixels == rgb.pixels);
    const Image g = hw1::read_png(tmp / "gray.png", 0);  // as stored
    BOOST_TEST(g.channels == 1);
    BOOST_TEST(g.pixels == gray.pixels);
    const Image g3 = hw1::read_png(tmp / "gray.png");    // default: RGB, gray replicated
    BOOST_REQUIRE(g3.channels == 3);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        BOOST_TEST((g3.at(y, x, 0) == gray.at(y, x) && g3.at(y, x, 1) == gray.at(y, x) && g3.at(y, x, 2) == gray.at(y, x)));
  }
  // Atomic write leaves no temporary next to the file.
  for (const auto& e : fs::directory_iterator(tmp.path)) BOOST_TEST(!contains(e.path().string(), ".tmp"));
}

BOOST_AUTO_TEST_CASE(png_variants_convert_like_pil) {
  // palette + tRNS: alpha dropped
  BOOST_TEST(px(hw1::decode_png(kPalettePng, "p")) ==
             (std::vector<int>{10, 20, 30, 200, 100, 50, 0, 255, 0, 0, 255, 0, 200, 100, 50, 10, 20, 30}));
  BOOST_TEST(px(hw1::decode_png(kPalette2BitPng, "p2")) ==
             (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9, 250, 251, 252, 4, 5, 6}));
  // 16 bit keeps the high byte
  const Image g16 = hw1::decode_png(kGray16Png, "g16", 0);
  BOOST_TEST(g16.channels == 1);
  BOOST_TEST(px(g16) == (std::vector<int>{0x12, 0xFF, 0x80, 0x7F}));
  BOOST_TEST(px(hw1::decode_png(kRgb16Png, "rgb16")) == (std::vector<int>{1, 128, 254, 0, 17, 51}));
  // alpha dropped, colour kept
  BOOST_TEST(px(hw1::decode_png(kRgbaPng, "rgba")) == (std::vector<int>{1, 2, 3, 250, 251, 252}));
  const Image la = hw1::decode_png(kGrayAlphaPng, "la", 0);
  BOOST_TEST(la.channels == 1);
  BOOST_TEST(px(la) == (std::vector<int>{77, 199}));
  BOOST_TEST(px(hw1::decode_png(kGrayAlphaPng, "la")) == (std::vector<int>{77, 77, 77, 199, 199, 199}));
  BOOST_TEST(px(hw1::decode_png(kOneBitPng, "1bit", 1)) == (std::vector<int>{255, 0, 255, 255, 0, 0, 255, 0, 255}));
  // RGB -> gray with PIL's "L" weights: red 76, green 150, blue 29, white 255
  Image rgb(1, 4, 3);
  rgb.pixels = {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255};
  BOOST_TEST(px(hw1::decode_png(hw1::encode_png(rgb), "rgb", 1)) == (std::vector<int>{76, 150, 29, 255}));
}

BOOST_AUTO_TEST_CASE(jpeg_round_trip_rgb_and_gray) {
  TempDir tmp;
  for (auto [h, w] : {std::pair{11, 17}, std::pair{16, 16}, std::pair{3, 5}}) {
    const Image rgb = smooth(h, w, 3), gray = smooth(h, w, 1);
    hw1::write_jpeg(tmp / "rgb.jpg", rgb, 95);
    hw1::write_jpeg(tmp / "gray.jpeg", gray);
    const Image r = hw1::read_jpeg(tmp / "rgb.jpg");
    BOOST_TEST((r.height == h && r.width == w && r.channels == 3));
    BOOST_TEST(mean_abs_diff(r, rgb) < 8.0);  // 4:2:0 chroma on tiny images; PIL gives the same
    const Image g = hw1::read_jpeg(tmp / "gray.jpeg", 0);
    BOOST_TEST(g.channels == 1);
    BOOST_TEST(mean_abs_diff(g, gray) < 1.0);
  }
  // Lower quality: smaller file, still close.
  const Image big = smooth(32, 48, 3);
  BOOST_TEST(hw1::encode_jpeg(big, 30).size() < hw1::encode_jpeg(big, 95).size());
  BOOST_TEST(mean_abs_diff(hw1::decode_jpeg(hw1::encode_jpeg(big, 30), "q30"), big) < 10.0);
  // Deterministic bytes.
  BOOST_TEST(hw1::encode_jpeg(big, 90) == hw1::encode_jpeg(big, 90));
}

BOOST_AUTO_TEST_CASE(read_image_by_extension_then_magic) {
  TempDir tmp;
  const Image rgb = pattern(4, 6, 3);
  write_bytes(tmp / "upper.PNG", hw1::encode_png(rgb));
  write_bytes(tmp / "upper.JPG", hw1::encode_jpeg(smooth(8, 8, 3)));
  write_bytes(tmp / "png_bytes.dat", hw1::encode_png(rgb));
  write_bytes(tmp / "jpeg_bytes", hw1::encode_jpeg(smooth(8, 8, 3)));
  BOOST_TEST(hw1::read_image(tmp / "upper.PNG").pixels == rgb.pixels);
  BOOST_TEST(hw1::read_image(tmp / "png_bytes.dat").pixels == rgb.pixels);
  BOOST_TEST(hw1::read_image(tmp / "upper.JPG").width == 8);
  BOOST_TEST(hw1::read_image(tmp / "jpeg_bytes", 1).channels == 1);
  // a JPEG named .png is read by extension and rejected
  write_bytes(tmp / "liar.png", hw1::encode_jpeg(smooth(8, 8, 3)));
  BOOST_TEST(contains(error_of([&] { hw1::read_image(tmp / "liar.png"); }), "not a PNG file"));
}

BOOST_AUTO_TEST_CASE(errors_name_the_file_and_the_reason_and_print_nothing) {
  TempDir tmp;
  const auto png = hw1::encode_png(pattern(40, 40, 3));
  const auto jpg = hw1::encode_jpeg(pattern(40, 40, 3));
  write_bytes(tmp / "cut.png", {png.begin(), png.begin() + long(png.size() / 2)});
  write_bytes(tmp / "cut.jpg", {jpg.begin(), jpg.begin() + long(jpg.size() / 2)});
  write_bytes(tmp / "header_only.jpg", {jpg.begin(), jpg.begin() + 40});
  auto bad_crc = png;
  bad_crc[png.size() - 20] ^= 0x5A;  // inside the last IDAT chunk
  write_bytes(tmp / "crc.png", bad_crc);
  std::ofstream(tmp / "text.png") << "hello, not an image\n";
  std::ofstream(tmp / "text.jpg") << "hello, not an image\n";
  std::ofstream(tmp / "text.txt") << "hello, not an image\n";
  std::ofstream(tmp / "empty.png");

  // Everything libpng/libjpeg might print goes to stderr: capture it.
  const std::string log = tmp / "stderr.txt";
  std::fflush(stderr);
  const int saved = ::dup(2);
  std::FILE* cap = std::fopen(log.c_str(), "w");
  ::dup2(::fileno(cap), 2);

  const auto cut_png = error_of([&] { hw1::read_png(tmp / "cut.png"); });
  const auto cut_jpg = error_of([&] { hw1::read_jpeg(tmp / "cut.jpg"); });
  const auto head_jpg = error_of([&] { hw1::read_image(tmp / "header_only.jpg"); });
  const auto crc_png = error_of([&] { hw1::read_png(tmp / "crc.png"); });
  const auto text_png = error_of([&] { hw1::read_png(tmp / "text.png"); });
  const auto text_jpg = error_of([&] { hw1::read_jpeg(tmp / "text.jpg"); });
  const auto text_any = error_of([&] { hw1::read_image(tmp / "text.txt"); });
  const auto empty_png = error_of([&] { hw1::read_image(tmp / "empty.png"); });
  const auto missing = error_of([&] { hw1::read_image(tmp / "missing.png"); });
  const auto dir = error_of([&] { hw1::read_png(tmp.path.string()); });

  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  std::fclose(cap);

  BOOST_TEST(cut_png == tmp / "cut.png" + ": truncated PNG data");
  BOOST_TEST(cut_jpg == tmp / "cut.jpg" + ": truncated JPEG data");
  BOOST_TEST(head_jpg == tmp / "header_only.jpg" + ": truncated JPEG data");
  BOOST_TEST(contains(crc_png, tmp / "crc.png" + ": invalid PNG data ("));
  BOOST_TEST(contains(text_png, tmp / "text.png" + ": not a PNG file"));
  BOOST_TEST(contains(text_jpg, tmp / "text.jpg" + ": not a JPEG file"));
  BOOST_TEST(contains(text_any, tmp / "text.txt" + ": not a PNG or JPEG file"));
  BOOST_TEST(contains(empty_png, "empty file"));
  BOOST_TEST(missing == tmp / "missing.png" + ": cannot open: No such file or directory");
  BOOST_TEST(contains(dir, "Is a directory"));
  BOOST_TEST(read_bytes(log).empty(), "the codecs printed: " << std::string(read_bytes(log).begin(), read_bytes(log).end()));
}

BOOST_AUTO_TEST_CASE(write_errors) {
  TempDir tmp;
  BOOST_TEST(contains(error_of([&] { hw1::write_png(tmp / "no/such/dir/a.png", pattern(2, 2, 3)); }),
                      "a.png: cannot create: No such file or directory"));
  Image two(2, 2, 2);
  BOOST_TEST(contains(error_of([&] { hw1::write_png(tmp / "two.png", two); }), "1- or 3-channel"));
  Image broken(2, 2, 3);
  broken.pixels.pop_back();
  BOOST_TEST(contains(error_of([&] { hw1::write_jpeg(tmp / "b.jpg", broken); }), "expected height*width*channels"));
  BOOST_TEST(contains(error_of([&] { hw1::write_jpeg(tmp / "q.jpg", pattern(2, 2, 3), 0); }), "quality"));
  BOOST_TEST(contains(error_of([&] { hw1::read_png(tmp / "x.png", 2); }), "want_channels"));
  BOOST_TEST(!fs::exists(tmp / "two.png"));
  // Overwriting an existing file replaces it whole.
  hw1::write_png(tmp / "over.png", pattern(9, 9, 3));
  hw1::write_png(tmp / "over.png", pattern(2, 3, 1));
  BOOST_TEST(hw1::read_png(tmp / "over.png", 0).pixels == pattern(2, 3, 1).pixels);
}

namespace {

// A PNG of nothing but signature, IHDR (h x w, 8-bit RGB) and IEND: a header that declares a size.
std::vector<std::uint8_t> png_header_only(std::uint32_t h, std::uint32_t w) {
  std::vector<std::uint8_t> b{137, 80, 78, 71, 13, 10, 26, 10};
  auto chunk = [&](const char* type, const std::vector<std::uint8_t>& data) {
    const std::uint32_t n = std::uint32_t(data.size());
    for (int i = 3; i >= 0; --i) b.push_back(std::uint8_t(n >> (8 * i)));
    std::vector<std::uint8_t> body(type, type + 4);
    body.insert(body.end(), data.begin(), data.end());
    b.insert(b.end(), body.begin(), body.end());
    const std::uint32_t crc = std::uint32_t(::crc32(0, body.data(), uInt(body.size())));
    for (int i = 3; i >= 0; --i) b.push_back(std::uint8_t(crc >> (8 * i)));
  };
  std::vector<std::uint8_t> ihdr;
  for (std::uint32_t v : {w, h})
    for (int i = 3; i >= 0; --i) ihdr.push_back(std::uint8_t(v >> (8 * i)));
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});
  chunk("IHDR", ihdr);
  chunk("IDAT", {0x78, 0x9c});  // the start of a zlib stream, then nothing
  chunk("IEND", {});
  return b;
}

// A real 8x8 gray JPEG whose SOF0 is turned into a progressive SOF2 declaring h x w, and whose one scan becomes
// a valid DC-first scan (Se = 0): a few hundred bytes that a progressive decoder sizes its coefficient buffers by
// (65500x65500 gray: 8 GiB) in jpeg_start_decompress.
std::vector<std::uint8_t> progressive_jpeg_declaring(std::uint16_t h, std::uint16_t w) {
  std::vector<std::uint8_t> b = hw1::encode_jpeg(smooth(8, 8, 1));
  for (std::size_t i = 0; i + 9 < b.size(); ++i) {
    if (b[i] == 0xFF && b[i + 1] == 0xC0) {
      b[i + 1] = 0xC2;
      b[i + 5] = std::uint8_t(h >> 8), b[i + 6] = std::uint8_t(h);
      b[i + 7] = std::uint8_t(w >> 8), b[i + 8] = std::uint8_t(w);
    }
    if (b[i] == 0xFF && b[i + 1] == 0xDA) {
      const std::size_t ns = b[i + 4], p = i + 5 + 2 * ns;  // Ss, Se, Ah/Al follow the component list
      b[p + 1] = 0;
      break;
    }
  }
  return b;
}

// The hw1::Error message of f() run in a child process whose address space is capped at `limit_mb`: a decoder
// that tried to allocate gigabytes would fail there (or be killed), never take the machine's memory.
template <class F>
std::string error_with_memory_cap(F f, std::size_t limit_mb) {
  int fds[2];
  BOOST_REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    rlimit lim{limit_mb << 20, limit_mb << 20};
    ::setrlimit(RLIMIT_AS, &lim);
    std::string msg;
    try {
      f();
      msg = "(no error)";
    } catch (const std::exception& e) {
      msg = e.what();
    }
    if (::write(fds[1], msg.data(), msg.size()) < 0) ::_exit(3);
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string out;
  char buf[512];
  ::ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) out.append(buf, std::size_t(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) out += " (child ended with status " + std::to_string(status) + ")";
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(jpeg_header_size_is_checked_before_any_allocation) {
  TempDir tmp;
  const auto huge = progressive_jpeg_declaring(65500, 65500);
  BOOST_TEST(huge.size() < 1000u);
  write_bytes(tmp / "huge.jpg", huge);
  const std::string e = error_with_memory_cap([&] { hw1::read_image(tmp / "huge.jpg"); }, 1024);
  BOOST_TEST(e == tmp / "huge.jpg" + ": unsupported image size 65500x65500 (at most 65535 on a side and 268435456 pixels)");
  // Within the size limits but past libjpeg's memory cap (16384x16384 progressive, 3 components: 1.5 GiB of
  // coefficients): libjpeg's own error, still one line and no gigabytes.
  std::vector<std::uint8_t> rgb = hw1::encode_jpeg(smooth(8, 8, 3));
  for (std::size_t i = 0; i + 9 < rgb.size(); ++i)
    if (rgb[i] == 0xFF && rgb[i + 1] == 0xC0) {
      rgb[i + 1] = 0xC2;
      rgb[i + 5] = 0x40, rgb[i + 6] = 0, rgb[i + 7] = 0x40, rgb[i + 8] = 0;
      for (int c = 0; c < 3; ++c) rgb[i + 11 + 3 * std::size_t(c)] = 0x11;  // 4:4:4
      break;
    }
  write_bytes(tmp / "big.jpg", rgb);
  const std::string e2 = error_with_memory_cap([&] { hw1::read_image(tmp / "big.jpg"); }, 1024);
  BOOST_TEST(contains(e2, tmp / "big.jpg" + ": invalid JPEG data ("), e2);
  BOOST_TEST(!contains(e2, "child ended"), e2);
  // A baseline file declaring 16000x16000 in a few hundred bytes: refused before the 732 MiB image is allocated
  // (baseline Huffman coding needs 2 bits per 8x8 block at least).
  std::vector<std::uint8_t> lie = hw1::encode_jpeg(smooth(8, 8, 3));
  for (std::size_t i = 0; i + 9 < lie.size(); ++i)
    if (lie[i] == 0xFF && lie[i + 1] == 0xC0) {
      lie[i + 5] = 0x3E, lie[i + 6] = 0x80, lie[i + 7] = 0x3E, lie[i + 8] = 0x80;  // 16000
      break;
    }
  const std::string e4 = error_with_memory_cap([&] { hw1::decode_jpeg(lie, "lie.jpg"); }, 512);
  BOOST_TEST(contains(e4, "lie.jpg: truncated JPEG data ("), e4);
  BOOST_TEST(contains(e4, "bytes cannot hold the 16000x16000 image its header declares"), e4);
  // A progressive file of a sane size that is cut off: truncated, not thousands of rows of gray.
  auto cut = progressive_jpeg_declaring(4000, 4000);
  cut.resize(cut.size() - 8);
  const std::string e3 = error_with_memory_cap([&] { hw1::decode_jpeg(cut, "cut.jpg"); }, 1024);
  BOOST_TEST(e3 == "cut.jpg: truncated JPEG data");
}

BOOST_AUTO_TEST_CASE(png_header_size_is_checked_before_any_allocation) {
  const std::string e = error_with_memory_cap([&] { hw1::decode_png(png_header_only(65500, 65500), "huge.png"); }, 1024);
  BOOST_TEST(e == "huge.png: unsupported image size 65500x65500 (at most 65535 on a side and 268435456 pixels)");
  // One side past the limit (1 x 300000 = few pixels, but libpng's row buffers follow the width).
  const std::string e2 = error_with_memory_cap([&] { hw1::decode_png(png_header_only(1, 300000), "wide.png"); }, 1024);
  BOOST_TEST(contains(e2, "wide.png: unsupported image size ("), e2);
  BOOST_TEST(contains(e2, "at most 65535 on a side"), e2);
  // Within the limits, but far more pixels than the file's bytes can inflate to: refused before the 768 MiB
  // image is allocated (the 512 MiB cap would make that allocation fail).
  const std::string e4 = error_with_memory_cap([&] { hw1::decode_png(png_header_only(16384, 16384), "lie.png"); }, 512);
  BOOST_TEST(contains(e4, "lie.png: truncated PNG data ("), e4);
  BOOST_TEST(contains(e4, "bytes cannot hold the 16384x16384 image its header declares"), e4);
  // Within the limits, no pixel data: truncated.
  const std::string e3 = error_with_memory_cap([&] { hw1::decode_png(png_header_only(100, 100), "empty.png"); }, 1024);
  BOOST_TEST(contains(e3, "empty.png: "), e3);
}

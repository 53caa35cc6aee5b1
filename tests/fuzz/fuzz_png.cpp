// decode_png (hw1::read_png / read_image: every PNG of a data set, a mask, a --image). Only hw1's wrapper is
// instrumented (Debian's libpng is not), so coverage guides the fuzzer through hw1's code and libpng's error paths.
#include <png.h>
#include <zlib.h>

#include "fuzz_common.hpp"
#include "hw1/data/image_io.hpp"

namespace {
// Layouts encode_png does not write (palette + tRNS, 16 bit, alpha, interlaced), through libpng directly.
std::vector<std::uint8_t> png_with(int w, int h, int depth, int type, bool interlace, bool trns) {
  std::vector<std::uint8_t> out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_set_write_fn(png, &out, [](png_structp p, png_bytep d, png_size_t n) {
    auto* o = static_cast<std::vector<std::uint8_t>*>(png_get_io_ptr(p));
    o->insert(o->end(), d, d + n);
  }, nullptr);
  png_set_IHDR(png, info, png_uint_32(w), png_uint_32(h), depth, type,
               interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (type == PNG_COLOR_TYPE_PALETTE) {
    png_color pal[4] = {{10, 20, 30}, {200, 100, 50}, {0, 255, 0}, {1, 2, 3}};
    png_set_PLTE(png, info, pal, 4);
    if (trns) {
      png_byte alpha[2] = {255, 0};
      png_set_tRNS(png, info, alpha, 2, nullptr);
    }
  }
  png_write_info(png, info);
  const std::size_t stride = png_get_rowbytes(png, info);
  std::vector<std::uint8_t> rows(stride * std::size_t(h));
  for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = std::uint8_t(i * 37 % 251);
  if (type == PNG_COLOR_TYPE_PALETTE)
    for (auto& b : rows) b &= depth == 8 ? 0x03 : (depth == 4 ? 0x33 : (depth == 2 ? 0x55 : 0xff));
  std::vector<png_bytep> ptrs(static_cast<std::size_t>(h));
  for (int y = 0; y < h; ++y) ptrs[std::size_t(y)] = rows.data() + std::size_t(y) * stride;
  png_write_image(png, ptrs.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}
}  // namespace

void hw1_fuzz_seeds(const std::filesystem::path& dir) {
  int i = 0;
  for (auto [h, w, c] : {std::tuple{1, 1, 3}, std::tuple{5, 7, 3}, std::tuple{16, 9, 1}, std::tuple{3, 33, 1}}) {
    hw1::Image img(h, w, c);
    for (std::size_t k = 0; k < img.pixels.size(); ++k) img.pixels[k] = std::uint8_t(k * 29 % 256);
    hw1::fuzz::write_seed(dir, "enc" + std::to_string(i++) + ".png", hw1::encode_png(img));
  }
  hw1::fuzz::write_seed(dir, "palette_trns.png", png_with(5, 3, 8, PNG_COLOR_TYPE_PALETTE, false, true));
  hw1::fuzz::write_seed(dir, "palette2.png", png_with(9, 2, 2, PNG_COLOR_TYPE_PALETTE, false, false));
  hw1::fuzz::write_seed(dir, "gray16.png", png_with(3, 3, 16, PNG_COLOR_TYPE_GRAY, false, false));
  hw1::fuzz::write_seed(dir, "gray1.png", png_with(9, 2, 1, PNG_COLOR_TYPE_GRAY, false, false));
  hw1::fuzz::write_seed(dir, "rgba_adam7.png", png_with(9, 9, 8, PNG_COLOR_TYPE_RGB_ALPHA, true, false));
  hw1::fuzz::write_seed(dir, "ga16_adam7.png", png_with(4, 5, 16, PNG_COLOR_TYPE_GRAY_ALPHA, true, false));
}

// Every chunk's CRC is recomputed before decoding: a mutated byte would otherwise only ever reach libpng's CRC
// check (libpng's own fuzzer turns the check off instead; decode_png keeps it on, so the input is fixed up).
std::vector<std::uint8_t> with_valid_crcs(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint8_t> b(data, data + size);
  for (std::size_t pos = 8; pos + 12 <= b.size();) {
    const std::size_t len = std::size_t(b[pos]) << 24 | std::size_t(b[pos + 1]) << 16 | std::size_t(b[pos + 2]) << 8 |
                            std::size_t(b[pos + 3]);
    if (len > b.size() - pos - 12) break;
    const std::uint32_t crc = std::uint32_t(::crc32(0, b.data() + pos + 4, uInt(len + 4)));
    for (int i = 0; i < 4; ++i) b[pos + 8 + len + std::size_t(i)] = std::uint8_t(crc >> (24 - 8 * i));
    pos += len + 12;
  }
  return b;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return hw1::fuzz::run([&] {
    const hw1::Image img = hw1::decode_png(with_valid_crcs(data, size), "fuzz.png", 0);
    if (img.pixels.size() != std::size_t(img.height) * img.width * img.channels) __builtin_trap();
  });
}

// decode_jpeg (hw1::read_jpeg / read_image: every JPEG of a data set, a --image).
#include <cstdio>  // jpeglib.h needs FILE and size_t declared first
#include <jpeglib.h>

#include "fuzz_common.hpp"
#include "hw1/data/image_io.hpp"

namespace {
// Baseline files come from encode_jpeg; progressive ones (and 4:4:4, restart markers) from libjpeg directly.
std::vector<std::uint8_t> jpeg_with(const hw1::Image& img, bool progressive, bool h1v1, int restart) {
  jpeg_compress_struct ci;
  jpeg_error_mgr err;
  ci.err = jpeg_std_error(&err);
  jpeg_create_compress(&ci);
  unsigned char* buf = nullptr;
  unsigned long n = 0;
  jpeg_mem_dest(&ci, &buf, &n);
  ci.image_width = JDIMENSION(img.width);
  ci.image_height = JDIMENSION(img.height);
  ci.input_components = img.channels;
  ci.in_color_space = img.channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&ci);
  jpeg_set_quality(&ci, 80, TRUE);
  if (progressive) jpeg_simple_progression(&ci);
  if (h1v1)
    for (int c = 0; c < ci.num_components; ++c) ci.comp_info[c].h_samp_factor = ci.comp_info[c].v_samp_factor = 1;
  ci.restart_interval = unsigned(restart);
  jpeg_start_compress(&ci, TRUE);
  while (ci.next_scanline < ci.image_height) {
    JSAMPROW row = const_cast<JSAMPLE*>(img.pixels.data() + std::size_t(ci.next_scanline) * img.width * img.channels);
    jpeg_write_scanlines(&ci, &row, 1);
  }
  jpeg_finish_compress(&ci);
  std::vector<std::uint8_t> out(buf, buf + n);
  jpeg_destroy_compress(&ci);
  std::free(buf);
  return out;
}
}  // namespace

void hw1_fuzz_seeds(const std::filesystem::path& dir) {
  int i = 0;
  for (auto [h, w, c] : {std::tuple{8, 8, 3}, std::tuple{5, 17, 3}, std::tuple{16, 16, 1}, std::tuple{1, 1, 1}}) {
    hw1::Image img(h, w, c);
    for (std::size_t k = 0; k < img.pixels.size(); ++k) img.pixels[k] = std::uint8_t(40 + k * 7 % 150);
    const std::string s = std::to_string(i++);
    hw1::fuzz::write_seed(dir, "baseline" + s + ".jpg", hw1::encode_jpeg(img, 90));
    hw1::fuzz::write_seed(dir, "progressive" + s + ".jpg", jpeg_with(img, true, false, 0));
    if (c == 3) hw1::fuzz::write_seed(dir, "h1v1_restart" + s + ".jpg", jpeg_with(img, false, true, 1));
  }
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return hw1::fuzz::run([&] {
    const hw1::Image img = hw1::decode_jpeg({data, data + size}, "fuzz.jpg", 0);
    if (img.pixels.size() != std::size_t(img.height) * img.width * img.channels) __builtin_trap();
  });
}

// PNG and JPEG files <-> hw1::Image, through libpng and libjpeg(-turbo).
// Both libraries report errors by longjmp. Every libpng/libjpeg call runs inside a small function that owns the
// setjmp and holds only trivially destructible locals, so a longjmp never skips a C++ destructor; the library
// structs are released by RAII guards in the calling frame, and the error becomes an hw1::Error there. The
// libraries never print: warnings are swallowed (a premature JPEG end is turned into an error instead).
// Decoding follows PIL/imageio: no gamma or colour-profile correction, 16-bit samples keep their high byte,
// palettes are expanded, alpha (and tRNS) is dropped.
#pragma once
#include <cstdio>  // jpeglib.h needs FILE and size_t declared first
#include <png.h>
#include <jpeglib.h>
#include <jerror.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <csetjmp>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>
#include <unistd.h>

#include "hw1/core/atomic_file.hpp"
#include "hw1/core/error.hpp"
#include "hw1/data/image.hpp"

namespace hw1 {

namespace detail {

inline std::string lower_ext(const std::string& path) {
  std::string e = std::filesystem::path(path).extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return e;
}

inline std::vector<std::uint8_t> read_file_bytes(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error(path + ": cannot open: Is a directory");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw Error(path + ": cannot open: " + std::strerror(errno));
  std::vector<std::uint8_t> bytes;
  std::uint8_t buf[1 << 16];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.insert(bytes.end(), buf, buf + n);
  const bool failed = std::ferror(f);
  const int err = errno;
  std::fclose(f);
  if (failed) throw Error(path + ": cannot read: " + std::strerror(err));
  return bytes;
}

// Readers never see a half-written file (hw1::AtomicFile: a temporary next to the target, fsync, rename, fsync of
// the directory); the temporary's name is unique per process and call, so concurrent writers never share it.
inline void write_file_atomic(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  static std::atomic<unsigned> counter{0};
  AtomicFile f(path, path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  f.write(bytes.data(), bytes.size());
  f.commit();
}

inline void check_want_channels(int want, const std::string& name) {
  if (want != 0 && want != 1 && want != 3)
    throw Error(name + ": want_channels must be 0 (as stored), 1 (gray) or 3 (RGB), got " + std::to_string(want));
}

// 1 <-> 3 channels; RGB -> gray with PIL's "L" weights (ITU-R 601-2, fixed point) so results match PIL.
inline Image convert_channels(Image img, int want) {
  if (want == 0 || want == img.channels) return img;
  Image out(img.height, img.width, want);
  const std::size_t n = std::size_t(img.height) * img.width;
  const std::uint8_t* s = img.pixels.data();
  std::uint8_t* d = out.pixels.data();
  if (want == 3)
    for (std::size_t i = 0; i < n; ++i) d[3 * i] = d[3 * i + 1] = d[3 * i + 2] = s[i];
  else
    for (std::size_t i = 0; i < n; ++i)
      d[i] = std::uint8_t((s[3 * i] * 19595u + s[3 * i + 1] * 38470u + s[3 * i + 2] * 7471u + 0x8000u) >> 16);
  return out;
}

inline void check_writable(const Image& img, const std::string& name) {
  if (img.channels != 1 && img.channels != 3)
    throw Error(name + ": can only write 1- or 3-channel images, got " + std::to_string(img.channels) + " channels");
  if (img.height <= 0 || img.width <= 0)
    throw Error(name + ": cannot write an empty image (" + std::to_string(img.height) + "x" +
                std::to_string(img.width) + ")");
  if (img.pixels.size() != std::size_t(img.height) * img.width * img.channels)
    throw Error(name + ": image holds " + std::to_string(img.pixels.size()) + " bytes, expected height*width*channels = " +
                std::to_string(std::size_t(img.height) * img.width * img.channels));
}

// The limits every decoder checks on the header's declared size, before it allocates anything for the pixels
// (a few hundred bytes may declare 65500x65500): at most 2^28 pixels (768 MiB as RGB) and 65535 on a side.
inline constexpr std::size_t kMaxImagePixels = std::size_t(1) << 28, kMaxImageSide = 65535;
// libjpeg's own working memory (coefficient buffers of progressive files, scanline buffers) is capped too.
inline constexpr long kMaxJpegWorkMemory = 512L << 20;

inline void check_size(std::size_t h, std::size_t w, const std::string& name) {
  if (h == 0 || w == 0 || h > kMaxImageSide || w > kMaxImageSide || h * w > kMaxImagePixels)
    throw Error(name + ": unsupported image size " + std::to_string(h) + "x" + std::to_string(w) + " (at most " +
                std::to_string(kMaxImageSide) + " on a side and " + std::to_string(kMaxImagePixels) + " pixels)");
}

// ---- libpng ----
struct PngIo {
  const std::uint8_t* in = nullptr;
  std::size_t size = 0, pos = 0;
  std::vector<std::uint8_t>* out = nullptr;
  bool truncated = false, oom = false;
  char msg[256] = {};
  char warning[256] = {};  // the last warning (libpng warns why before it fails "Invalid IHDR data")
};

inline void png_on_error(png_structp png, png_const_charp msg) {
  auto* io = static_cast<PngIo*>(png_get_error_ptr(png));
  std::snprintf(io->msg, sizeof io->msg, "%s", msg);
  png_longjmp(png, 1);
}
inline void png_on_warning(png_structp png, png_const_charp msg) {
  auto* io = static_cast<PngIo*>(png_get_error_ptr(png));
  std::snprintf(io->warning, sizeof io->warning, "%s", msg);
}

inline void png_read_mem(png_structp png, png_bytep dst, png_size_t n) {
  auto* io = static_cast<PngIo*>(png_get_io_ptr(png));
  if (io->size - io->pos < n) {
    io->truncated = true;
    png_error(png, "truncated PNG data");
  }
  std::memcpy(dst, io->in + io->pos, n);
  io->pos += n;
}

inline void png_write_mem(png_structp png, png_bytep src, png_size_t n) {
  auto* io = static_cast<PngIo*>(png_get_io_ptr(png));
  try {
    io->out->insert(io->out->end(), src, src + n);
  } catch (...) {
    io->oom = true;
  }
  if (io->oom) png_error(png, "out of memory");  // outside the catch: longjmp must not leave a handler
}
inline void png_flush_mem(png_structp) {}

struct PngReadGuard {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~PngReadGuard() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
};
struct PngWriteGuard {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~PngWriteGuard() { png_destroy_write_struct(&png, info ? &info : nullptr); }
};

// Phase 1: the header alone (IHDR), so its size is checked before libpng allocates row buffers for it.
inline bool png_read_header(png_structp png, png_infop info, PngIo& io, std::uint32_t& h, std::uint32_t& w) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_read_fn(png, &io, png_read_mem);
  png_set_user_limits(png, std::uint32_t(kMaxImageSide), std::uint32_t(kMaxImageSide));
  png_set_chunk_cache_max(png, 1000);             // ancillary chunks (sPLT, text) kept at most
  png_set_chunk_malloc_max(png, 8u << 20);        // the most one ancillary chunk (iCCP, zTXt) may inflate to
  png_read_info(png, info);
  h = png_get_image_height(png, info);
  w = png_get_image_width(png, info);
  return true;
}

// Phase 2: transforms; reports the decoded layout.
inline bool png_read_layout(png_structp png, png_infop info, int& channels) {
  if (setjmp(png_jmpbuf(png))) return false;
  const int type = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
  if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (depth == 16) png_set_strip_16(png);
  png_set_strip_alpha(png);  // also drops the alpha that palette expansion makes from tRNS
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  channels = png_get_channels(png, info);
  return true;
}

inline bool png_read_pixels(png_structp png, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_image(png, rows);
  return true;
}

inline bool png_write_all(png_structp png, png_infop info, PngIo& io, const Image& img, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_write_fn(png, &io, png_write_mem, png_flush_mem);
  png_set_IHDR(png, info, std::uint32_t(img.width), std::uint32_t(img.height), 8,
               img.channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, rows);
  png_write_end(png, nullptr);
  return true;
}

// ---- libjpeg ----
struct JpegErr {
  jpeg_error_mgr mgr;  // first member: libjpeg hands back a pointer to it
  std::jmp_buf jump;
  bool eof;
  char msg[JMSG_LENGTH_MAX];
};

[[noreturn]] inline void jpeg_on_error(j_common_ptr c) {
  auto* e = reinterpret_cast<JpegErr*>(c->err);
  c->err->format_message(c, e->msg);
  std::longjmp(e->jump, 1);
}
// Warnings (level -1) are not printed; a premature end of data is remembered and reported as truncation.
inline void jpeg_on_message(j_common_ptr c, int level) {
  if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) reinterpret_cast<JpegErr*>(c->err)->eof = true;
}

inline void jpeg_init_err(JpegErr& e) {
  jpeg_std_error(&e.mgr);
  e.mgr.error_exit = jpeg_on_error;
  e.mgr.emit_message = jpeg_on_message;
  e.eof = false;
  e.msg[0] = 0;
}

struct JpegDecGuard {
  jpeg_decompress_struct ci{};  // zeroed: jpeg_destroy is a no-op until jpeg_create succeeded
  ~JpegDecGuard() { jpeg_destroy_decompress(&ci); }
};
struct JpegEncGuard {
  jpeg_compress_struct ci{};
  ~JpegEncGuard() { jpeg_destroy_compress(&ci); }
};

// Phase 1: the header alone, so its declared size is checked before libjpeg allocates anything for it.
inline bool jpeg_read_head(jpeg_decompress_struct& ci, JpegErr& e, const std::uint8_t* data, std::size_t size) {
  if (setjmp(e.jump)) return false;
  jpeg_create_decompress(&ci);
  ci.mem->max_memory_to_use = kMaxJpegWorkMemory;
  jpeg_mem_src(&ci, data, static_cast<unsigned long>(size));
  jpeg_read_header(&ci, TRUE);
  return true;
}

inline bool jpeg_read_start(jpeg_decompress_struct& ci, JpegErr& e) {
  if (setjmp(e.jump)) return false;
  ci.out_color_space = ci.jpeg_color_space == JCS_GRAYSCALE ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&ci);
  return true;
}

// Stops at the first sign of a premature end: libjpeg would pad every remaining row with gray, which for a
// truncated file that declares a large size is a long loop over made-up data.
inline bool jpeg_read_rows(jpeg_decompress_struct& ci, JpegErr& e, std::uint8_t* out) {
  if (setjmp(e.jump)) return false;
  const std::size_t stride = std::size_t(ci.output_width) * ci.output_components;
  while (ci.output_scanline < ci.output_height && !e.eof) {
    JSAMPROW row = out + ci.output_scanline * stride;
    jpeg_read_scanlines(&ci, &row, 1);
  }
  if (!e.eof) jpeg_finish_decompress(&ci);
  return true;
}

// Compressed bytes go to a std::vector through a fixed chunk; growth failures become libjpeg errors.
struct JpegVecDest {
  jpeg_destination_mgr pub;  // first member
  std::vector<std::uint8_t>* out;
  JOCTET buf[1 << 14];
};

inline bool jpeg_dest_append(j_compress_ptr ci, std::size_t n) {
  auto* d = reinterpret_cast<JpegVecDest*>(ci->dest);
  try {
    d->out->insert(d->out->end(), d->buf, d->buf + n);
    return true;
  } catch (...) {
    return false;
  }
}
inline void jpeg_dest_init(j_compress_ptr ci) {
  auto* d = reinterpret_cast<JpegVecDest*>(ci->dest);
  d->pub.next_output_byte = d->buf;
  d->pub.free_in_buffer = sizeof d->buf;
}
inline boolean jpeg_dest_empty(j_compress_ptr ci) {
  if (!jpeg_dest_append(ci, sizeof(JpegVecDest::buf))) ERREXIT1(ci, JERR_OUT_OF_MEMORY, 0);
  jpeg_dest_init(ci);
  return TRUE;
}
inline void jpeg_dest_term(j_compress_ptr ci) {
  auto* d = reinterpret_cast<JpegVecDest*>(ci->dest);
  if (!jpeg_dest_append(ci, sizeof d->buf - d->pub.free_in_buffer)) ERREXIT1(ci, JERR_OUT_OF_MEMORY, 0);
}

inline bool jpeg_write_all(jpeg_compress_struct& ci, JpegErr& e, JpegVecDest& dest, const Image& img, int quality) {
  if (setjmp(e.jump)) return false;
  jpeg_create_compress(&ci);
  dest.pub.init_destination = jpeg_dest_init;
  dest.pub.empty_output_buffer = jpeg_dest_empty;
  dest.pub.term_destination = jpeg_dest_term;
  ci.dest = &dest.pub;
  ci.image_width = JDIMENSION(img.width);
  ci.image_height = JDIMENSION(img.height);
  ci.input_components = img.channels;
  ci.in_color_space = img.channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&ci);
  jpeg_set_quality(&ci, quality, TRUE);
  jpeg_start_compress(&ci, TRUE);
  const std::size_t stride = std::size_t(img.width) * img.channels;
  while (ci.next_scanline < ci.image_height) {
    JSAMPROW row = const_cast<JSAMPLE*>(img.pixels.data() + ci.next_scanline * stride);
    jpeg_write_scanlines(&ci, &row, 1);
  }
  jpeg_finish_compress(&ci);
  return true;
}

inline bool is_png_bytes(const std::vector<std::uint8_t>& b) {
  return b.size() >= 8 && png_sig_cmp(b.data(), 0, 8) == 0;
}
inline bool is_jpeg_bytes(const std::vector<std::uint8_t>& b) {
  return b.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF;
}

}  // namespace detail

// ---- in-memory codecs (`name` only labels error messages) ----

// want_channels: 3 = RGB (gray is replicated), 1 = gray (RGB is converted like PIL's "L"), 0 = as stored
// (gray or gray+alpha -> 1, everything else -> 3).
inline Image decode_png(const std::vector<std::uint8_t>& bytes, const std::string& name, int want_channels = 3) {
  detail::check_want_channels(want_channels, name);
  if (bytes.empty()) throw Error(name + ": empty file, not a PNG file");
  if (!detail::is_png_bytes(bytes)) throw Error(name + ": not a PNG file (bad signature)");
  detail::PngIo io;
  io.in = bytes.data();
  io.size = bytes.size();
  detail::PngReadGuard g;
  g.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &io, detail::png_on_error, detail::png_on_warning);
  if (g.png) g.info = png_create_info_struct(g.png);
  if (!g.png || !g.info) throw Error(name + ": cannot initialise libpng (out of memory)");
  auto fail = [&]() -> Error {
    if (io.truncated) return Error(name + ": truncated PNG data");
    if (std::strstr(io.warning, "exceeds user limit"))  // png_set_user_limits: the side limit of check_size
      return Error(name + ": unsupported image size (" + io.warning + "; at most " +
                   std::to_string(detail::kMaxImageSide) + " on a side)");
    return Error(name + ": invalid PNG data (" + io.msg + ")");
  };
  std::uint32_t h = 0, w = 0;
  int channels = 0;
  if (!detail::png_read_header(g.png, g.info, io, h, w)) throw fail();
  detail::check_size(h, w, name);
  // deflate expands at most 1032:1, so a file too small for its declared pixels is cut off (or lies): refused
  // before the image is allocated (a 100-byte file may declare 16384x16384, 768 MiB).
  const std::uint64_t raw = std::uint64_t(h) * ((std::uint64_t(w) * png_get_bit_depth(g.png, g.info) *
                                                 png_get_channels(g.png, g.info) + 7) / 8);
  if (raw > std::uint64_t(bytes.size()) * 1032)
    throw Error(name + ": truncated PNG data (" + std::to_string(bytes.size()) + " bytes cannot hold the " +
                std::to_string(h) + "x" + std::to_string(w) + " image its header declares)");
  if (!detail::png_read_layout(g.png, g.info, channels)) throw fail();
  if (channels != 1 && channels != 3) throw Error(name + ": unexpected PNG layout with " + std::to_string(channels) + " channels");
  Image img(int(h), int(w), channels);
  std::vector<png_bytep> rows(h);
  for (std::uint32_t y = 0; y < h; ++y) rows[y] = img.pixels.data() + std::size_t(y) * w * channels;
  if (!detail::png_read_pixels(g.png, rows.data())) throw fail();
  return detail::convert_channels(std::move(img), want_channels);
}

inline Image decode_jpeg(const std::vector<std::uint8_t>& bytes, const std::string& name, int want_channels = 3) {
  detail::check_want_channels(want_channels, name);
  if (bytes.empty()) throw Error(name + ": empty file, not a JPEG file");
  if (!detail::is_jpeg_bytes(bytes)) throw Error(name + ": not a JPEG file (no FF D8 FF start marker)");
  detail::JpegErr err;
  detail::jpeg_init_err(err);
  detail::JpegDecGuard g;
  g.ci.err = &err.mgr;
  auto fail = [&]() -> Error {
    if (err.eof) return Error(name + ": truncated JPEG data");
    return Error(name + ": invalid JPEG data (" + err.msg + ")");
  };
  if (!detail::jpeg_read_head(g.ci, err, bytes.data(), bytes.size())) throw fail();
  if (err.eof) throw fail();  // the header itself was cut off
  detail::check_size(g.ci.image_height, g.ci.image_width, name);
  // Baseline Huffman coding spends at least 2 bits on every 8x8 block (a DC code and an end-of-block code), so a
  // file too small for its declared size is cut off (or lies): refused before anything is allocated for it.
  // Progressive and arithmetic coding have no such floor (an end-of-band run covers thousands of blocks).
  if (!g.ci.progressive_mode && !g.ci.arith_code) {
    std::uint64_t blocks = 0;
    for (int c = 0; c < g.ci.num_components; ++c)
      blocks += std::uint64_t(g.ci.comp_info[c].width_in_blocks) * g.ci.comp_info[c].height_in_blocks;
    if (blocks * 2 > std::uint64_t(bytes.size()) * 8)
      throw Error(name + ": truncated JPEG data (" + std::to_string(bytes.size()) + " bytes cannot hold the " +
                  std::to_string(g.ci.image_height) + "x" + std::to_string(g.ci.image_width) +
                  " image its header declares)");
  }
  if (!detail::jpeg_read_start(g.ci, err)) throw fail();
  if (err.eof) throw fail();  // a progressive file's scans are all read by jpeg_start_decompress
  detail::check_size(g.ci.output_height, g.ci.output_width, name);
  Image img(int(g.ci.output_height), int(g.ci.output_width), g.ci.output_components);
  if (!detail::jpeg_read_rows(g.ci, err, img.pixels.data())) throw fail();
  // libjpeg pads missing data with gray and only warns; a cut-off file is an error here (PIL agrees).
  if (err.eof) throw fail();
  return detail::convert_channels(std::move(img), want_channels);
}

inline std::vector<std::uint8_t> encode_png(const Image& img, const std::string& name = "PNG") {
  detail::check_writable(img, name);
  std::vector<std::uint8_t> out;
  detail::PngIo io;
  io.out = &out;
  detail::PngWriteGuard g;
  g.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &io, detail::png_on_error, detail::png_on_warning);
  if (g.png) g.info = png_create_info_struct(g.png);
  if (!g.png || !g.info) throw Error(name + ": cannot initialise libpng (out of memory)");
  std::vector<png_bytep> rows(std::size_t(img.height));
  for (int y = 0; y < img.height; ++y)
    rows[y] = const_cast<png_bytep>(img.pixels.data() + std::size_t(y) * img.width * img.channels);
  if (!detail::png_write_all(g.png, g.info, io, img, rows.data()))
    throw Error(name + ": cannot encode PNG (" + io.msg + ")");
  return out;
}

inline std::vector<std::uint8_t> encode_jpeg(const Image& img, int quality = 95, const std::string& name = "JPEG") {
  detail::check_writable(img, name);
  if (quality < 1 || quality > 100) throw Error(name + ": JPEG quality must be in 1..100, got " + std::to_string(quality));
  std::vector<std::uint8_t> out;
  detail::JpegErr err;
  detail::jpeg_init_err(err);
  detail::JpegVecDest dest{};
  dest.out = &out;
  detail::JpegEncGuard g;
  g.ci.err = &err.mgr;
  if (!detail::jpeg_write_all(g.ci, err, dest, img, quality)) throw Error(name + ": cannot encode JPEG (" + err.msg + ")");
  return out;
}

// ---- files ----

inline Image read_png(const std::string& path, int want_channels = 3) {
  detail::check_want_channels(want_channels, path);
  return decode_png(detail::read_file_bytes(path), path, want_channels);
}
inline Image read_jpeg(const std::string& path, int want_channels = 3) {
  detail::check_want_channels(want_channels, path);
  return decode_jpeg(detail::read_file_bytes(path), path, want_channels);
}

// Picks the codec by extension (.png / .jpg / .jpeg, any case), otherwise by the file's magic bytes.
inline Image read_image(const std::string& path, int want_channels = 3) {
  detail::check_want_channels(want_channels, path);
  const std::string ext = detail::lower_ext(path);
  auto bytes = detail::read_file_bytes(path);
  if (ext == ".png") return decode_png(bytes, path, want_channels);
  if (ext == ".jpg" || ext == ".jpeg") return decode_jpeg(bytes, path, want_channels);
  if (detail::is_png_bytes(bytes)) return decode_png(bytes, path, want_channels);
  if (detail::is_jpeg_bytes(bytes)) return decode_jpeg(bytes, path, want_channels);
  throw Error(path + ": not a PNG or JPEG file (unknown extension and magic bytes)");
}

// 1 or 3 channels, 8 bit. The file appears atomically (temporary file + rename).
inline void write_png(const std::string& path, const Image& img) {
  detail::write_file_atomic(path, encode_png(img, path));
}
inline void write_jpeg(const std::string& path, const Image& img, int quality = 95) {
  detail::write_file_atomic(path, encode_jpeg(img, quality, path));
}

}  // namespace hw1

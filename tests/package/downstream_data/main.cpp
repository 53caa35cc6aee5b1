// Calls into libpng, libjpeg and cairo, so it links only if hw1::data carries all three.
#include <cstdio>  // jpeglib.h needs FILE
#include <cairo.h>
#include <jpeglib.h>
#include <png.h>

#include <hw1/data/image.hpp>
#include <iostream>

int main() {
  jpeg_compress_struct cinfo{};
  jpeg_error_mgr jerr{};
  cinfo.err = jpeg_std_error(&jerr);
  jpeg_create_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  hw1::Image img(2, 3, 3);
  std::cout << "png " << png_access_version_number() << " jpeg " << JPEG_LIB_VERSION << " cairo " << cairo_version_string()
            << " image " << img.height << 'x' << img.width << 'x' << img.channels << '\n';
}

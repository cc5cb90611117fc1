#include "server/datasets/image_decode.hpp"

#include <jpeglib.h>
#include <png.h>

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstring>

#include "server/datasets/dataset_error.hpp"

namespace edgeprune::datasets {
namespace {

struct Decoded {
  int width = 0, height = 0, channels = 0;  // channels as decoded: 1 or 3
  std::vector<std::uint8_t> pixels;         // row-major, interleaved
};

Result<Decoded> DecodePng(std::string_view bytes, int channels, const std::string& what) {
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size())) {
    return Invalid(what + " is not a readable PNG: " + image.message);
  }
  if (static_cast<std::uint64_t>(image.width) * image.height > kMaxImagePixels) {
    png_image_free(&image);
    return TooLarge(what + " is " + std::to_string(image.width) + "x" +
                    std::to_string(image.height) + " pixels");
  }
  // libpng converts any colour type, bit depth and palette, and composes alpha on black.
  image.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  Decoded d{static_cast<int>(image.width), static_cast<int>(image.height), channels, {}};
  d.pixels.resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, d.pixels.data(), 0, nullptr)) {
    png_image_free(&image);
    return Invalid(what + " is a damaged PNG: " + image.message);
  }
  return d;
}

// libjpeg reports a fatal error through error_exit, which must not return: it jumps back here.
// Only plain C state lives between setjmp and longjmp in ReadJpeg.
struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void JpegErrorExit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// libjpeg only warns about corrupt or truncated data and decodes grey filler in its place; a
// data set must not learn from that, so a warning (level -1) refuses the file like an error.
void JpegEmitMessage(j_common_ptr cinfo, int msg_level) {
  if (msg_level < 0) JpegErrorExit(cinfo);
}

// 0 on success, 1 on a libjpeg error (message in err), 2 when too large.
int ReadJpeg(const unsigned char* data, unsigned long size, int channels, JpegError* err,
             std::vector<std::uint8_t>* out, int* width, int* height) {
  jpeg_decompress_struct cinfo;
  cinfo.err = jpeg_std_error(&err->mgr);
  err->mgr.error_exit = JpegErrorExit;
  err->mgr.emit_message = JpegEmitMessage;
  if (setjmp(err->jump)) {
    jpeg_destroy_decompress(&cinfo);
    return 1;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, size);
  jpeg_read_header(&cinfo, TRUE);
  if (static_cast<std::uint64_t>(cinfo.image_width) * cinfo.image_height > kMaxImagePixels) {
    *width = static_cast<int>(cinfo.image_width);
    *height = static_cast<int>(cinfo.image_height);
    jpeg_destroy_decompress(&cinfo);
    return 2;
  }
  cinfo.out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  *width = static_cast<int>(cinfo.output_width);
  *height = static_cast<int>(cinfo.output_height);
  const std::size_t row = static_cast<std::size_t>(cinfo.output_width) * cinfo.output_components;
  out->resize(row * cinfo.output_height);  // sized before any jump can happen past it
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW line = out->data() + row * cinfo.output_scanline;
    jpeg_read_scanlines(&cinfo, &line, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return 0;
}

Result<Decoded> DecodeJpeg(std::string_view bytes, int channels, const std::string& what) {
  JpegError err{};
  Decoded d;
  d.channels = channels;
  const int rc = ReadJpeg(reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<unsigned long>(bytes.size()), channels, &err, &d.pixels,
                          &d.width, &d.height);
  if (rc == 1) return Invalid(what + " is a damaged JPEG: " + err.message);
  if (rc == 2) {
    return TooLarge(what + " is " + std::to_string(d.width) + "x" + std::to_string(d.height) +
                    " pixels");
  }
  return d;
}

// Scale to cover height × width, centre-crop, bilinear sampling; planar output.
std::vector<std::uint8_t> CoverAndCrop(const Decoded& d, int height, int width) {
  const double scale =
      std::max(static_cast<double>(height) / d.height, static_cast<double>(width) / d.width);
  // The target window, in source pixels, centred.
  const double off_y = (d.height - height / scale) / 2.0;
  const double off_x = (d.width - width / scale) / 2.0;
  std::vector<std::uint8_t> out(static_cast<std::size_t>(d.channels) * height * width);
  for (int y = 0; y < height; ++y) {
    const double sy = std::clamp(off_y + (y + 0.5) / scale - 0.5, 0.0, d.height - 1.0);
    const int y0 = static_cast<int>(sy), y1 = std::min(y0 + 1, d.height - 1);
    const double fy = sy - y0;
    for (int x = 0; x < width; ++x) {
      const double sx = std::clamp(off_x + (x + 0.5) / scale - 0.5, 0.0, d.width - 1.0);
      const int x0 = static_cast<int>(sx), x1 = std::min(x0 + 1, d.width - 1);
      const double fx = sx - x0;
      for (int c = 0; c < d.channels; ++c) {
        auto at = [&](int yy, int xx) {
          return static_cast<double>(
              d.pixels[(static_cast<std::size_t>(yy) * d.width + xx) * d.channels + c]);
        };
        const double v = (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x1)) +
                         fy * ((1 - fx) * at(y1, x0) + fx * at(y1, x1));
        out[(static_cast<std::size_t>(c) * height + y) * width + x] =
            static_cast<std::uint8_t>(std::lround(std::clamp(v, 0.0, 255.0)));
      }
    }
  }
  return out;
}

}  // namespace

Result<std::vector<std::uint8_t>> DecodeImage(std::string_view bytes, int channels, int height,
                                              int width, const std::string& what) {
  if (channels != 1 && channels != 3) {
    return Invalid("images decode to 1 or 3 channels, not " + std::to_string(channels));
  }
  const bool png = bytes.size() >= 8 && std::memcmp(bytes.data(), "\x89PNG\r\n\x1a\n", 8) == 0;
  const bool jpeg = bytes.size() >= 3 && std::memcmp(bytes.data(), "\xff\xd8\xff", 3) == 0;
  if (!png && !jpeg) return Invalid(what + " is neither a PNG nor a JPEG file");
  auto decoded = png ? DecodePng(bytes, channels, what) : DecodeJpeg(bytes, channels, what);
  if (!decoded.ok()) return decoded.error();
  if (decoded->width < 1 || decoded->height < 1) return Invalid(what + " has no pixels");
  return CoverAndCrop(*decoded, height, width);
}

}  // namespace edgeprune::datasets

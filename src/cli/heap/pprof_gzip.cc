// gzip (RFC 1952) through zlib, for pprof's .pb.gz.
#include <zlib.h>

#include <cerrno>
#include <string>

#include "cli/heap/pprof.h"

namespace cppdiag::cli::pprof {

bool LooksGzipped(std::string_view data) {
  return data.size() >= 2 && static_cast<uint8_t>(data[0]) == 0x1f &&
         static_cast<uint8_t>(data[1]) == 0x8b;
}

Result<std::string> Gzip(std::string_view data) {
  z_stream z{};
  // 15 + 16: a gzip header and trailer rather than zlib's.
  if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Error(ENOMEM, "deflateInit2");
  }
  std::string out(deflateBound(&z, data.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) return Error(EIO, "deflate");
  return out;
}

Result<std::string> Gunzip(std::string_view data, size_t max_bytes) {
  if (!LooksGzipped(data)) return Error::Invalid("not gzip data");
  z_stream z{};
  if (inflateInit2(&z, 15 + 16) != Z_OK) return Error(ENOMEM, "inflateInit2");
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  std::string out;
  char buf[64 * 1024];
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) break;
    out.append(buf, sizeof buf - z.avail_out);
    if (out.size() > max_bytes) {
      inflateEnd(&z);
      return Error(EFBIG, "", "uncompressed profile larger than " + std::to_string(max_bytes));
    }
    if (rc == Z_OK && z.avail_in == 0 && z.avail_out != 0) break;  // truncated
  }
  inflateEnd(&z);
  if (rc != Z_STREAM_END) return Error::Invalid("corrupt or truncated gzip data");
  return out;
}

}  // namespace cppdiag::cli::pprof

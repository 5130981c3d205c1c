#include "diag/ipc/protocol.h"

#include <cstring>

#include "common/raw_log.h"

namespace cppdiag::ipc {
namespace {

void PutLe16(char* p, uint16_t v) {
  p[0] = static_cast<char>(v & 0xff);
  p[1] = static_cast<char>(v >> 8);
}
void PutLe32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint16_t GetLe16(const char* p) {
  return static_cast<uint16_t>(static_cast<unsigned char>(p[0]) | static_cast<unsigned char>(p[1])
                                                                      << 8);
}
uint32_t GetLe32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= static_cast<uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

}  // namespace

void EncodeHeader(const FrameHeader& header, char out[kHeaderSize]) {
  std::memcpy(out, kMagic, sizeof kMagic);
  PutLe16(out + 8, header.version);
  PutLe16(out + 10, header.code);
  PutLe32(out + 12, header.payload_size);
}

Result<FrameHeader> DecodeHeader(std::string_view bytes, uint32_t max_payload) {
  if (bytes.size() < kHeaderSize) return Error::Invalid("truncated frame header");
  if (std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    return Error::Invalid("bad magic: not a cppdiag frame");
  }
  FrameHeader h;
  h.version = GetLe16(bytes.data() + 8);
  h.code = GetLe16(bytes.data() + 10);
  h.payload_size = GetLe32(bytes.data() + 12);
  if (h.version != kVersion) {
    return Error::Invalid("unsupported protocol version " + std::to_string(h.version) +
                          " (this side speaks " + std::to_string(kVersion) + ")");
  }
  if (h.payload_size > max_payload) {
    return Error::Invalid("payload of " + std::to_string(h.payload_size) +
                          " bytes exceeds the limit of " + std::to_string(max_payload));
  }
  return h;
}

std::string EncodeFrame(uint16_t code, std::string_view payload) {
  std::string frame(kHeaderSize, '\0');
  EncodeHeader({kVersion, code, static_cast<uint32_t>(payload.size())}, frame.data());
  frame.append(payload);
  return frame;
}

std::string EncodePayload(const nlohmann::json& body) {
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Status CheckJsonNesting(std::string_view json, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < json.size(); ++i) {
    char c = json[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // whatever is escaped, it ends nothing
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        return Error::Invalid("request JSON nesting too deep (more than " +
                              std::to_string(max_depth) + " levels)");
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return OkStatus();
}

int ErrnoFromName(std::string_view name) {
  if (name == "E?") return 0;
  for (int err = 1; err < 256; ++err) {
    if (name == ErrnoName(err)) return err;
  }
  return 0;
}

const char* CommandName(uint16_t code) {
  switch (static_cast<Command>(code)) {
    case Command::kProcessInfo:
      return "process-info";
    case Command::kDump:
      return "dump";
    case Command::kCounters:
      return "counters";
    case Command::kHeapSnapshot:
      return "heap-snapshot";
    case Command::kTrace:
      return "trace";
    case Command::kTraceStop:
      return "trace-stop";
  }
  return "unknown";
}

std::string SocketName(int pid, uint64_t start_time_ticks) {
  return "cppdiag-" + std::to_string(pid) + "-" + std::to_string(start_time_ticks) + "-socket";
}

}  // namespace cppdiag::ipc

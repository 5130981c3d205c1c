// The diagnostic socket's wire format, shared by the server (in the target)
// and the cppdiag CLI. docs/protocol.md is its reference.
//
// A frame is a 16-byte header followed by a JSON payload:
//
//   offset  size  field
//   0       8     magic "CPPDIAG\0"
//   8       2     version, little-endian (1)
//   10      2     command (request) or status (reply), little-endian
//   12      4     payload length in bytes, little-endian
//
// One request and one reply per connection. A request's payload is at most
// kMaxRequestPayload bytes; a reply's at most kMaxReplyPayload. A request
// that carries "progress": true may get progress frames (status 2) before its
// reply; other requests never do, so older clients see no change.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace cppdiag::ipc {

inline constexpr char kMagic[8] = {'C', 'P', 'P', 'D', 'I', 'A', 'G', '\0'};
inline constexpr uint16_t kVersion = 1;
inline constexpr size_t kHeaderSize = 16;
inline constexpr uint32_t kMaxRequestPayload = 64 * 1024;
inline constexpr uint32_t kMaxReplyPayload = 256u << 20;

enum class Command : uint16_t {
  kProcessInfo = 1,   // {} → pid, exe, cmdline, uid, start time, config, cgroup
  kDump = 2,          // {"type": "full", "path": "...", "overwrite": false}
  kCounters = 3,      // {} → pid, monotonic_ns, unix_ns, values (diag/counters/sample.h)
  kHeapSnapshot = 4,  // reserved: live heap (issue 5)
  kTrace = 5,         // reserved: trace (later)
};

enum class ReplyStatus : uint16_t {
  kOk = 0,
  kError = 1,     // payload {"error": "one line", "code": "EINVAL"}
  kProgress = 2,  // not the reply yet: {"bytes_written": N, "bytes_total": M}, more may follow
};

struct FrameHeader {
  uint16_t version = kVersion;
  uint16_t code = 0;  // a Command in requests, a ReplyStatus in replies
  uint32_t payload_size = 0;
};

// Encodes a header into exactly kHeaderSize bytes.
void EncodeHeader(const FrameHeader& header, char out[kHeaderSize]);

// Decodes and checks a header: magic, version, and `max_payload`. The error
// says what was wrong, for the error reply.
Result<FrameHeader> DecodeHeader(std::string_view bytes, uint32_t max_payload);

// A whole frame: header + payload.
std::string EncodeFrame(uint16_t code, std::string_view payload);

// Name of a command for logs ("dump"), or "unknown".
const char* CommandName(uint16_t code);

// The socket's file name for a process: "cppdiag-<pid>-<start-time>-socket"
// (the start time from /proc/<pid>/stat, in clock ticks since boot, tells a
// reused pid from the process that made the socket).
std::string SocketName(int pid, uint64_t start_time_ticks);

}  // namespace cppdiag::ipc

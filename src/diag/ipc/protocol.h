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
// kMaxRequestPayload bytes, nested at most kMaxRequestDepth deep; a reply's at
// most kMaxReplyPayload. A request that carries "progress": true may get
// progress frames (status 2) before its reply; other requests never do, so
// older clients see no change.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace cppdiag::ipc {

inline constexpr char kMagic[8] = {'C', 'P', 'P', 'D', 'I', 'A', 'G', '\0'};
inline constexpr uint16_t kVersion = 1;
inline constexpr size_t kHeaderSize = 16;
inline constexpr uint32_t kMaxRequestPayload = 64 * 1024;
inline constexpr uint32_t kMaxReplyPayload = 256u << 20;
// Arrays and objects inside one another in a request (requests are flat).
inline constexpr int kMaxRequestDepth = 32;

enum class Command : uint16_t {
  kProcessInfo = 1,   // {} → pid, exe, cmdline, uid, start time, config, cgroup
  kDump = 2,          // {"type": "full", "path": "...", "overwrite": false}
  kCounters = 3,      // {} → pid, monotonic_ns, unix_ns, values (diag/counters/sample.h)
  kHeapSnapshot = 4,  // reserved: live heap (issue 5)
  kTrace = 5,         // {"profile": "cpu", "rate_hz": 99, "duration_ms": N} → CPU/wall samples
  kTraceStop = 6,     // {} → ends the running trace early (its reply then comes)
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

// A whole frame built at compile time, for replies that must go out when
// nothing can be allocated (out of memory, no thread, no descriptor):
//
//   constexpr auto kBusy = MakeStaticFrame(ReplyStatus::kError,
//   R"({"error":"busy","code":"EBUSY"})"); send(fd, kBusy.bytes, sizeof kBusy.bytes, MSG_NOSIGNAL);
template <size_t N>
struct StaticFrame {
  char bytes[kHeaderSize + N - 1] = {};
  constexpr std::string_view view() const { return {bytes, sizeof bytes}; }
};

template <size_t N>
constexpr StaticFrame<N> MakeStaticFrame(ReplyStatus status, const char (&payload)[N]) {
  StaticFrame<N> f;
  for (size_t i = 0; i < sizeof kMagic; ++i) f.bytes[i] = kMagic[i];
  auto put = [&f](size_t at, uint32_t v, int n) {
    for (int i = 0; i < n; ++i) f.bytes[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
  };
  put(8, kVersion, 2);
  put(10, static_cast<uint16_t>(status), 2);
  put(12, static_cast<uint32_t>(N - 1), 4);
  for (size_t i = 0; i + 1 < N; ++i) f.bytes[kHeaderSize + i] = payload[i];
  return f;
}

// A payload's JSON text. The one encoder of what the server sends: bytes
// that are not UTF-8 (an argv, a mapping path, a file name in an error) become
// U+FFFD instead of making nlohmann throw, so a hostile string cannot make a
// command fail every time.
std::string EncodePayload(const nlohmann::json& body);

// Fails (EINVAL, "nesting too deep") when arrays and objects in `json` nest
// deeper than `max_depth`. A scan of the bytes (strings skipped) that
// allocates nothing, so a request is refused before the parser builds
// anything; the JSON itself is not validated.
Status CheckJsonNesting(std::string_view json, int max_depth);

// The errno value of an error reply's "code" ("EBUSY" -> EBUSY); 0 if unknown.
int ErrnoFromName(std::string_view name);

// Name of a command for logs ("dump"), or "unknown".
const char* CommandName(uint16_t code);

// The socket's file name for a process: "cppdiag-<pid>-<start-time>-socket"
// (the start time from /proc/<pid>/stat, in clock ticks since boot, tells a
// reused pid from the process that made the socket).
std::string SocketName(int pid, uint64_t start_time_ticks);

}  // namespace cppdiag::ipc

// One request on one connection of the diagnostic server: read it by a
// deadline, run its handler, write frames by a deadline. The server
// (server.h) adds the sockets, the peer checks and the threads; the fuzzer
// drives HandleRequest directly.
//
// Deadlines: the whole request (header and payload) must arrive before the
// request deadline, however the peer spreads its bytes; each frame sent (a
// progress frame or the reply) must be taken by the peer within the frame
// timeout. A long dump therefore runs as long as it needs, while a peer that
// stops reading is cut off within one frame timeout.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"
#include "diag/ipc/protocol.h"

namespace cppdiag::ipc {

// Who sent a request (SO_PEERCRED), and how its handler reports progress.
struct PeerInfo {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  // Set when the request asked for progress ("progress": true): sends a
  // progress frame (ReplyStatus::kProgress) with this payload before the
  // reply. Null otherwise. Call it only from the handler's thread, before it
  // returns; it never throws, and a failed send is ignored (the reply will tell).
  std::function<void(const nlohmann::json&)> progress;
  // Set with `progress`: true once a frame could not be sent (the peer left
  // or stopped reading), so a long handler (a trace) can end. Null otherwise.
  std::function<bool()> gone;
  // Set by the server: true once it is being destroyed (the process exits or
  // the runtime stops), when a long handler (a trace) must end, since the
  // server waits for every request before it is gone. Null in tests.
  const std::atomic<bool>* server_stopping = nullptr;

  bool ServerStopping() const { return server_stopping != nullptr && server_stopping->load(); }
};

using Handler = std::function<Result<nlohmann::json>(const nlohmann::json&, const PeerInfo&)>;
using Handlers = std::map<Command, Handler>;

using Deadline = std::chrono::steady_clock::time_point;

// Replies that allocate nothing: what the server sends when it cannot build
// a reply (out of memory, no thread, no descriptor, an unknown exception).
inline constexpr auto kOutOfMemoryFrame = MakeStaticFrame(
    ReplyStatus::kError,
    R"({"error":"the target ran out of memory serving this request; try again","code":"ENOMEM"})");
inline constexpr auto kBusyFrame =
    MakeStaticFrame(ReplyStatus::kError, R"({"error":"server busy, try again","code":"EBUSY"})");
inline constexpr auto kNoThreadFrame = MakeStaticFrame(
    ReplyStatus::kError,
    R"({"error":"server busy: no thread could be started for this request (pids limit?), try again","code":"EBUSY"})");
inline constexpr auto kNoDescriptorFrame = MakeStaticFrame(
    ReplyStatus::kError,
    R"({"error":"the target is out of file descriptors; try again","code":"EMFILE"})");
inline constexpr auto kInternalErrorFrame = MakeStaticFrame(
    ReplyStatus::kError, R"({"error":"internal error serving this request","code":"EIO"})");

// Writes whole frames to a connection, each within `timeout`. After a write
// that failed or ran out of time the stream is no longer framed: every later
// Send fails at once. Not thread-safe (one connection, one thread).
class FrameWriter {
 public:
  FrameWriter(int fd, std::chrono::milliseconds timeout) : fd_(fd), timeout_(timeout) {}
  bool Send(std::string_view frame) noexcept;
  bool broken() const { return broken_; }

 private:
  int fd_;
  std::chrono::milliseconds timeout_;
  bool broken_ = false;
};

struct Request {
  uint16_t command = 0;
  nlohmann::json body;  // a JSON object
};

// Reads one request frame from `fd`, all of it before `deadline`, and checks
// its header, its nesting (kMaxRequestDepth) and that it is a JSON object.
// ETIMEDOUT past the deadline.
Result<Request> ReadRequest(int fd, Deadline deadline);

// Runs the request's handler and returns the reply frame; progress frames
// (when asked for) go through `progress`. An exception from the handler
// becomes an error reply (std::bad_alloc: ENOMEM). Only a failure to build
// that reply escapes (std::bad_alloc): the caller then sends a static frame.
std::string Dispatch(const Handlers& handlers, const Request& request, const PeerInfo& peer,
                     FrameWriter* progress);

// ReadRequest then Dispatch: the reply frame for what arrives on `fd` (an
// error reply for anything malformed). Exposed for the fuzzer.
std::string HandleRequest(int fd, const Handlers& handlers, const PeerInfo& peer,
                          Deadline deadline);

// The error reply payload: {"error": message, "code": "EINVAL"}.
std::string ErrorReply(const Error& error);
// An error reply frame.
std::string ErrorFrame(const Error& error);

}  // namespace cppdiag::ipc

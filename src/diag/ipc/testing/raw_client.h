// A client of the diagnostic socket that speaks raw frames, for tests that
// send what the real client never would (junk, partial frames, slow bytes)
// and read the reply frame as it comes.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "diag/ipc/protocol.h"

namespace cppdiag::ipc::testing {

struct RawReply {
  std::string failure;  // empty when a whole frame came back
  uint16_t status = 0;
  nlohmann::json body;
};

// Connects `fd` (made by the caller, so that it may exist before a test
// lowers RLIMIT_NOFILE) to a socket file or, with a leading '@', an abstract name.
bool ConnectTo(int fd, const std::string& where);

// Reads one reply frame from `fd`, waiting at most `timeout_ms` for it to start.
RawReply ReadReply(int fd, int timeout_ms = 10000);

// Connects to `where`, sends `bytes` and reads the reply frame.
RawReply Exchange(const std::string& where, const std::string& bytes);

// Writes raw bytes to the socket file `path`, closes the writing side and
// returns the reply's error text (or what went wrong: "connect", "no reply"...).
std::string SendRaw(const std::string& path, const std::string& bytes);

// A request frame of command `c`.
std::string Frame(Command c, const std::string& payload);

// For failure messages: the status and body, or the failure.
std::string ToString(const RawReply& r);

}  // namespace cppdiag::ipc::testing

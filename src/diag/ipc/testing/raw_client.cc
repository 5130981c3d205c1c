#include "diag/ipc/testing/raw_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "common/io.h"
#include "common/scoped_fd.h"

namespace cppdiag::ipc::testing {

bool ConnectTo(int fd, const std::string& where) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  size_t offset = where[0] == '@' ? 1 : 0;
  std::memcpy(addr.sun_path + offset, where.data() + offset, where.size() - offset);
  auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + where.size());
  return ::connect(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0;
}

RawReply ReadReply(int fd, int timeout_ms) {
  RawReply r;
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) != 1) {
    r.failure = "no reply within " + std::to_string(timeout_ms) + " ms";
    return r;
  }
  char header[kHeaderSize];
  if (ReadExactlyRaw(fd, header, sizeof header) != 0) {
    r.failure = "no reply (connection closed)";
    return r;
  }
  auto h = DecodeHeader({header, sizeof header}, kMaxReplyPayload);
  if (!h) {
    r.failure = "bad reply header";
    return r;
  }
  std::string payload(h->payload_size, '\0');
  if (ReadExactlyRaw(fd, payload.data(), payload.size()) != 0) {
    r.failure = "short reply";
    return r;
  }
  r.status = h->code;
  r.body = nlohmann::json::parse(payload, nullptr, false);
  if (r.body.is_discarded()) r.failure = "reply is not JSON: " + payload;
  return r;
}

RawReply Exchange(const std::string& where, const std::string& bytes) {
  ScopedFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!ConnectTo(fd.get(), where)) return {"connect " + where + ": " + std::strerror(errno)};
  (void)SendAllRaw(fd.get(), bytes.data(), bytes.size());
  return ReadReply(fd.get());
}

std::string Frame(Command c, const std::string& payload) {
  return EncodeFrame(static_cast<uint16_t>(c), payload);
}

std::string ToString(const RawReply& r) {
  return r.failure.empty() ? "status " + std::to_string(r.status) + " " + r.body.dump() : r.failure;
}

std::string SendRaw(const std::string& path, const std::string& bytes) {
  ScopedFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return "connect";
  (void)SendAllRaw(fd.get(), bytes.data(), bytes.size());
  ::shutdown(fd.get(), SHUT_WR);
  char header[kHeaderSize];
  if (ReadExactlyRaw(fd.get(), header, sizeof header) != 0) return "no reply";
  auto h = DecodeHeader({header, sizeof header}, kMaxReplyPayload);
  if (!h) return "bad reply header";
  std::string payload(h->payload_size, '\0');
  if (ReadExactlyRaw(fd.get(), payload.data(), payload.size()) != 0) return "short reply";
  return nlohmann::json::parse(payload).value("error", "");
}

}  // namespace cppdiag::ipc::testing

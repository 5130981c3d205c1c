#include "diag/ipc/client.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <utility>

#include "common/io.h"
#include "common/scoped_fd.h"

namespace cppdiag::ipc {
namespace {

Result<ScopedFd> Connect(const Endpoint& endpoint, std::chrono::milliseconds timeout) {
  ScopedFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.is_valid()) return Error::FromErrno("socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  bool abstract = endpoint.path.empty();
  const std::string& where = abstract ? endpoint.abstract_name : endpoint.path;
  size_t offset = abstract ? 1 : 0;
  if (where.size() + offset >= sizeof addr.sun_path) {
    return Error(ENAMETOOLONG, "connect", endpoint.ToString());
  }
  std::memcpy(addr.sun_path + offset, where.data(), where.size());
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + offset + where.size());
  timeval tv{};
  tv.tv_sec = timeout.count() / 1000;
  tv.tv_usec = (timeout.count() % 1000) * 1000;
  // Without them a target that stops answering would hang the tool.
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
      ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
    return Error::FromErrno("setsockopt SO_RCVTIMEO", endpoint.ToString());
  }
  if (HANDLE_EINTR(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), len)) != 0) {
    return Error::FromErrno("connect", endpoint.ToString());
  }
  if (endpoint.expected_pid != 0) {
    ucred cred{};
    socklen_t cred_len = sizeof cred;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) != 0) {
      return Error::FromErrno("getsockopt SO_PEERCRED", endpoint.ToString());
    }
    if (cred.pid != endpoint.expected_pid) {
      return Error(EACCES, "",
                   endpoint.ToString() + " is held by pid " + std::to_string(cred.pid) +
                       ", not by process " + std::to_string(endpoint.expected_pid) +
                       "; refusing to talk to it");
    }
  }
  return fd;
}

// One frame: its status and JSON payload.
Result<std::pair<uint16_t, nlohmann::json>> ReadFrame(int fd, const Endpoint& endpoint,
                                                      int send_err) {
  char header_bytes[kHeaderSize];
  if (int err = ReadExactlyRaw(fd, header_bytes, sizeof header_bytes); err != 0) {
    if (send_err != 0) return Error(send_err, "send", "request to " + endpoint.ToString());
    if (err == EAGAIN) err = ETIMEDOUT;
    return Error(err, "read", "reply from " + endpoint.ToString());
  }
  CPPDIAG_ASSIGN_OR_RETURN(FrameHeader header,
                           DecodeHeader({header_bytes, sizeof header_bytes}, kMaxReplyPayload));
  std::string payload(header.payload_size, '\0');
  if (int err = ReadExactlyRaw(fd, payload.data(), payload.size()); err != 0) {
    return Error(err == EAGAIN ? ETIMEDOUT : err, "read", "reply from " + endpoint.ToString());
  }
  nlohmann::json body = nlohmann::json::parse(payload, nullptr, false);
  if (body.is_discarded()) return Error::Invalid("malformed reply from " + endpoint.ToString());
  return std::make_pair(header.code, std::move(body));
}

// `body[key]` when it is a string, else "" (a reply is not trusted to be well typed).
std::string StringField(const nlohmann::json& body, const char* key) {
  if (!body.is_object()) return {};
  auto it = body.find(key);
  return it != body.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

Result<nlohmann::json> Call(const Endpoint& endpoint, Command command,
                            const nlohmann::json& request, std::chrono::milliseconds timeout,
                            const ProgressCallback& progress) {
  CPPDIAG_ASSIGN_OR_RETURN(ScopedFd fd, Connect(endpoint, timeout));
  nlohmann::json sent = request;
  if (progress && sent.is_object()) sent["progress"] = true;
  std::string payload;
  try {  // strict here: a path changed to U+FFFD would name another file
    payload = sent.dump();
  } catch (const nlohmann::json::exception&) {
    return Error::Invalid("the request holds a string that is not UTF-8 (a path, say)");
  }
  std::string frame = EncodeFrame(static_cast<uint16_t>(command), payload);
  // A server that refuses us replies and closes without reading: a failed
  // send is then no failure as long as its reply can be read.
  int send_err = SendAllRaw(fd.get(), frame.data(), frame.size());
  for (;;) {
    CPPDIAG_ASSIGN_OR_RETURN(auto reply, ReadFrame(fd.get(), endpoint, send_err));
    if (reply.first == static_cast<uint16_t>(ReplyStatus::kProgress)) {
      if (progress) progress(reply.second);
      continue;
    }
    if (reply.first != static_cast<uint16_t>(ReplyStatus::kOk)) {
      // The server's errno (EBUSY, EPERM...) and its one-line message.
      std::string code = StringField(reply.second, "code");
      std::string message = StringField(reply.second, "error");
      int err = ErrnoFromName(code);
      if (message.empty()) message = "request failed";
      return Error(err != 0 ? err : EINVAL, "", message);
    }
    return std::move(reply.second);
  }
}

}  // namespace cppdiag::ipc

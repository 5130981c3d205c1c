#include "diag/ipc/request.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <new>

#include "common/raw_log.h"

namespace cppdiag::ipc {
namespace {

// Milliseconds left until `deadline`, rounded up (poll's unit), 0 if past.
int RemainingMs(Deadline deadline) {
  auto left = deadline - std::chrono::steady_clock::now();
  if (left <= std::chrono::steady_clock::duration::zero()) return 0;
  return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(left).count());
}

// Waits until `fd` is ready for `events` or `deadline` passes: 0, ETIMEDOUT
// or an errno value.
int WaitFor(int fd, short events, Deadline deadline) {
  for (;;) {
    int ms = RemainingMs(deadline);
    if (ms == 0) return ETIMEDOUT;
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, ms);
    if (n > 0) return 0;  // ready, or an error the next call reports
    if (n == 0) return ETIMEDOUT;
    if (errno != EINTR) return errno;
  }
}

// Reads exactly `len` bytes before `deadline`: 0, ETIMEDOUT, EPIPE (the peer
// closed first) or an errno value.
int ReadExactlyBefore(int fd, char* buf, size_t len, Deadline deadline) {
  while (len > 0) {
    if (int err = WaitFor(fd, POLLIN, deadline)) return err;
    ssize_t n = ::recv(fd, buf, len, MSG_DONTWAIT);
    if (n > 0) {
      buf += n;
      len -= static_cast<size_t>(n);
    } else if (n == 0) {
      return EPIPE;
    } else if (errno != EAGAIN && errno != EINTR) {
      return errno;
    }
  }
  return 0;
}

Error ReadError(int err, const char* what) {
  if (err == ETIMEDOUT) return Error(ETIMEDOUT, "", std::string("timed out reading ") + what);
  return Error(err, "", std::string("truncated ") + what);
}

}  // namespace

bool FrameWriter::Send(std::string_view frame) noexcept {
  if (broken_) return false;
  Deadline deadline = std::chrono::steady_clock::now() + timeout_;
  while (!frame.empty()) {
    ssize_t n = ::send(fd_, frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      frame.remove_prefix(static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if ((n < 0 && errno != EAGAIN) || WaitFor(fd_, POLLOUT, deadline) != 0) {
      broken_ = true;
      return false;
    }
  }
  return true;
}

std::string ErrorReply(const Error& error) {
  return EncodePayload({{"error", error.message()}, {"code", ErrnoName(error.code())}});
}

std::string ErrorFrame(const Error& error) {
  return EncodeFrame(static_cast<uint16_t>(ReplyStatus::kError), ErrorReply(error));
}

Result<Request> ReadRequest(int fd, Deadline deadline) {
  char header_bytes[kHeaderSize];
  if (int err = ReadExactlyBefore(fd, header_bytes, sizeof header_bytes, deadline)) {
    return ReadError(err, "request header");
  }
  CPPDIAG_ASSIGN_OR_RETURN(FrameHeader header,
                           DecodeHeader({header_bytes, sizeof header_bytes}, kMaxRequestPayload));
  std::string payload(header.payload_size, '\0');
  if (int err = ReadExactlyBefore(fd, payload.data(), payload.size(), deadline)) {
    return ReadError(err, "request payload");
  }
  CPPDIAG_RETURN_IF_ERROR(CheckJsonNesting(payload, kMaxRequestDepth));
  Request request{header.code, payload.empty() ? nlohmann::json::object()
                                               : nlohmann::json::parse(payload, nullptr, false)};
  if (request.body.is_discarded() || !request.body.is_object()) {
    return Error::Invalid("request payload is not a JSON object");
  }
  return request;
}

std::string Dispatch(const Handlers& handlers, const Request& request, const PeerInfo& peer,
                     FrameWriter* progress) {
  auto it = handlers.find(static_cast<Command>(request.command));
  if (it == handlers.end()) {
    return ErrorFrame(Error(ENOTSUP, "",
                            "unsupported command " + std::to_string(request.command) + " (" +
                                CommandName(request.command) + ")"));
  }
  PeerInfo context = peer;
  auto asked = request.body.find("progress");
  if (progress != nullptr && asked != request.body.end() && asked->is_boolean() &&
      asked->get<bool>()) {
    context.progress = [progress](const nlohmann::json& body) {
      try {
        progress->Send(
            EncodeFrame(static_cast<uint16_t>(ReplyStatus::kProgress), EncodePayload(body)));
      } catch (...) {  // only news: the reply still tells how it went
      }
    };
    context.gone = [progress] { return progress->broken(); };
  }
  try {
    Result<nlohmann::json> result = it->second(request.body, context);
    if (!result) return ErrorFrame(result.error());
    std::string payload = EncodePayload(*result);
    if (payload.size() > kMaxReplyPayload) {
      return ErrorFrame(Error(EFBIG, "",
                              "reply of " + std::to_string(payload.size()) +
                                  " bytes exceeds the protocol's limit of " +
                                  std::to_string(kMaxReplyPayload)));
    }
    return EncodeFrame(static_cast<uint16_t>(ReplyStatus::kOk), payload);
  } catch (const std::bad_alloc&) {
    return std::string(kOutOfMemoryFrame.view());
  } catch (const nlohmann::json::exception& e) {  // a bad field type in the request, say
    return ErrorFrame(Error::Invalid(std::string("bad request: ") + e.what()));
  } catch (const std::exception& e) {
    return ErrorFrame(Error(EIO, "", std::string("internal error: ") + e.what()));
  } catch (...) {
    return ErrorFrame(Error(EIO, "", "internal error: an exception that is not a std::exception"));
  }
}

std::string HandleRequest(int fd, const Handlers& handlers, const PeerInfo& peer,
                          Deadline deadline) {
  auto request = ReadRequest(fd, deadline);
  if (!request) return ErrorFrame(request.error());
  FrameWriter progress(fd, std::chrono::milliseconds(1000));
  return Dispatch(handlers, *request, peer, &progress);
}

}  // namespace cppdiag::ipc

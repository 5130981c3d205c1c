#include "diag/ipc/server.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "common/io.h"
#include "common/proc.h"
#include "common/raw_log.h"
#include "common/thread_signals.h"

namespace cppdiag::ipc {
namespace {

Result<ScopedFd> BindListener(const std::string& name, bool abstract, const std::string& path) {
  ScopedFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.is_valid()) return Error::FromErrno("socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string& where = abstract ? name : path;
  size_t offset = abstract ? 1 : 0;  // abstract: a leading NUL, no file
  if (where.size() + offset >= sizeof addr.sun_path) {
    return Error(ENAMETOOLONG, "bind", where);
  }
  std::memcpy(addr.sun_path + offset, where.data(), where.size());
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + offset + where.size());
  if (!abstract) {
    // Linux gives the socket file the socket inode's mode: 0600 from the start.
    ::fchmod(fd.get(), 0600);
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());  // stale
  }
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    return Error::FromErrno("bind", abstract ? "@" + name : path);
  }
  if (!abstract && ::chmod(path.c_str(), 0600) != 0) return Error::FromErrno("chmod", path);
  if (::listen(fd.get(), 64) != 0) return Error::FromErrno("listen");
  return fd;
}

const char* ErrnoCode(int err) {
  const char* name = ErrnoName(err);  // "EINVAL (invalid argument)"
  static thread_local char buf[32];
  size_t i = 0;
  while (name[i] != '\0' && name[i] != ' ' && i + 1 < sizeof buf) {
    buf[i] = name[i];
    ++i;
  }
  buf[i] = '\0';
  return buf;
}

}  // namespace

std::string ErrorReply(const Error& error) {
  return nlohmann::json{{"error", error.message()}, {"code", ErrnoCode(error.code())}}.dump();
}

DiagnosticServer::DiagnosticServer(ServerOptions options, Handlers handlers)
    : options_(std::move(options)), handlers_(std::move(handlers)) {}

Result<std::unique_ptr<DiagnosticServer>> DiagnosticServer::Start(ServerOptions options,
                                                                  Handlers handlers) {
  std::unique_ptr<DiagnosticServer> s(
      new DiagnosticServer(std::move(options), std::move(handlers)));
  CPPDIAG_RETURN_IF_ERROR(s->Listen());
  ScopedBlockAsyncSignals block;  // the accept thread and its workers inherit the mask
  s->accept_thread_ = std::thread([raw = s.get()] { raw->AcceptLoop(); });
  return s;
}

Status DiagnosticServer::Listen() {
  CPPDIAG_ASSIGN_OR_RETURN(ProcStat self, ReadProcStat(::getpid()));
  name_ = SocketName(::getpid(), self.start_time_ticks);
  path_ = options_.tmpdir + "/" + name_;
  CPPDIAG_ASSIGN_OR_RETURN(path_fd_, BindListener(name_, false, path_));
  if (options_.abstract_socket) {
    auto a = BindListener(name_, true, path_);
    if (a) {
      abstract_fd_ = std::move(*a);
    } else {  // optional: the file socket is enough, but say why the fallback is missing
      std::fprintf(stderr, "cppdiag: no abstract diagnostic socket: %s\n",
                   a.error().message().c_str());
    }
  }
  stop_fd_ = ScopedFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop_fd_.is_valid()) return Error::FromErrno("eventfd");
  return OkStatus();
}

DiagnosticServer::~DiagnosticServer() {
  if (accept_thread_.joinable()) {
    uint64_t one = 1;
    (void)!::write(stop_fd_.get(), &one, sizeof one);
    accept_thread_.join();
  }
  std::unique_lock lock(mu_);
  idle_.wait(lock, [this] { return active_ == 0; });
  if (!path_.empty()) ::unlink(path_.c_str());
}

void DiagnosticServer::AbandonInForkedChild() {
  for (ScopedFd* fd : {&path_fd_, &abstract_fd_, &stop_fd_}) fd->reset();  // the child's copies
  path_.clear();
}

void DiagnosticServer::AcceptLoop() {
  ::pthread_setname_np(::pthread_self(), "cppdiag-server");
  pollfd fds[3] = {
      {stop_fd_.get(), POLLIN, 0}, {path_fd_.get(), POLLIN, 0}, {abstract_fd_.get(), POLLIN, 0}};
  nfds_t nfds = abstract_fd_.is_valid() ? 3 : 2;
  for (;;) {
    if (HANDLE_EINTR(::poll(fds, nfds, -1)) < 0) continue;
    if (fds[0].revents & POLLIN) return;
    for (nfds_t i = 1; i < nfds; ++i) {
      if (!(fds[i].revents & POLLIN)) continue;
      ScopedFd conn(::accept4(fds[i].fd, nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn.is_valid()) continue;
      ucred cred{};
      socklen_t len = sizeof cred;
      if (::getsockopt(conn.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
          (cred.uid != 0 && cred.uid != ::geteuid())) {
        ++refused_;
        std::fprintf(
            stderr, "cppdiag: refused diagnostic request from pid %d uid %u (not uid %u or root)\n",
            cred.pid, cred.uid, ::geteuid());
        std::string reply =
            EncodeFrame(static_cast<uint16_t>(ReplyStatus::kError),
                        ErrorReply(Error(EACCES, "",
                                         "peer uid " + std::to_string(cred.uid) +
                                             " may not use this process's diagnostic socket")));
        (void)SendAllRaw(conn.get(), reply.data(), reply.size());
        continue;
      }
      {
        std::lock_guard lock(mu_);
        if (active_ >= options_.max_connections) {
          ++refused_;
          std::string reply = EncodeFrame(static_cast<uint16_t>(ReplyStatus::kError),
                                          ErrorReply(Error(EBUSY, "", "server busy, try again")));
          (void)SendAllRaw(conn.get(), reply.data(), reply.size());
          continue;
        }
        ++active_;
      }
      PeerInfo peer{cred.pid, cred.uid, cred.gid};
      std::thread([this, c = std::move(conn), peer]() mutable {
        Serve(std::move(c), peer);
      }).detach();
    }
  }
}

void DiagnosticServer::Serve(ScopedFd conn, PeerInfo peer) {
  ::pthread_setname_np(::pthread_self(), "cppdiag-request");
  timeval tv{};
  tv.tv_sec = options_.read_timeout.count() / 1000;
  tv.tv_usec = (options_.read_timeout.count() % 1000) * 1000;
  ::setsockopt(conn.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(conn.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

  std::string reply = HandleRequest(conn.get(), handlers_, peer);
  (void)SendAllRaw(conn.get(), reply.data(), reply.size());
  ++served_;
  std::lock_guard lock(mu_);
  --active_;
  idle_.notify_all();
}

std::string HandleRequest(int fd, const DiagnosticServer::Handlers& handlers,
                          const PeerInfo& peer) {
  auto error_frame = [](const Error& e) {
    return EncodeFrame(static_cast<uint16_t>(ReplyStatus::kError), ErrorReply(e));
  };
  auto read_error = [](int err, const char* what) {
    bool slow = err == EAGAIN || err == EWOULDBLOCK;
    return Error(slow ? ETIMEDOUT : err, "",
                 std::string(slow ? "timed out reading " : "truncated ") + what);
  };
  char header_bytes[kHeaderSize];
  if (int err = ReadExactlyRaw(fd, header_bytes, sizeof header_bytes); err != 0) {
    return error_frame(read_error(err, "request header"));
  }
  auto header = DecodeHeader({header_bytes, sizeof header_bytes}, kMaxRequestPayload);
  if (!header) return error_frame(header.error());
  std::string payload(header->payload_size, '\0');
  if (int err = ReadExactlyRaw(fd, payload.data(), payload.size()); err != 0) {
    return error_frame(read_error(err, "request payload"));
  }
  nlohmann::json request =
      payload.empty() ? nlohmann::json::object() : nlohmann::json::parse(payload, nullptr, false);
  if (request.is_discarded() || !request.is_object()) {
    return error_frame(Error::Invalid("request payload is not a JSON object"));
  }
  PeerInfo context = peer;
  if (auto p = request.find("progress"); p != request.end() && p->is_boolean() && p->get<bool>()) {
    context.progress = [fd](const nlohmann::json& body) {
      std::string frame = EncodeFrame(static_cast<uint16_t>(ReplyStatus::kProgress), body.dump());
      (void)SendAllRaw(fd, frame.data(), frame.size());
    };
  }
  auto it = handlers.find(static_cast<Command>(header->code));
  if (it == handlers.end()) {
    return error_frame(Error(ENOTSUP, "",
                             "unsupported command " + std::to_string(header->code) + " (" +
                                 CommandName(header->code) + ")"));
  }
  try {
    Result<nlohmann::json> result = it->second(request, context);
    if (!result) return error_frame(result.error());
    return EncodeFrame(static_cast<uint16_t>(ReplyStatus::kOk), result->dump());
  } catch (const std::exception& e) {  // a bad field type in the request, say
    return error_frame(Error::Invalid(std::string("bad request: ") + e.what()));
  }
}

}  // namespace cppdiag::ipc

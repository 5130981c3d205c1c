#include "diag/ipc/server.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <new>

#include "common/async_safe.h"
#include "common/io.h"
#include "common/proc.h"
#include "common/raw_log.h"
#include "common/thread_signals.h"
#include "diag/heap/allocation_hooks.h"

namespace cppdiag::ipc {
namespace {

// How long the accept loop rests when accepting fails for want of a
// resource (descriptors, memory), and how often it looks at `stopping_`
// once its stop descriptor was closed underneath it.
constexpr int kBackOffMs = 100;
constexpr int kStopCheckMs = 200;

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

// One try, never blocking: for the short refusals the accept loop sends into
// a fresh connection's empty buffer.
void SendNow(int fd, std::string_view frame) {
  (void)!::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

uint32_t CommandBit(uint16_t code) { return code < 32 ? 1u << code : 0; }

}  // namespace

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
  self_ = SelfIdentity::Read();
  name_ = SocketName(::getpid(), self.start_time_ticks);
  // Either socket is enough: a squatted or too long file path leaves the
  // abstract one, a network namespace without it leaves the file.
  std::string path = options_.tmpdir + "/" + name_;
  auto file = BindListener(name_, false, path);
  if (file) {
    path_fd_ = std::move(*file);
    path_ = path;  // ours to remove at the end; a squatter's file is not
  }
  std::optional<Error> abstract_error;
  if (options_.abstract_socket) {
    auto a = BindListener(name_, true, path);
    if (a) {
      abstract_fd_ = std::move(*a);
    } else {
      abstract_error = a.error();
    }
  }
  if (!file && !abstract_fd_.is_valid()) return file.error();
  if (!file) {
    std::fprintf(stderr, "cppdiag: no diagnostic socket file (the abstract socket serves): %s\n",
                 file.error().message().c_str());
  }
  if (abstract_error) {
    std::fprintf(stderr, "cppdiag: no abstract diagnostic socket: %s\n",
                 abstract_error->message().c_str());
  }
  stop_fd_ = ScopedFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop_fd_.is_valid()) return Error::FromErrno("eventfd");
  reserve_fd_ = ScopedFd(::eventfd(0, EFD_CLOEXEC));
  return OkStatus();
}

DiagnosticServer::~DiagnosticServer() {
  if (accept_thread_.joinable()) {
    stopping_ = true;
    uint64_t one = 1;
    if (!stop_lost_) (void)!::write(stop_fd_.get(), &one, sizeof one);
    accept_thread_.join();
  }
  std::unique_lock lock(mu_);
  idle_.wait(lock, [this] { return active_ == 0; });
  if (!path_.empty()) ::unlink(path_.c_str());
  // Descriptors someone else closed may carry another file's number by now.
  if (path_lost_) (void)path_fd_.release();
  if (abstract_lost_) (void)abstract_fd_.release();
  if (stop_lost_) (void)stop_fd_.release();
}

void DiagnosticServer::LogLimited(const char* format, ...) {
  auto now = std::chrono::steady_clock::now();
  if (last_log_ != std::chrono::steady_clock::time_point{} &&
      now - last_log_ < std::chrono::seconds(1)) {
    ++logs_held_back_;
    return;
  }
  last_log_ = now;
  char line[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(line, sizeof line, format, args);
  va_end(args);
  if (logs_held_back_ > 0) {
    std::fprintf(stderr, "cppdiag: %s (and %llu similar lines held back in the last second)\n",
                 line, static_cast<unsigned long long>(logs_held_back_));
  } else {
    std::fprintf(stderr, "cppdiag: %s\n", line);
  }
  logs_held_back_ = 0;
}

void DiagnosticServer::AbandonInForkedChild() {
  // Descriptors someone else closed may carry another file's number by now.
  if (path_lost_) (void)path_fd_.release();
  if (abstract_lost_) (void)abstract_fd_.release();
  if (stop_lost_) (void)stop_fd_.release();
  for (ScopedFd* fd : {&path_fd_, &abstract_fd_, &stop_fd_, &reserve_fd_}) fd->reset();
  CloseAcceptedConnections();
  path_.clear();  // the parent's file: never unlinked by the child
}

// The connections the parent's workers (and its accept thread) held at fork
// are found by what they are rather than by bookkeeping, which a thread
// frozen mid-update could leave wrong: a socket accepted from our listener
// has the listener's address as its own name. getdents64 on /proc/self/fd,
// into a stack buffer (dirent64 is the kernel's linux_dirent64): no allocation.
void DiagnosticServer::CloseAcceptedConnections() {
  int dir = ::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return;
  alignas(8) char buf[4096];
  for (;;) {
    long n = ::syscall(SYS_getdents64, dir, buf, sizeof buf);
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      const auto* e = reinterpret_cast<const dirent64*>(buf + off);
      off += e->d_reclen;
      uint64_t fd = 0;
      if (ParseDecimal(e->d_name, &fd) == 0 || static_cast<int>(fd) == dir) continue;
      if (IsOurConnection(static_cast<int>(fd))) ::close(static_cast<int>(fd));
    }
  }
  ::close(dir);
}

bool DiagnosticServer::IsOurConnection(int fd) const {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
  sockaddr_un addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      addr.sun_family != AF_UNIX || len <= offsetof(sockaddr_un, sun_path)) {
    return false;
  }
  const char* name = addr.sun_path;
  size_t size = len - offsetof(sockaddr_un, sun_path);
  if (size > 0 && name[0] == '\0') {  // abstract: the name after the NUL, no terminator
    return size - 1 == name_.size() && std::memcmp(name + 1, name_.data(), name_.size()) == 0;
  }
  size_t n = strnlen(name, size);
  return !path_.empty() && n == path_.size() && std::memcmp(name, path_.data(), n) == 0;
}

void DiagnosticServer::AcceptLoop() {
  ::pthread_setname_np(::pthread_self(), "cppdiag-server");  // ps -T, gdb, the fork test
  heap::ExemptThisThreadFromHardLimit();
  // An entry whose fd is -1 is ignored by poll: that is how a lost listener drops out.
  pollfd fds[3] = {{stop_fd_.get(), POLLIN, 0},
                   {path_fd_.is_valid() ? path_fd_.get() : -1, POLLIN, 0},
                   {abstract_fd_.is_valid() ? abstract_fd_.get() : -1, POLLIN, 0}};
  std::atomic<bool>* lost[3] = {&stop_lost_, &path_lost_, &abstract_lost_};
  const char* names[3] = {"stop descriptor", "socket file listener", "abstract socket listener"};
  bool back_off = false;
  while (!stopping_) {
    // Backing off, only the stop descriptor is watched (a pending connection
    // would wake us at once); with it lost, `stopping_` is looked at now and then.
    int timeout = back_off ? kBackOffMs : stop_lost_ ? kStopCheckMs : -1;
    int n = ::poll(fds, back_off ? 1 : 3, timeout);
    back_off = false;
    if (n < 0) {
      back_off = errno != EINTR;  // ENOMEM: rest rather than spin
      continue;
    }
    if (fds[0].revents & POLLIN) return;
    for (int i = 0; i < 3; ++i) {
      short revents = fds[i].revents;
      fds[i].revents = 0;
      AcceptResult result = AcceptResult::kAgain;
      if (revents & (POLLNVAL | POLLERR | POLLHUP)) {
        result = AcceptResult::kDropListener;  // closed underneath us, or shut down
      } else if (i > 0 && (revents & POLLIN)) {
        result = AcceptOne(fds[i].fd);
      }
      if (result == AcceptResult::kDropListener) {
        std::fprintf(stderr, "cppdiag: diagnostic server: %s is no longer usable; dropped\n",
                     names[i]);
        // Closed by someone else (POLLNVAL), or its number reused (accept
        // failed on it): no longer ours to close. POLLERR, POLLHUP: still ours.
        *lost[i] = (revents & (POLLERR | POLLHUP)) == 0;
        fds[i].fd = -1;
      }
      back_off |= result == AcceptResult::kBackOff;
    }
  }
}

DiagnosticServer::AcceptResult DiagnosticServer::AcceptOne(int listener) {
  int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd >= 0) {
    Admit(ScopedFd(fd), std::chrono::steady_clock::now() + options_.read_timeout);
    return AcceptResult::kAgain;
  }
  int err = errno;
  switch (err) {
    case EAGAIN:
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
      return AcceptResult::kAgain;
    case EMFILE:
    case ENFILE:
      if (ShedWithReserve(listener)) return AcceptResult::kAgain;
      LogLimited("diagnostic server: accept: %s; backing off", ErrnoName(err));
      return AcceptResult::kBackOff;
    case EBADF:
    case ENOTSOCK:
    case EINVAL:
    case EOPNOTSUPP:
      return AcceptResult::kDropListener;  // its number now holds something else
    default:                               // ENOBUFS, ENOMEM, EPERM (a security module)...
      LogLimited("diagnostic server: accept: %s; backing off", ErrnoName(err));
      return AcceptResult::kBackOff;
  }
}

bool DiagnosticServer::ShedWithReserve(int listener) {
  if (!reserve_fd_.is_valid()) return false;
  reserve_fd_.reset();
  ScopedFd conn(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
  bool shed = conn.is_valid();
  if (shed) {
    ++refused_;
    SendNow(conn.get(), kNoDescriptorFrame.view());
    conn.reset();
  }
  reserve_fd_ = ScopedFd(::eventfd(0, EFD_CLOEXEC));  // may fail: backing off, then
  if (shed) LogLimited("diagnostic server: out of file descriptors: a request was refused");
  return shed && reserve_fd_.is_valid();
}

void DiagnosticServer::Admit(ScopedFd conn, Deadline request_deadline) {
  try {
    ucred cred{};
    socklen_t len = sizeof cred;
    Status allowed = ::getsockopt(conn.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0
                         ? AuthorizePeer(conn.get(), cred, self_)
                         : Status(Error::FromErrno("getsockopt SO_PEERCRED"));
    if (!allowed) {
      ++refused_;
      LogLimited("refused diagnostic request from pid %d uid %u: %s", cred.pid, cred.uid,
                 allowed.error().message().c_str());
      SendNow(conn.get(), ErrorFrame(allowed.error()));
      return;
    }
    {
      std::lock_guard lock(mu_);
      if (active_ >= options_.max_connections) {
        ++refused_;
        SendNow(conn.get(), kBusyFrame.view());
        return;
      }
      ++active_;
    }
    PeerInfo peer{cred.pid, cred.uid, cred.gid, nullptr};
    int raw = conn.get();
    try {
      std::thread([this, raw, peer, request_deadline] {
        Serve(ScopedFd(raw), peer, request_deadline);
      }).detach();
      (void)conn.release();  // the worker owns it now
    } catch (...) {          // std::system_error: no thread (a pids limit); std::bad_alloc
      {
        std::lock_guard lock(mu_);
        --active_;
        idle_.notify_all();
      }
      ++refused_;
      SendNow(conn.get(), kNoThreadFrame.view());
      LogLimited("diagnostic server: no thread for a request: refused");
    }
  } catch (const std::bad_alloc&) {
    SendNow(conn.get(), kOutOfMemoryFrame.view());
  } catch (...) {
    SendNow(conn.get(), kInternalErrorFrame.view());
  }
}

void DiagnosticServer::Serve(ScopedFd conn, PeerInfo peer, Deadline request_deadline) {
  ::pthread_setname_np(::pthread_self(), "cppdiag-request");
  heap::ExemptThisThreadFromHardLimit();
  FrameWriter writer(conn.get(), options_.write_timeout);
  try {
    ServeRequest(conn.get(), peer, request_deadline, &writer);
  } catch (const std::bad_alloc&) {  // no memory even for the error reply
    writer.Send(kOutOfMemoryFrame.view());
  } catch (...) {
    writer.Send(kInternalErrorFrame.view());
  }
  conn.reset();
  ++served_;
  std::lock_guard lock(mu_);
  --active_;
  idle_.notify_all();
}

void DiagnosticServer::ServeRequest(int fd, const PeerInfo& peer, Deadline request_deadline,
                                    FrameWriter* writer) {
  auto request = ReadRequest(fd, request_deadline);
  if (!request) {
    writer->Send(ErrorFrame(request.error()));
    return;
  }
  uint32_t bit = options_.exclusive_commands.count(static_cast<Command>(request->command)) != 0
                     ? CommandBit(request->command)
                     : 0;
  bool busy = false;
  if (bit != 0) {
    std::lock_guard lock(mu_);
    busy = (exclusive_running_ & bit) != 0;
    if (!busy) exclusive_running_ |= bit;
  }
  if (busy) {
    writer->Send(ErrorFrame(Error(EBUSY, "",
                                  std::string("a ") + CommandName(request->command) +
                                      " request is already being served (one at a time); "
                                      "try again")));
    return;
  }
  struct ClearOnExit {  // also when Dispatch throws
    DiagnosticServer* server;
    uint32_t bit;
    ~ClearOnExit() {
      if (bit == 0) return;
      std::lock_guard lock(server->mu_);
      server->exclusive_running_ &= ~bit;
    }
  } clear{this, bit};
  PeerInfo context = peer;
  context.server_stopping = &stopping_;
  writer->Send(Dispatch(handlers_, *request, context, writer));
}

}  // namespace cppdiag::ipc

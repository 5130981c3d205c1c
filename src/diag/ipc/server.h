// The diagnostic server: a thread in the target that listens on
// $TMPDIR/cppdiag-<pid>-<start-time>-socket (mode 0600) and on the same name
// in the abstract namespace, checks each peer's uid (SO_PEERCRED: the same
// uid or root), reads one request frame, runs its handler and writes the reply.
//
// A malformed, oversized or slow request gets an error reply (when the peer
// can still read one) and the server keeps serving. Up to
// `max_connections` requests are served at once, each on its own thread.
//
//   DiagnosticServer::Handlers h;
//   h[ipc::Command::kProcessInfo] = [](const nlohmann::json&, const PeerInfo&) { ... };
//   auto server = DiagnosticServer::Start({.tmpdir = "/tmp"}, std::move(h));
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "common/scoped_fd.h"
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
  // returns; a failed send is ignored (the reply will tell).
  std::function<void(const nlohmann::json&)> progress;
};

struct ServerOptions {
  std::string tmpdir = "/tmp";
  bool abstract_socket = true;  // also listen in the abstract namespace
  int max_connections = 32;
  std::chrono::milliseconds read_timeout{5000};
};

class DiagnosticServer {
 public:
  using Handler = std::function<Result<nlohmann::json>(const nlohmann::json&, const PeerInfo&)>;
  using Handlers = std::map<Command, Handler>;

  static Result<std::unique_ptr<DiagnosticServer>> Start(ServerOptions options, Handlers handlers);
  ~DiagnosticServer();  // stops serving, waits for requests in flight, removes the socket file

  const std::string& socket_path() const { return path_; }
  const std::string& socket_name() const { return name_; }
  uint64_t requests_served() const { return served_.load(); }
  uint64_t requests_refused() const { return refused_.load(); }

  // For the child of fork(): closes the server's descriptors (the listeners
  // and the stop eventfd are the parent's: writing it would stop the parent's
  // server) without touching the socket file or any thread, which exist only
  // in the parent. The object must then never be destroyed (leak it).
  // Async-signal-safe.
  void AbandonInForkedChild();

 private:
  DiagnosticServer(ServerOptions options, Handlers handlers);
  Status Listen();
  void AcceptLoop();
  void Serve(ScopedFd conn, PeerInfo peer);

  ServerOptions options_;
  Handlers handlers_;
  std::string name_;
  std::string path_;
  ScopedFd path_fd_;
  ScopedFd abstract_fd_;
  ScopedFd stop_fd_;
  std::thread accept_thread_;
  std::mutex mu_;
  std::condition_variable idle_;
  int active_ = 0;  // guarded by mu_
  std::atomic<uint64_t> served_{0};
  std::atomic<uint64_t> refused_{0};
};

// What the server does with one connection, less the socket options: reads
// one request frame from `fd`, runs its handler, and returns the reply frame
// (an error reply for anything malformed). Exposed for the fuzzer.
std::string HandleRequest(int fd, const DiagnosticServer::Handlers& handlers, const PeerInfo& peer);

// The error reply payload: {"error": message, "code": "EINVAL"}.
std::string ErrorReply(const Error& error);

}  // namespace cppdiag::ipc

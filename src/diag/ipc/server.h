// The diagnostic server: a thread in the target that listens on
// $TMPDIR/cppdiag-<pid>-<start-time>-socket (mode 0600) and on the same name
// in the abstract namespace (either one is enough: if one cannot be bound the
// server runs on the other), checks each peer (peer_auth.h: the same uid or
// root, and no unmapped peer showing as the overflow uid), reads one request
// frame, runs its handler and writes the reply (request.h).
//
// A malformed, oversized, too deeply nested or slow request gets an error
// reply (when the peer can still read one) and the server keeps serving. Up
// to `max_connections` requests are served at once, each on its own thread;
// the commands in `exclusive_commands` one at a time. The server's threads
// are exempt from the heap hard limit; an exception in a handler, or memory,
// threads or descriptors running out, gets an error reply (from a frame that
// needs no allocation when need be), never ends the process. Refusals and
// accept failures are logged at most once a second.
//
//   DiagnosticServer::Handlers h;
//   h[ipc::Command::kProcessInfo] = [](const nlohmann::json&, const PeerInfo&) { ... };
//   auto server = DiagnosticServer::Start({.tmpdir = "/tmp"}, std::move(h));
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "common/scoped_fd.h"
#include "common/status.h"
#include "diag/ipc/internal/peer_auth.h"
#include "diag/ipc/protocol.h"
#include "diag/ipc/request.h"

namespace cppdiag::ipc {

struct ServerOptions {
  std::string tmpdir = "/tmp";
  bool abstract_socket = true;  // also listen in the abstract namespace
  int max_connections = 32;
  // The whole request, from accept to its last byte.
  std::chrono::milliseconds read_timeout{5000};
  // Each frame sent: a progress frame, or the reply.
  std::chrono::milliseconds write_timeout{10000};
  // Served one at a time (another request meanwhile gets EBUSY): their
  // replies can be large, and a few at once would hold that much memory each.
  std::set<Command> exclusive_commands = {Command::kHeapSnapshot};
};

class DiagnosticServer {
 public:
  using Handler = ipc::Handler;
  using Handlers = ipc::Handlers;

  static Result<std::unique_ptr<DiagnosticServer>> Start(ServerOptions options, Handlers handlers);
  ~DiagnosticServer();  // stops serving, waits for requests in flight, removes the socket file

  // Empty when the file socket could not be bound (the abstract one serves).
  const std::string& socket_path() const { return path_; }
  const std::string& socket_name() const { return name_; }
  uint64_t requests_served() const { return served_.load(); }
  uint64_t requests_refused() const { return refused_.load(); }

  // For the child of fork(): closes the server's descriptors (the listeners
  // and the stop eventfd are the parent's: writing it would stop the parent's
  // server) and the connections accepted from them (requests in flight in
  // the parent), without touching the socket file or any thread, which exist
  // only in the parent. The object must then never be destroyed (leak it).
  // Async-signal-safe.
  void AbandonInForkedChild();

 private:
  enum class AcceptResult { kAgain, kBackOff, kDropListener };

  DiagnosticServer(ServerOptions options, Handlers handlers);
  Status Listen();
  void AcceptLoop();
  void CloseAcceptedConnections();
  bool IsOurConnection(int fd) const;
  AcceptResult AcceptOne(int listener);
  bool ShedWithReserve(int listener);
  void Admit(ScopedFd conn, Deadline request_deadline);
  void Serve(ScopedFd conn, const PeerInfo& peer, Deadline request_deadline);
  void ServeRequest(int fd, const PeerInfo& peer, Deadline request_deadline, FrameWriter* writer);
  // At most one line a second (accept thread only); says how many were held back.
  void LogLimited(const char* format, ...) __attribute__((format(printf, 2, 3)));

  ServerOptions options_;
  Handlers handlers_;
  SelfIdentity self_;
  std::string name_;
  std::string path_;
  ScopedFd path_fd_;
  ScopedFd abstract_fd_;
  ScopedFd stop_fd_;
  // Closed to accept (and answer) one connection when out of descriptors.
  ScopedFd reserve_fd_;
  // Set by the accept thread when someone else closed the descriptor (POLLNVAL):
  // no longer ours to use or close.
  std::atomic<bool> path_lost_{false}, abstract_lost_{false}, stop_lost_{false};
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
  std::mutex mu_;
  std::condition_variable idle_;
  int active_ = 0;                                    // guarded by mu_
  uint32_t exclusive_running_ = 0;                    // bit per command code; guarded by mu_
  std::chrono::steady_clock::time_point last_log_{};  // accept thread only
  uint64_t logs_held_back_ = 0;                       // accept thread only
  std::atomic<uint64_t> served_{0};
  std::atomic<uint64_t> refused_{0};
};

}  // namespace cppdiag::ipc

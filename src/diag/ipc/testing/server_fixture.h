// The diagnostic server's test fixture: a server on this process, its
// sockets in a fresh directory, with handlers that answer ProcessInfo (pid,
// peer uid, an echo) and Dump (progress frames when asked for, an error for
// type "bad"), and a 300 ms read deadline.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "diag/ipc/client.h"
#include "diag/ipc/server.h"
#include "support/scoped_temp_dir.h"

namespace cppdiag::ipc::testing {

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override { server_.reset(); }
  // Starts server_ in dir_ with `handlers` (what SetUp does with its own).
  void StartServer(DiagnosticServer::Handlers handlers);
  Endpoint endpoint() const { return {server_->socket_path(), ""}; }

  ::cppdiag::testing::ScopedTempDir tmp_{"cppdiag-ipc"};
  std::string dir_ = tmp_.path();
  std::unique_ptr<DiagnosticServer> server_;
};

// Handlers with one command, ProcessInfo, that answers {"ok": true}.
DiagnosticServer::Handlers OkHandlers();

}  // namespace cppdiag::ipc::testing

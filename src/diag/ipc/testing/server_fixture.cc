#include "diag/ipc/testing/server_fixture.h"

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <utility>

#include "support/status_matchers.h"

namespace cppdiag::ipc::testing {

void ServerTest::SetUp() {
  DiagnosticServer::Handlers h;
  h[Command::kProcessInfo] = [](const nlohmann::json& req, const PeerInfo& peer) {
    return Result<nlohmann::json>(nlohmann::json{
        {"pid", ::getpid()}, {"peer_uid", peer.uid}, {"echo", req.value("echo", "")}});
  };
  h[Command::kDump] = [](const nlohmann::json& req,
                         const PeerInfo& peer) -> Result<nlohmann::json> {
    if (req.at("type").get<std::string>() == "bad") return Error::Invalid("no such type");
    int frames = 0;
    if (peer.progress) {  // only when the request asked for it
      for (uint64_t done = 0; done <= 300; done += 100, ++frames) {
        peer.progress({{"bytes_written", done}, {"bytes_total", 300}});
      }
    }
    return nlohmann::json{{"ok", true}, {"frames", frames}};
  };
  StartServer(std::move(h));
}

void ServerTest::StartServer(DiagnosticServer::Handlers handlers) {
  auto s = DiagnosticServer::Start({.tmpdir = dir_, .read_timeout = std::chrono::milliseconds(300)},
                                   std::move(handlers));
  ASSERT_THAT(s, ::cppdiag::testing::IsOk());
  server_ = std::move(*s);
}

DiagnosticServer::Handlers OkHandlers() {
  DiagnosticServer::Handlers h;
  h[Command::kProcessInfo] = [](const nlohmann::json&, const PeerInfo&) {
    return Result<nlohmann::json>(nlohmann::json{{"ok", true}});
  };
  return h;
}

}  // namespace cppdiag::ipc::testing

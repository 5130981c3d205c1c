// libFuzzer target: any bytes sent to the diagnostic socket get a well-formed
// reply frame and never crash or hang the server's request path.
//
//   cmake --preset fuzz && cmake --build --preset fuzz --target request_fuzzer
//   build/fuzz/tests/fuzz/request_fuzzer -max_total_time=600 tests/fuzz/corpus
#include <sys/socket.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>

#include "common/io.h"
#include "common/scoped_fd.h"
#include "diag/ipc/protocol.h"
#include "diag/ipc/server.h"

using namespace cppdiag;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ipc::DiagnosticServer::Handlers handlers = [] {
    ipc::DiagnosticServer::Handlers h;
    // Handlers that read fields the way the real ones do, so type errors in
    // fuzzed JSON reach them.
    h[ipc::Command::kProcessInfo] = [](const nlohmann::json& req, const ipc::PeerInfo&) {
      return Result<nlohmann::json>(nlohmann::json{{"echo", req.value("echo", "")}});
    };
    h[ipc::Command::kDump] = [](const nlohmann::json& req,
                                const ipc::PeerInfo&) -> Result<nlohmann::json> {
      std::string type = req.value("type", "heap");
      std::string path = req.value("path", "");
      bool overwrite = req.value("overwrite", false);
      if (type != "heap" && type != "full") return Error::Invalid("bad type");
      return nlohmann::json{{"path", path}, {"overwrite", overwrite}};
    };
    return h;
  }();
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) std::abort();
  ScopedFd client(sv[0]), server(sv[1]);
  // The writer runs beside the reader: inputs may exceed the socket buffer.
  std::thread writer([&] {
    (void)SendAllRaw(client.get(), data, size);
    ::shutdown(client.get(), SHUT_WR);
  });
  std::string reply = ipc::HandleRequest(server.get(), handlers, ipc::PeerInfo{});
  writer.join();
  auto header = ipc::DecodeHeader(reply, ipc::kMaxReplyPayload);
  if (!header || header->payload_size + ipc::kHeaderSize != reply.size()) std::abort();
  auto body = nlohmann::json::parse(reply.substr(ipc::kHeaderSize), nullptr, false);
  if (body.is_discarded()) std::abort();
  if (header->code == static_cast<uint16_t>(ipc::ReplyStatus::kError) && !body.contains("error")) {
    std::abort();
  }
  return 0;
}

// libFuzzer target: any bytes sent to the diagnostic socket get a well-formed
// reply frame from the real handlers (ipc::MakeHandlers: process-info,
// counters, heap-snapshot, dump with its path confinement), never crash or
// hang the request path, and never put a dump outside the dump directory.
//
//   cmake --preset fuzz && cmake --build --preset fuzz --target request_fuzzer
//   build/fuzz/tests/fuzz/request_fuzzer -max_total_time=600 tests/fuzz/corpus
//
// Dumps: the real dump handler runs, path confinement and all, on a
// temporary CPPDIAG_DUMP_DIR that holds the traps confinement must see (a
// symbolic link out, a symlinked directory out, a subdirectory, a FIFO, an
// existing file) and that this process cannot write to: the fuzzer drops
// CAP_DAC_OVERRIDE, so even as root the dump writer's first step, creating
// its temporary file, fails before any thread is stopped. Every input stays
// fast (no capture, no fork, no file), and the real writer is the judge of
// where a dump would land: its "open <path>: ..." error must name a path in
// the dump directory, and a dump that succeeds was written where it may not
// be (the dump directory is read-only): both are crashes. (Writing real
// dumps would also run the dump engine's raw reads of its own stack under
// ASan, which they are not built for.)
#include <dirent.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "common/io.h"
#include "common/scoped_fd.h"
#include "diag/dump/self_dump.h"
#include "diag/ipc/protocol.h"
#include "diag/ipc/request.h"
#include "diag/request_handlers.h"

using namespace cppdiag;

namespace {

[[noreturn]] void Fail(const std::string& why) {
  std::fprintf(stderr, "request_fuzzer: %s\n", why.c_str());
  std::abort();
}

struct Fixture {
  std::string base;      // the fuzzer's temporary directory
  std::string dump_dir;  // base/dumps: CPPDIAG_DUMP_DIR, read-only
  std::string outside;   // base/outside: must stay empty
  RuntimeInfo runtime;
  ipc::Handlers handlers;
};

// Names in `dir` (not "." and "..").
std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
  }
  return names;
}

// Root too must not write in the dump directory: the capabilities that
// bypass file modes go, from this thread and the threads it starts.
void DropDacOverride() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capget, &header, data) != 0) Fail("capget");
  for (int cap : {CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER}) {
    data[cap / 32].effective &= ~(1u << (cap % 32));
    data[cap / 32].permitted &= ~(1u << (cap % 32));
  }
  if (::syscall(SYS_capset, &header, data) != 0) Fail("capset");
}

const Fixture& GetFixture() {
  static Fixture* f = [] {
    auto* f = new Fixture;
    char tmpl[] = "/tmp/cppdiag-fuzz-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) Fail("mkdtemp");
    f->base = tmpl;
    f->dump_dir = f->base + "/dumps";
    f->outside = f->base + "/outside";
    // The traps, then the directory made read-only.
    if (::mkdir(f->dump_dir.c_str(), 0700) != 0 || ::mkdir(f->outside.c_str(), 0700) != 0 ||
        ::symlink("../outside/victim", (f->dump_dir + "/link").c_str()) != 0 ||
        ::symlink("../outside", (f->dump_dir + "/escape").c_str()) != 0 ||
        ::mkdir((f->dump_dir + "/sub").c_str(), 0500) != 0 ||
        ::mkfifo((f->dump_dir + "/fifo").c_str(), 0600) != 0 ||
        !WriteStringToFile(f->dump_dir + "/existing", "x").ok() ||
        ::chmod(f->dump_dir.c_str(), 0500) != 0) {
      Fail("cannot lay out the dump directory in " + f->base);
    }
    DropDacOverride();
    f->runtime.config.dump_type = DumpType::kTriage;
    f->runtime.config.dump_name = f->dump_dir + "/core.%p.%t";
    f->runtime.config.dump_dir = f->dump_dir;
    dump::SelfDumpConfig dc;
    dc.default_type = DumpType::kTriage;
    dc.name_template = f->runtime.config.dump_name;
    if (auto s = dump::PrepareSelfDump(dc); !s) Fail(s.error().message());
    f->handlers = MakeRequestHandlers(f->runtime);
    if (f->handlers.count(ipc::Command::kDump) == 0) Fail("no dump handler");
    // Traces parse the input as they would, but last at most 20 ms (a
    // trace until stopped, or of minutes, would stall the fuzzer).
    if (f->handlers.count(ipc::Command::kTrace) == 0) Fail("no trace handler");
    f->handlers[ipc::Command::kTrace] = [trace = f->handlers[ipc::Command::kTrace]](
                                            const nlohmann::json& req, const ipc::PeerInfo& peer) {
      nlohmann::json capped = req;
      auto d = capped.find("duration_ms");
      if (d == capped.end() ||
          (d->is_number() && (d->get<double>() == 0 || d->get<double>() > 20))) {
        capped["duration_ms"] = 20;
      }
      return trace(capped, peer);
    };
    std::atexit([] {  // libFuzzer ends with exit(): leave no directory behind
      const Fixture& fx = GetFixture();
      ::chmod(fx.dump_dir.c_str(), 0700);  // its owner may, without CAP_FOWNER
      std::error_code ec;
      std::filesystem::remove_all(fx.base, ec);
    });
    return f;
  }();
  return *f;
}

bool Inside(const std::string& dump_dir, const std::string& path) {
  char real_dir[PATH_MAX], real_parent[PATH_MAX];
  std::string parent = path.substr(0, path.rfind('/'));
  if (::realpath(dump_dir.c_str(), real_dir) == nullptr ||
      ::realpath(parent.c_str(), real_parent) == nullptr) {
    return false;
  }
  std::string dir = real_dir, got = real_parent;
  return got == dir || got.rfind(dir + "/", 0) == 0;
}

// What a dump reply says of where the dump went, against the dump dir.
void CheckDumpReply(const Fixture& f, uint16_t status, const nlohmann::json& body) {
  if (status == static_cast<uint16_t>(ipc::ReplyStatus::kOk)) {
    Fail("a dump was written although the dump directory is read-only: " + body.dump());
  }
  std::string error = body.is_object() && body["error"].is_string() ? body["error"] : "";
  // The writer's "open <path>: <reason>": confinement let this path through.
  if (error.rfind("open /", 0) == 0) {
    std::string path = error.substr(5, error.rfind(": ") - 5);
    if (!Inside(f.dump_dir, path)) Fail("a dump would have been written outside: " + error);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Fixture& f = GetFixture();
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) std::abort();
  ScopedFd client(sv[0]), server(sv[1]);
  // The writer runs beside the reader: inputs may exceed the socket buffer.
  std::thread writer([&] {
    (void)SendAllRaw(client.get(), data, size);
    ::shutdown(client.get(), SHUT_WR);
  });
  std::string reply =
      ipc::HandleRequest(server.get(), f.handlers, ipc::PeerInfo{},
                         std::chrono::steady_clock::now() + std::chrono::seconds(5));
  writer.join();
  auto header = ipc::DecodeHeader(reply, ipc::kMaxReplyPayload);
  if (!header || header->payload_size + ipc::kHeaderSize != reply.size()) Fail("malformed frame");
  auto body = nlohmann::json::parse(reply.substr(ipc::kHeaderSize), nullptr, false);
  if (body.is_discarded()) Fail("reply is not JSON");
  if (header->code == static_cast<uint16_t>(ipc::ReplyStatus::kError) && !body.contains("error")) {
    Fail("error reply without an error");
  }
  auto request = ipc::DecodeHeader({reinterpret_cast<const char*>(data), size}, UINT32_MAX);
  if (request && request->code == static_cast<uint16_t>(ipc::Command::kDump)) {
    CheckDumpReply(f, header->code, body);
  }
  if (!Entries(f.outside).empty()) Fail("something was written next to the dump dir");
  for (const auto& n : Entries(f.base)) {
    if (n != "dumps" && n != "outside") Fail("something was written beside the dump dir: " + n);
  }
  return 0;
}

#include "integration/leakapp/leakapp_process.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <regex>

#include "common/io.h"
#include "common/proc.h"
#include "common/scoped_fd.h"

namespace cppdiag::testing {

LeakappProcess::LeakappProcess(LeakappOptions options) : options_(std::move(options)) { Start(); }

void LeakappProcess::Start() {
  SubprocessOptions so;
  // Port 0: leakapp binds a free one and logs it (WaitUntilReady reads it).
  so.argv = {BuiltBinary("leakapp"), "--bind", "127.0.0.1", "--port", "0"};
  so.cgroup_procs = options_.cgroup_procs;
  so.env = options_.env;
  // What the test environment might set must not change what is tested.
  so.unset_env = {"LEAKAPP_PORT",
                  "SPDLOG_LEVEL",
                  "CPPDIAG_HEAP_HARD_LIMIT",
                  "CPPDIAG_ENABLE_DUMP_ON_CRASH",
                  "CPPDIAG_OOM_DUMP_THRESHOLD",
                  "CPPDIAG_DUMP_NAME",
                  "CPPDIAG_DUMP_DIR",
                  "CPPDIAG_DUMP_TYPE"};
  process_ = std::make_unique<Subprocess>(so);
  // No core files from the crash tests (the crash dumps are another test's).
  rlimit no_core{0, 0};
  ::prlimit(process_->pid(), RLIMIT_CORE, &no_core, nullptr);
}

::testing::AssertionResult LeakappProcess::WaitUntilReady() {
  if (port_ == 0) {
    std::optional<int> port = WaitForListeningPort(*process_, std::chrono::seconds(10));
    if (!port) {
      if (!process_->running()) {
        return ::testing::AssertionFailure()
               << "leakapp ended before it was ready: " << process_->Wait({})->ToString() << "\n"
               << Output();
      }
      return ::testing::AssertionFailure() << "leakapp not listening within 10 s\n" << Output();
    }
    port_ = *port;
  }
  bool ready = PollUntil(
      [&] {
        if (!process_->running()) return true;
        auto res = Get("/readyz");
        return res && res->status == 200;
      },
      std::chrono::seconds(10));
  if (!process_->running()) {
    return ::testing::AssertionFailure()
           << "leakapp ended before it was ready: " << process_->Wait({})->ToString() << "\n"
           << Output();
  }
  if (!ready) return ::testing::AssertionFailure() << "leakapp not ready within 10 s\n" << Output();
  return ::testing::AssertionSuccess();
}

httplib::Result LeakappProcess::Get(const std::string& target) {
  httplib::Client client("127.0.0.1", port_);
  client.set_connection_timeout(std::chrono::seconds(2));
  client.set_read_timeout(std::chrono::seconds(10));
  return client.Get(target);
}

httplib::Result LeakappProcess::Post(const std::string& target) {
  httplib::Client client("127.0.0.1", port_);
  client.set_connection_timeout(std::chrono::seconds(2));
  client.set_read_timeout(std::chrono::seconds(10));
  return client.Post(target);
}

std::string LeakappProcess::RawRequest(const std::string& request) {
  ScopedFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  timeval timeout{3, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port_));
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return "";
  if (!WriteAll(fd.get(), request.data(), request.size())) return "";
  std::string response;
  char buf[4096];
  for (;;) {
    ssize_t n = HANDLE_EINTR(::read(fd.get(), buf, sizeof buf));
    if (n <= 0) break;  // closed, or the 3 s timeout
    response.append(buf, static_cast<size_t>(n));
  }
  return response;
}

nlohmann::json LeakappProcess::GetJson(const std::string& target) {
  auto res = Get(target);
  EXPECT_TRUE(res) << "GET " << target << ": " << httplib::to_string(res.error());
  if (!res) return nullptr;
  EXPECT_EQ(res->status, 200) << "GET " << target << ": " << res->body;
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  auto json = nlohmann::json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(json.is_discarded()) << "GET " << target << " is not JSON: " << res->body;
  return json.is_discarded() ? nlohmann::json(nullptr) : json;
}

::testing::AssertionResult LeakappProcess::WaitForLeakState(const std::string& state) {
  std::string last;
  bool reached = PollUntil(
      [&] {
        auto res = Get("/status");
        if (!res || res->status != 200) return false;
        auto json = nlohmann::json::parse(res->body, nullptr, false);
        if (json.is_discarded()) return false;
        last = json["leak"]["state"].dump();
        return json["leak"]["state"] == state;
      },
      std::chrono::seconds(10));
  if (reached) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "leak state still " << last << ", not \"" << state << "\", after 10 s\n"
         << Output();
}

uint64_t LeakappProcess::Rss() const {
  auto status = ReadProcStatus(process_->pid());
  return status ? status->vm_rss_bytes : 0;
}

uint64_t LeakappProcess::VmSize() const {
  auto status = ReadProcStatus(process_->pid());
  return status ? status->vm_size_bytes : 0;
}

std::vector<double> LeakappProcess::LoggedTotals() const {
  static const std::regex kRound(R"(Allocated ([0-9.]+) MB this round, Total: ([0-9.]+) MB)");
  std::vector<double> totals;
  std::string out = process_->Stdout();
  for (auto it = std::sregex_iterator(out.begin(), out.end(), kRound); it != std::sregex_iterator();
       ++it) {
    totals.push_back(std::stod((*it)[2]));
  }
  return totals;
}

std::string LeakappProcess::Output() const {
  return "--- leakapp stdout ---\n" + process_->Stdout() + "--- leakapp stderr ---\n" +
         process_->Stderr();
}

}  // namespace cppdiag::testing

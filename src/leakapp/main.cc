// leakapp: a web service that leaks memory on purpose (see http_server.h).
//
//   leakapp [--port 8080] [--bind 0.0.0.0]     (LEAKAPP_PORT also sets the port)
//
// Exit status: 0 after SIGTERM/SIGINT, 1 if the server cannot listen, 2 on
// bad flags or a bad CPPDIAG_* variable.
#include <signal.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/parse.h"
#include "diag/runtime.h"
#include "leakapp/http_server.h"
#include "leakapp/leak_engine.h"
#include "leakapp/logging.h"
#include "leakapp/shutdown_signals.h"

namespace {

std::string DescribeLimit(const std::optional<uint64_t>& bytes) {
  return bytes ? cppdiag::FormatBytes(*bytes) + " (" + std::to_string(*bytes) + " bytes)" : "none";
}

void LogStartup(const cppdiag::RuntimeInfo& rt) {
  spdlog::info("leakapp starting: pid {}", ::getpid());
  spdlog::info("Heap hard limit: {}", DescribeLimit(rt.heap_hard_limit_bytes));
  if (rt.cgroup) {
    spdlog::info("Memory cgroup v{}: {}, usage {}, limit {}", rt.cgroup->version, rt.cgroup->dir,
                 cppdiag::FormatBytes(rt.cgroup->usage_bytes),
                 DescribeLimit(rt.cgroup->limit_bytes));
  } else {
    spdlog::info("Memory cgroup: none found");
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Before anything can start a thread (the runtime may), so that only the
  // watcher thread ever takes these signals.
  leakapp::BlockShutdownSignals();
  // leakapp's heap hard limit defaults to 75% of the cgroup limit.
  auto runtime = cppdiag::StartRuntime(*cppdiag::ParseSizeOrPercent("75%"));
  if (!runtime) {
    std::fprintf(stderr, "leakapp: %s\n", runtime.error().message().c_str());
    return 2;
  }

  CLI::App app{"leakapp: a web service that leaks memory on purpose", "leakapp"};
  int port = 8080;
  std::string bind = "0.0.0.0";
  app.add_option("--port", port, "TCP port to listen on (0: any free one, logged)")
      ->envname("LEAKAPP_PORT")
      ->type_name("PORT")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option("--bind", bind, "address to listen on")
      ->type_name("ADDRESS")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    std::replace(what.begin(), what.end(), '\n', ' ');
    std::fprintf(stderr, "leakapp: %s (see --help)\n", what.c_str());
    return 2;
  }

  leakapp::SetUpLogging();
  LogStartup(**runtime);

  leakapp::LeakEngine engine;
  leakapp::HttpServer server(engine, (*runtime)->heap_hard_limit_bytes);
  if (auto bound = server.Bind(bind, port); !bound) {
    spdlog::error("{}", bound.error().message());
    return 1;
  }
  cppdiag::Status served;
  {
    leakapp::ShutdownSignalWatcher watcher([&server](int sig) {
      spdlog::info("Received {}, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
      server.Shutdown();
    });
    served = server.Serve();
  }
  engine.Stop();
  if (!served) {
    spdlog::error("{}", served.error().message());
    return 1;
  }
  spdlog::info("Stopped");
  return 0;
}

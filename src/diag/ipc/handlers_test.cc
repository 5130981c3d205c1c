#include "diag/ipc/handlers.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>

#include "common/io.h"
#include "diag/dump/note_provider.h"
#include "diag/dump/self_dump.h"

namespace cppdiag::ipc {
namespace {

namespace fs = std::filesystem;

// The Dump handler on this process, with a dump directory of its own.
class DumpHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cppdiag-handlers-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/dumps";
    fs::create_directories(dir_);
    dump::SelfDumpConfig c;
    c.default_type = DumpType::kMini;
    c.name_template = dir_ + "/core.%p.%r";
    c.cgroup_version = -1;  // no memory limit known: kAuto forks
    ASSERT_TRUE(dump::PrepareSelfDump(c).ok());
    runtime_.config.dump_type = DumpType::kMini;
    runtime_.config.dump_name = c.name_template;
    runtime_.config.dump_dir = dir_;
    handlers_ = MakeHandlers(runtime_);
    ASSERT_TRUE(handlers_.count(Command::kDump));
  }
  void TearDown() override { fs::remove_all(root_); }

  Result<nlohmann::json> Dump(const nlohmann::json& request, const PeerInfo& peer = {}) {
    return handlers_.at(Command::kDump)(request, peer);
  }
  std::vector<std::string> Files(const std::string& dir) const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename());
    std::sort(out.begin(), out.end());
    return out;
  }

  std::string root_, dir_;
  RuntimeInfo runtime_;
  DiagnosticServer::Handlers handlers_;
};

// Holds the fork-mode writer (the provider runs in the child) in its writing
// pass until two bytes came: one from the first progress frame, one from a
// frame sent while the child writes.
struct Gate {
  int read_fd = -1;
  int calls = 0;
};

void GatedProvider(void* context, dump::NoteOutput* out) {
  auto* g = static_cast<Gate*>(context);
  if (g->calls++ == 1) {
    char c[2];
    (void)ReadExactlyRaw(g->read_fd, c, sizeof c);
  }
  out->Begin("TEST", 1, 4);
  out->Append("abcd", 4);
}

TEST_F(DumpHandlerTest, AProgressFrameThatThrowsStopsNeitherThisDumpNorTheNext) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  Gate gate{fds[0]};
  ASSERT_EQ(dump::RegisterNoteProvider(&GatedProvider, &gate), 0);
  int frames = 0;
  PeerInfo peer;
  peer.progress = [&](const nlohmann::json&) {
    ++frames;
    char c = 1;
    (void)::write(fds[1], &c, 1);
    throw std::bad_alloc();  // what building or sending a frame may throw
  };
  Result<nlohmann::json> first = Error(EINVAL, "", "not run");
  try {
    first = Dump({{"path", "first.core"}, {"type", "mini"}}, peer);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "an exception crossed the handler: " << e.what();
  }
  dump::UnregisterNoteProvider(&GatedProvider, &gate);
  ::close(fds[0]);
  ::close(fds[1]);
  ASSERT_TRUE(first.ok()) << first.error().message();
  EXPECT_EQ(first->value("mode", ""), "fork");
  EXPECT_GE(frames, 2);

  auto second = Dump({{"path", "second.core"}, {"type", "mini"}});
  EXPECT_TRUE(second.ok()) << second.error().message();
  EXPECT_EQ(Files(dir_), (std::vector<std::string>{"first.core", "second.core"}));
}

}  // namespace
}  // namespace cppdiag::ipc

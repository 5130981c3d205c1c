#include "common/proc.h"
#include "support/status_matchers.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

namespace cppdiag {
namespace {

using ::cppdiag::testing::IsOk;

TEST(ProcStat, ParsesCommWithSpacesAndParens) {
  const char* line =
      "1234 (my (weird) app) S 1 1230 1234 0 -1 4194560 500 0 7 0 12 34 0 0 20 0 3 0 "
      "987654 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
  auto st = ParseProcStat(line);
  ASSERT_THAT(st, IsOk());
  EXPECT_EQ(st->pid, 1234);
  EXPECT_EQ(st->comm, "my (weird) app");
  EXPECT_EQ(st->state, 'S');
  EXPECT_EQ(st->ppid, 1);
  EXPECT_EQ(st->pgrp, 1230);
  EXPECT_EQ(st->minor_faults, 500u);
  EXPECT_EQ(st->major_faults, 7u);
  EXPECT_EQ(st->utime_ticks, 12u);
  EXPECT_EQ(st->stime_ticks, 34u);
  EXPECT_EQ(st->num_threads, 3);
  EXPECT_EQ(st->start_time_ticks, 987654u);
  EXPECT_EQ(st->vsize_bytes, 104857600u);
  EXPECT_EQ(st->rss_pages, 2560);
}

TEST(ProcStat, RejectsTruncatedLines) {
  EXPECT_FALSE(ParseProcStat("1234 (x) S 1 2").ok());
  EXPECT_FALSE(ParseProcStat("garbage").ok());
}

TEST(ProcStat, ReadsThisProcess) {
  auto st = ReadProcStat(getpid());
  ASSERT_THAT(st, IsOk());
  EXPECT_EQ(st->pid, getpid());
  EXPECT_EQ(st->ppid, getppid());
  EXPECT_EQ(st->pgrp, getpgrp());
  EXPECT_GT(st->start_time_ticks, 0u);
}

TEST(ProcStatus, ReadsThisProcess) {
  auto st = ReadProcStatus(getpid());
  ASSERT_THAT(st, IsOk());
  EXPECT_EQ(st->pid, getpid());
  EXPECT_EQ(st->real_uid, getuid());
  EXPECT_GE(st->threads, 1);
  EXPECT_GT(st->vm_rss_bytes, 0u);
  EXPECT_GE(st->vm_hwm_bytes, st->vm_rss_bytes);
}

TEST(Maps, ParsesEveryKindOfLine) {
  MapsLine m;
  ASSERT_TRUE(ParseMapsLine(
      "7f0c1a2b3000-7f0c1a2b5000 r-xp 0001a000 fd:01 1234567    /usr/lib/libc.so.6", &m));
  EXPECT_EQ(m.start, 0x7f0c1a2b3000u);
  EXPECT_EQ(m.end, 0x7f0c1a2b5000u);
  EXPECT_TRUE(m.read);
  EXPECT_FALSE(m.write);
  EXPECT_TRUE(m.exec);
  EXPECT_FALSE(m.shared);
  EXPECT_EQ(m.offset, 0x1a000u);
  EXPECT_EQ(m.dev_major, 0xfdu);
  EXPECT_EQ(m.dev_minor, 1u);
  EXPECT_EQ(m.inode, 1234567u);
  EXPECT_EQ(m.path, "/usr/lib/libc.so.6");

  ASSERT_TRUE(ParseMapsLine("55d0a0000000-55d0a0021000 rw-p 00000000 00:00 0 ", &m));
  EXPECT_EQ(m.path, "");
  ASSERT_TRUE(
      ParseMapsLine("7ffd00000000-7ffd00021000 rw-s 00000000 00:05 9 /dev/zero (deleted)", &m));
  EXPECT_TRUE(m.shared);
  EXPECT_EQ(m.path, "/dev/zero (deleted)");
  EXPECT_FALSE(ParseMapsLine("zz-10 rw-p 0 0:0 0", &m));
  EXPECT_FALSE(ParseMapsLine("1000-2000", &m));
}

TEST(Maps, ReadsThisProcessAndFindsTheStack) {
  auto maps = ReadMaps(getpid());
  ASSERT_THAT(maps, IsOk());
  int local = 0;
  auto addr = reinterpret_cast<uint64_t>(&local);
  bool found = false;
  for (const auto& m : *maps) {
    if (addr >= m.start && addr < m.end) found = m.write && m.path == "[stack]";
  }
  EXPECT_TRUE(found);
}

TEST(Environ, ReadsThisProcess) {
  ::setenv("CPPDIAG_PROC_TEST_VAR", "x", 1);  // not in environ: that is the start-up copy
  auto env = ReadEnviron(getpid());
  ASSERT_THAT(env, IsOk());
  EXPECT_FALSE(env->contains("CPPDIAG_PROC_TEST_VAR"));
  EXPECT_TRUE(env->contains("PATH") || env->empty());
}

TEST(Cmdline, ListThreadsAndPids) {
  auto argv = ReadCmdline(getpid());
  ASSERT_THAT(argv, IsOk());
  ASSERT_FALSE(argv->empty());
  EXPECT_NE((*argv)[0].find("common_unit_test"), std::string::npos);
  auto tids = ListThreads(getpid());
  ASSERT_THAT(tids, IsOk());
  EXPECT_EQ(tids->front(), getpid());
  auto pids = ListPids();
  ASSERT_THAT(pids, IsOk());
  EXPECT_TRUE(std::find(pids->begin(), pids->end(), getpid()) != pids->end());
  EXPECT_FALSE(ReadProcStat(999999999).ok());
}

}  // namespace
}  // namespace cppdiag

#include "common/cgroup.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "common/io.h"
#include "support/scoped_temp_dir.h"
#include "support/status_matchers.h"

namespace cppdiag {
namespace {

using ::cppdiag::testing::IsOk;

namespace fs = std::filesystem;

// A fake root with /proc/self/{cgroup,mountinfo} and a cgroup filesystem.
class FixtureTree {
 public:
  void Write(const std::string& path, const std::string& content) {
    fs::create_directories(fs::path(root() + path).parent_path());
    ASSERT_THAT(WriteStringToFile(root() + path, content), testing::IsOk());
  }
  const std::string& root() const { return root_.path(); }

 private:
  testing::ScopedTempDir root_{"cppdiag-cgroup"};
};

constexpr const char* kV1MountInfo =
    "25 1 0:22 / / rw - ext4 /dev/vda rw\n"
    "30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"
    "33 30 0:29 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n"
    "34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
    "35 30 0:31 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";

TEST(Cgroup, V1ReadsUsageAndTheSmallerOfOwnAndHierarchicalLimit) {
  FixtureTree t;
  t.Write("/proc/self/mountinfo", kV1MountInfo);
  t.Write("/proc/self/cgroup",
          "5:cpu,cpuacct:/app\n4:memory:/kubepods/pod1/app\n0::/kubepods/pod1/app\n");
  const std::string dir = "/sys/fs/cgroup/memory/kubepods/pod1/app";
  t.Write(dir + "/memory.usage_in_bytes", "104857600\n");
  t.Write(dir + "/memory.limit_in_bytes", "9223372036854771712\n");
  t.Write(dir + "/memory.stat", "cache 0\nrss 100\nhierarchical_memory_limit 268435456\n");
  auto mem = CgroupReader(t.root()).ReadMemory();
  ASSERT_THAT(mem, IsOk());
  EXPECT_EQ(mem->version, 1);
  EXPECT_EQ(mem->dir, t.root() + dir);
  EXPECT_EQ(mem->usage_bytes, 100u << 20);
  ASSERT_TRUE(mem->limit_bytes.has_value());
  EXPECT_EQ(*mem->limit_bytes, 256u << 20);
}

TEST(Cgroup, V1UnlimitedHasNoLimit) {
  FixtureTree t;
  t.Write("/proc/self/mountinfo", kV1MountInfo);
  t.Write("/proc/self/cgroup", "4:memory:/\n");
  t.Write("/sys/fs/cgroup/memory/memory.usage_in_bytes", "5\n");
  t.Write("/sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
  auto mem = CgroupReader(t.root()).ReadMemory();
  ASSERT_THAT(mem, IsOk());
  EXPECT_FALSE(mem->limit_bytes.has_value());
}

TEST(Cgroup, V1InsideAContainerMapsTheHostPathThroughTheMountRoot) {
  // The container sees the host's path in /proc/self/cgroup but its own cgroup
  // mounted at the root of /sys/fs/cgroup/memory.
  FixtureTree t;
  t.Write("/proc/self/mountinfo",
          "33 30 0:29 /kubepods/pod1/ctr /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n");
  t.Write("/proc/self/cgroup", "4:memory:/kubepods/pod1/ctr\n");
  t.Write("/sys/fs/cgroup/memory/memory.usage_in_bytes", "4096\n");
  t.Write("/sys/fs/cgroup/memory/memory.limit_in_bytes", "268435456\n");
  auto mem = CgroupReader(t.root()).ReadMemory();
  ASSERT_THAT(mem, IsOk());
  EXPECT_EQ(mem->dir, t.root() + "/sys/fs/cgroup/memory");
  EXPECT_EQ(*mem->limit_bytes, 256u << 20);
}

// A sidecar sees its own cgroup at the mount point; the app container's
// cgroup beside it is not in its view: an error, never the sidecar's own
// usage and limit read as the app's.
TEST(Cgroup, AnotherContainersCgroupOutsideTheMountsViewIsNotOurs) {
  FixtureTree t;
  t.Write("/proc/self/mountinfo",
          "33 30 0:29 /kubepods/pod1/sidecar /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n");
  t.Write("/proc/self/cgroup", "4:memory:/kubepods/pod1/sidecar\n");
  t.Write("/proc/42/cgroup", "4:memory:/kubepods/pod1/app\n");
  t.Write("/proc/43/cgroup", "4:memory:/kubepods/pod1/sidecar\n");
  t.Write("/sys/fs/cgroup/memory/memory.usage_in_bytes", "4096\n");
  t.Write("/sys/fs/cgroup/memory/memory.limit_in_bytes", "67108864\n");
  auto app = CgroupReader(t.root()).ReadMemory(42);
  ASSERT_FALSE(app.ok()) << "read the sidecar's cgroup as the app's: " << app->dir;
  EXPECT_EQ(app.error().code(), EXDEV);
  EXPECT_NE(app.error().message().find("/kubepods/pod1/app is not visible here"), std::string::npos)
      << app.error().message();
  auto same = CgroupReader(t.root()).ReadMemory(43);  // a process of this container
  ASSERT_THAT(same, IsOk());
  EXPECT_EQ(*same->limit_bytes, 64u << 20);
}

TEST(Cgroup, V2TakesTheSmallestLimitUpTheTree) {
  FixtureTree t;
  t.Write("/proc/self/mountinfo", "35 30 0:31 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
  t.Write("/proc/self/cgroup", "0::/kubepods.slice/pod1/app\n");
  t.Write("/sys/fs/cgroup/cgroup.controllers", "cpu memory\n");
  t.Write("/sys/fs/cgroup/kubepods.slice/cgroup.controllers", "cpu memory\n");
  t.Write("/sys/fs/cgroup/kubepods.slice/memory.max", "1073741824\n");
  t.Write("/sys/fs/cgroup/kubepods.slice/pod1/cgroup.controllers", "memory\n");
  t.Write("/sys/fs/cgroup/kubepods.slice/pod1/memory.max", "209715200\n");
  t.Write("/sys/fs/cgroup/kubepods.slice/pod1/app/cgroup.controllers", "memory\n");
  t.Write("/sys/fs/cgroup/kubepods.slice/pod1/app/memory.max", "max\n");
  t.Write("/sys/fs/cgroup/kubepods.slice/pod1/app/memory.current", "12345\n");
  auto mem = CgroupReader(t.root()).ReadMemory();
  ASSERT_THAT(mem, IsOk());
  EXPECT_EQ(mem->version, 2);
  EXPECT_EQ(mem->usage_bytes, 12345u);
  EXPECT_EQ(*mem->limit_bytes, 200u << 20);
}

TEST(Cgroup, V2InsideAContainerWithoutCgroupNamespace) {
  FixtureTree t;
  t.Write("/proc/self/mountinfo",
          "35 30 0:31 /machine/ctr /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n");
  t.Write("/proc/self/cgroup", "0::/machine/ctr\n");
  t.Write("/sys/fs/cgroup/memory.current", "777\n");
  t.Write("/sys/fs/cgroup/memory.max", "max\n");
  auto mem = CgroupReader(t.root()).ReadMemory();
  ASSERT_THAT(mem, IsOk());
  EXPECT_EQ(mem->dir, t.root() + "/sys/fs/cgroup");
  EXPECT_EQ(mem->usage_bytes, 777u);
  EXPECT_FALSE(mem->limit_bytes.has_value());
}

TEST(Cgroup, HybridPrefersV1MemoryOverAnEmptyV2Hierarchy) {
  FixtureTree t;
  t.Write("/proc/self/mountinfo", kV1MountInfo);
  t.Write("/proc/self/cgroup", "4:memory:/a\n0::/\n");
  t.Write("/sys/fs/cgroup/memory/a/memory.usage_in_bytes", "1\n");
  t.Write("/sys/fs/cgroup/memory/a/memory.limit_in_bytes", "1048576\n");
  t.Write("/sys/fs/cgroup/unified/cgroup.controllers", "\n");
  auto mem = CgroupReader(t.root()).ReadMemory();
  ASSERT_THAT(mem, IsOk());
  EXPECT_EQ(mem->version, 1);
  EXPECT_EQ(*mem->limit_bytes, 1u << 20);
}

TEST(Cgroup, MountPointsWithEscapedSpacesAndMalformedEscapes) {
  FixtureTree t;
  t.Write("/proc/self/mountinfo",
          "33 30 0:29 / /sys/fs/cgroup/mem\\040ory rw - cgroup cgroup rw,memory\n"
          "34 30 0:29 / /bad\\9x rw - ext4 x rw\n");
  t.Write("/proc/self/cgroup", "4:memory:/a\n");
  t.Write("/sys/fs/cgroup/mem ory/a/memory.usage_in_bytes", "1\n");
  t.Write("/sys/fs/cgroup/mem ory/a/memory.limit_in_bytes", "4096\n");
  auto mem = CgroupReader(t.root()).ReadMemory();
  ASSERT_THAT(mem, IsOk());
  EXPECT_EQ(mem->dir, t.root() + "/sys/fs/cgroup/mem ory/a");
}

TEST(Cgroup, NoMemoryControllerIsAClearError) {
  FixtureTree t;
  t.Write("/proc/self/mountinfo", "25 1 0:22 / / rw - ext4 /dev/vda rw\n");
  t.Write("/proc/self/cgroup", "0::/\n");
  auto mem = CgroupReader(t.root()).ReadMemory();
  ASSERT_FALSE(mem.ok());
  EXPECT_NE(mem.error().message().find("memory cgroup"), std::string::npos);
}

TEST(Cgroup, LiveMachineAgreesWithTheCgroupFiles) {
  auto mem = CgroupReader().ReadMemory();
  ASSERT_THAT(mem, IsOk());
  EXPECT_GT(mem->usage_bytes, 0u);
  const char* usage_file = mem->version == 1 ? "/memory.usage_in_bytes" : "/memory.current";
  EXPECT_TRUE(fs::exists(mem->dir + usage_file)) << mem->dir;
}

TEST(CgroupCpu, ParsesCpuMax) {
  auto q = ParseCpuMax("50000 100000");
  ASSERT_THAT(q, IsOk());
  EXPECT_EQ(q->first, 50000u);
  EXPECT_EQ(q->second, 100000u);
  auto unlimited = ParseCpuMax("max 100000");
  ASSERT_THAT(unlimited, IsOk());
  EXPECT_FALSE(unlimited->first.has_value());
  auto quota_only = ParseCpuMax("200000");
  ASSERT_THAT(quota_only, IsOk());
  EXPECT_EQ(quota_only->second, 100000u);
  for (const char* bad : {"", "half 100000", "50000 0", "50000 100000 7", "-1 100000"}) {
    EXPECT_FALSE(ParseCpuMax(bad).ok()) << bad;
  }
}

TEST(CgroupCpu, V1QuotaFromTheCpuHierarchy) {
  FixtureTree t;
  t.Write("/proc/self/mountinfo", kV1MountInfo);
  t.Write("/proc/self/cgroup", "5:cpu,cpuacct:/kubepods/pod1/app\n4:memory:/kubepods/pod1/app\n");
  const std::string dir = "/sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/app";
  t.Write(dir + "/cpu.cfs_quota_us", "50000\n");
  t.Write(dir + "/cpu.cfs_period_us", "100000\n");
  auto cpu = CgroupReader(t.root()).ReadCpu();
  ASSERT_THAT(cpu, IsOk());
  EXPECT_EQ(cpu->version, 1);
  EXPECT_EQ(cpu->dir, t.root() + dir);
  ASSERT_TRUE(cpu->quota_cores.has_value());
  EXPECT_DOUBLE_EQ(*cpu->quota_cores, 0.5);
  EXPECT_EQ(cpu->quota_us, 50000u);
  EXPECT_EQ(cpu->period_us, 100000u);
}

TEST(CgroupCpu, V1UnlimitedChildTakesTheParentsQuota) {
  FixtureTree t;
  t.Write("/proc/self/mountinfo", kV1MountInfo);
  t.Write("/proc/self/cgroup", "5:cpu,cpuacct:/pod/app\n");
  const std::string top = "/sys/fs/cgroup/cpu,cpuacct";
  t.Write(top + "/cpu.cfs_quota_us", "-1\n");
  t.Write(top + "/cpu.cfs_period_us", "100000\n");
  t.Write(top + "/pod/cpu.cfs_quota_us", "150000\n");
  t.Write(top + "/pod/cpu.cfs_period_us", "100000\n");
  t.Write(top + "/pod/app/cpu.cfs_quota_us", "-1\n");
  t.Write(top + "/pod/app/cpu.cfs_period_us", "100000\n");
  auto cpu = CgroupReader(t.root()).ReadCpu();
  ASSERT_THAT(cpu, IsOk());
  ASSERT_TRUE(cpu->quota_cores.has_value());
  EXPECT_DOUBLE_EQ(*cpu->quota_cores, 1.5);
}

TEST(CgroupCpu, V1NoQuotaAnywhere) {
  FixtureTree t;
  t.Write("/proc/self/mountinfo", kV1MountInfo);
  t.Write("/proc/self/cgroup", "5:cpu,cpuacct:/\n");
  t.Write("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
  t.Write("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
  auto cpu = CgroupReader(t.root()).ReadCpu();
  ASSERT_THAT(cpu, IsOk());
  EXPECT_FALSE(cpu->quota_cores.has_value());
}

TEST(CgroupCpu, V2TakesTheSmallestQuotaUpTheTree) {
  FixtureTree t;
  t.Write("/proc/self/mountinfo", "35 30 0:31 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
  t.Write("/proc/self/cgroup", "0::/kubepods.slice/pod1/app\n");
  t.Write("/sys/fs/cgroup/cgroup.controllers", "cpu memory\n");
  t.Write("/sys/fs/cgroup/kubepods.slice/cgroup.controllers", "cpu memory\n");
  t.Write("/sys/fs/cgroup/kubepods.slice/cpu.max", "max 100000\n");
  t.Write("/sys/fs/cgroup/kubepods.slice/pod1/cgroup.controllers", "cpu\n");
  t.Write("/sys/fs/cgroup/kubepods.slice/pod1/cpu.max", "25000 100000\n");
  t.Write("/sys/fs/cgroup/kubepods.slice/pod1/app/cgroup.controllers", "cpu\n");
  t.Write("/sys/fs/cgroup/kubepods.slice/pod1/app/cpu.max", "200000 100000\n");
  auto cpu = CgroupReader(t.root()).ReadCpu();
  ASSERT_THAT(cpu, IsOk());
  EXPECT_EQ(cpu->version, 2);
  EXPECT_EQ(cpu->dir, t.root() + "/sys/fs/cgroup/kubepods.slice/pod1/app");
  ASSERT_TRUE(cpu->quota_cores.has_value());
  EXPECT_DOUBLE_EQ(*cpu->quota_cores, 0.25);
  EXPECT_EQ(cpu->quota_us, 25000u);
}

TEST(CgroupCpu, V2InsideAContainerReadsTheMountRoot) {
  FixtureTree t;
  t.Write("/proc/self/mountinfo",
          "35 30 0:31 /machine/ctr /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n");
  t.Write("/proc/self/cgroup", "0::/machine/ctr\n");
  t.Write("/sys/fs/cgroup/cpu.max", "100000 50000\n");
  auto cpu = CgroupReader(t.root()).ReadCpu();
  ASSERT_THAT(cpu, IsOk());
  EXPECT_EQ(cpu->dir, t.root() + "/sys/fs/cgroup");
  ASSERT_TRUE(cpu->quota_cores.has_value());
  EXPECT_DOUBLE_EQ(*cpu->quota_cores, 2.0);
}

TEST(CgroupCpu, NoCpuHierarchyIsAClearError) {
  FixtureTree t;
  t.Write("/proc/self/mountinfo", "25 1 0:22 / / rw - ext4 /dev/vda rw\n");
  t.Write("/proc/self/cgroup", "4:memory:/a\n");
  auto cpu = CgroupReader(t.root()).ReadCpu();
  ASSERT_FALSE(cpu.ok());
  EXPECT_NE(cpu.error().message().find("cpu cgroup"), std::string::npos) << cpu.error().message();
}

TEST(CgroupCpu, LiveMachineHasACpuHierarchy) {
  auto cpu = CgroupReader().ReadCpu();
  ASSERT_THAT(cpu, IsOk());
  EXPECT_TRUE(fs::exists(cpu->dir)) << cpu->dir;
  const char* quota_file = cpu->version == 1 ? "/cpu.cfs_quota_us" : "/cgroup.controllers";
  EXPECT_TRUE(fs::exists(cpu->dir + quota_file)) << cpu->dir;
  if (cpu->quota_cores) {
    EXPECT_GT(*cpu->quota_cores, 0.0);
  }
}

// A real cgroup with a limit: a child moved into it reports that limit.
TEST(Cgroup, LiveChildInALimitedCgroupReportsItsLimit) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to create a cgroup";
  auto self = CgroupReader().FindMemoryCgroup();
  ASSERT_THAT(self, IsOk());
  auto [version, parent] = *self;
  std::string dir = parent + "/cppdiag-test-" + std::to_string(getpid());
  if (::mkdir(dir.c_str(), 0755) != 0) GTEST_SKIP() << "cannot create a cgroup under " << parent;
  const char* limit_file = version == 1 ? "/memory.limit_in_bytes" : "/memory.max";
  ASSERT_THAT(WriteStringToFile(dir + limit_file, "123731968"), IsOk());  // 118 MiB

  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = ::fork();
  if (child == 0) {
    char c;
    (void)!::read(ready[0], &c, 1);
    ::pause();
    _exit(0);
  }
  ASSERT_THAT(WriteStringToFile(dir + "/cgroup.procs", std::to_string(child)), IsOk());
  auto mem = CgroupReader().ReadMemory(child);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ::rmdir(dir.c_str());
  ASSERT_THAT(mem, IsOk());
  EXPECT_EQ(mem->dir, dir);
  ASSERT_TRUE(mem->limit_bytes.has_value());
  EXPECT_EQ(*mem->limit_bytes, 123731968u);
}

}  // namespace
}  // namespace cppdiag

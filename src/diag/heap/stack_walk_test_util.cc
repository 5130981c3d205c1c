#include "diag/heap/stack_walk_test_util.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

// x86_64 SysV: fn in rdi, arg in rsi, fake_fp in rdx. rbp is callee-saved:
// pushed here, restored after fn returns. The push keeps the stack 16-byte
// aligned at the call.
asm(R"(
  .text
  .globl CppdiagTestCallWithFakeCallerFrame
  .type CppdiagTestCallWithFakeCallerFrame, @function
CppdiagTestCallWithFakeCallerFrame:
  push %rbp
  mov %rdx, %rbp
  mov %rdi, %rax
  mov %rsi, %rdi
  call *%rax
  .globl cppdiag_test_fake_frame_return
cppdiag_test_fake_frame_return:
  pop %rbp
  ret
  .size CppdiagTestCallWithFakeCallerFrame, .-CppdiagTestCallWithFakeCallerFrame
)");

namespace cppdiag::heap::stack_test {

std::string RunInChild(const std::function<void()>& body, int bound_seconds) {
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) return std::string("fork: ") + std::strerror(errno);
  if (pid == 0) {
    body();
    std::fflush(nullptr);
    _exit(::testing::Test::HasFailure() ? 1 : 0);
  }
  // syscall: glibc 2.36's <sys/pidfd.h> lacks extern "C".
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  bool ended = true;
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    int r;
    do {
      r = poll(&p, 1, bound_seconds * 1000);
    } while (r < 0 && errno == EINTR);
    ended = r > 0;
    if (!ended) kill(pid, SIGKILL);  // not reaped yet: the pid is still the child's
    close(pidfd);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!ended) return "hung: still running after " + std::to_string(bound_seconds) + " s";
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  return "signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
}

SideStack::SideStack(size_t size) {
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  size = (size + page - 1) & ~(page - 1);
  void* m = mmap(nullptr, size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    ADD_FAILURE() << "mmap: " << std::strerror(errno);
    return;
  }
  base_ = static_cast<char*>(m);
  size_ = size;
  if (mprotect(base_ + size, page, PROT_NONE) != 0) {
    ADD_FAILURE() << "mprotect: " << std::strerror(errno);
  }
}

SideStack::~SideStack() {
  if (base_ != nullptr) munmap(base_, size_ + static_cast<size_t>(sysconf(_SC_PAGESIZE)));
}

namespace {

thread_local void (*t_fiber_fn)(void*) = nullptr;
thread_local void* t_fiber_arg = nullptr;

__attribute__((noinline)) void FiberEntry() {
  t_fiber_fn(t_fiber_arg);
  asm volatile("" ::: "memory");  // keep the call above a call
}

thread_local void (*t_handler_fn)(void*) = nullptr;
thread_local void* t_handler_arg = nullptr;
thread_local uintptr_t t_handler_fake_fp = 0;

void AltStackHandler(int) {
  CppdiagTestCallWithFakeCallerFrame(t_handler_fn, t_handler_arg, t_handler_fake_fp);
}

}  // namespace

void RunAsFiber(char* stack, size_t size, void (*fn)(void*), void* arg, uintptr_t fake_fp) {
  ucontext_t here, fiber;
  ASSERT_EQ(getcontext(&fiber), 0);
  fiber.uc_stack.ss_sp = stack;
  fiber.uc_stack.ss_size = size;
  fiber.uc_link = &here;
  makecontext(&fiber, FiberEntry, 0);
  fiber.uc_mcontext.gregs[REG_RBP] = static_cast<greg_t>(fake_fp);
  t_fiber_fn = fn;
  t_fiber_arg = arg;
  ASSERT_EQ(swapcontext(&here, &fiber), 0);
}

void RunInAltStackHandler(char* stack, size_t size, void (*fn)(void*), void* arg,
                          uintptr_t fake_fp) {
  stack_t ss{}, old_ss{};
  ss.ss_sp = stack;
  ss.ss_size = size;
  ASSERT_EQ(sigaltstack(&ss, &old_ss), 0);
  struct sigaction sa {
  }, old_sa{};
  sa.sa_handler = AltStackHandler;
  sa.sa_flags = SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  ASSERT_EQ(sigaction(SIGUSR2, &sa, &old_sa), 0);
  sigset_t unblock, old_mask;
  sigemptyset(&unblock);
  sigaddset(&unblock, SIGUSR2);
  ASSERT_EQ(pthread_sigmask(SIG_UNBLOCK, &unblock, &old_mask), 0);
  t_handler_fn = fn;
  t_handler_arg = arg;
  t_handler_fake_fp = fake_fp;
  // A signal a thread sends itself is delivered before pthread_kill returns.
  ASSERT_EQ(pthread_kill(pthread_self(), SIGUSR2), 0);
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  sigaction(SIGUSR2, &old_sa, nullptr);
  sigaltstack(&old_ss, nullptr);
}

}  // namespace cppdiag::heap::stack_test

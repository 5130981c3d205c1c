// Helpers for the tests of the sampler's stack walk on stacks that are not
// the thread's own (signal handlers on an alternate stack, fibers), with
// frame-pointer chains that lead to memory that cannot be read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

extern "C" {
// Calls fn(arg) with rbp set to `fake_fp`: fn's frame then records fake_fp as
// its caller's frame pointer, as a garbage chain left by code without frame
// pointers would. fn returns to cppdiag_test_fake_frame_return.
void CppdiagTestCallWithFakeCallerFrame(void (*fn)(void*), void* arg, uintptr_t fake_fp);
extern const char cppdiag_test_fake_frame_return[];
}

namespace cppdiag::heap::stack_test {

// Runs `body` in a forked child and says how the child ended: "exit 0" (body
// returned and no gtest assertion failed in the child), "exit 1", "signal 11
// (Segmentation fault)", or "hung" when it was still running after
// `bound_seconds` (it is then killed). Waits on a pidfd.
std::string RunInChild(const std::function<void()>& body, int bound_seconds = 60);

// A stack that is not the thread's: `size` bytes mapped read-write, and the
// page right above them mapped PROT_NONE (`unreadable`).
class SideStack {
 public:
  explicit SideStack(size_t size);
  ~SideStack();
  SideStack(const SideStack&) = delete;
  SideStack& operator=(const SideStack&) = delete;

  char* base() const { return base_; }
  size_t size() const { return size_; }
  uintptr_t unreadable() const { return reinterpret_cast<uintptr_t>(base_) + size_; }

 private:
  char* base_ = nullptr;
  size_t size_ = 0;
};

// Runs fn(arg) on [stack, stack + size) as a fiber (makecontext/swapcontext)
// whose first frame records `fake_fp` as its caller's frame pointer; returns
// when fn does.
void RunAsFiber(char* stack, size_t size, void (*fn)(void*), void* arg, uintptr_t fake_fp);

// Runs fn(arg) in a handler of SIGUSR2 with [stack, stack + size) as the
// alternate signal stack, through CppdiagTestCallWithFakeCallerFrame(fn, arg,
// fake_fp); the calling thread's handler, mask and alternate stack are
// restored after.
void RunInAltStackHandler(char* stack, size_t size, void (*fn)(void*), void* arg,
                          uintptr_t fake_fp);

}  // namespace cppdiag::heap::stack_test

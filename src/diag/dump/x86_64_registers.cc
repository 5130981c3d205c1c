// Async-signal-safe (see x86_64_registers.h).
#include "diag/dump/x86_64_registers.h"

#include <cpuid.h>

#include <cstring>
#include <string_view>

#include "common/async_safe.h"

namespace cppdiag::dump {
namespace {

// One " 0x..." field of the syscall file; advances *p past it.
bool ParseHexField(const char** p, const char* end, uint64_t* out) {
  const char* s = *p;
  while (s < end && *s == ' ') ++s;
  if (end - s > 2 && s[0] == '0' && s[1] == 'x') s += 2;
  size_t digits = ParseHex(std::string_view(s, static_cast<size_t>(end - s)), out);
  if (digits == 0) return false;
  *p = s + digits;
  return true;
}

}  // namespace

size_t XstateCapacity() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  // CPUID.(EAX=0xD,ECX=0): EBX = XSAVE size for the features enabled in XCR0.
  if (__get_cpuid_count(0xd, 0, &eax, &ebx, &ecx, &edx) == 0 || ebx < 576) return 4096;
  size_t size = (ebx + 63) & ~size_t{63};
  return size > (64 << 10) ? (64 << 10) : size;
}

void FillThreadFromContext(const ucontext_t* uc, pid_t tid, uint64_t fs_base, uint8_t* xstate,
                           size_t xstate_capacity, ThreadSnapshot* t) {
  *t = ThreadSnapshot{};
  t->tid = tid;
  t->source = RegisterSource::kSignalFrame;
  const greg_t* g_regs = uc->uc_mcontext.gregs;
  auto r = [&](int i) { return static_cast<unsigned long long>(g_regs[i]); };
  user_regs_struct& u = t->regs;
  u.r15 = r(REG_R15);
  u.r14 = r(REG_R14);
  u.r13 = r(REG_R13);
  u.r12 = r(REG_R12);
  u.rbp = r(REG_RBP);
  u.rbx = r(REG_RBX);
  u.r11 = r(REG_R11);
  u.r10 = r(REG_R10);
  u.r9 = r(REG_R9);
  u.r8 = r(REG_R8);
  u.rax = r(REG_RAX);
  u.rcx = r(REG_RCX);
  u.rdx = r(REG_RDX);
  u.rsi = r(REG_RSI);
  u.rdi = r(REG_RDI);
  u.orig_rax = ~0ULL;  // not in a signal frame; -1 means "not in a syscall"
  u.rip = r(REG_RIP);
  u.eflags = r(REG_EFL);
  u.rsp = r(REG_RSP);
  uint64_t csgsfs = r(REG_CSGSFS);
  u.cs = csgsfs & 0xffff;
  u.gs = (csgsfs >> 16) & 0xffff;
  u.fs = (csgsfs >> 32) & 0xffff;
  u.ss = (csgsfs >> 48) & 0xffff;
  if (u.cs == 0) u.cs = 0x33;
  if (u.ss == 0) u.ss = 0x2b;  // older kernels leave ss out of the frame
  u.fs_base = fs_base;
  std::memcpy(&t->sighold, &uc->uc_sigmask, sizeof t->sighold);

  const auto* fp = reinterpret_cast<const uint8_t*>(uc->uc_mcontext.fpregs);
  if (fp == nullptr) return;
  std::memcpy(&t->fpregs, fp, sizeof t->fpregs);
  t->has_fpregs = true;
  // Bytes 464..511 of the FXSAVE area are the kernel's software-reserved
  // struct _fpx_sw_bytes; they do not belong in NT_PRFPREG.
  constexpr size_t kSwBytes = 464;
  std::memset(reinterpret_cast<uint8_t*>(&t->fpregs) + kSwBytes, 0, 512 - kSwBytes);
  _fpx_sw_bytes sw;
  std::memcpy(&sw, fp + kSwBytes, sizeof sw);
  if (sw.magic1 != FP_XSTATE_MAGIC1 || sw.xstate_size < 576 || xstate == nullptr ||
      sw.xstate_size > xstate_capacity || sw.extended_size < sw.xstate_size + 4) {
    return;
  }
  uint32_t magic2;
  std::memcpy(&magic2, fp + sw.xstate_size, sizeof magic2);
  if (magic2 != FP_XSTATE_MAGIC2) return;
  std::memcpy(xstate, fp, sw.xstate_size);
  // NT_X86_XSTATE keeps XCR0 (the enabled features) in bytes 464..471.
  std::memset(xstate + kSwBytes, 0, 512 - kSwBytes);
  uint64_t xcr0 = sw.xstate_bv;  // the kernel puts the enabled features (XCR0) here
  std::memcpy(xstate + kSwBytes, &xcr0, sizeof xcr0);
  t->xstate = xstate;
  t->xstate_size = sw.xstate_size;
}

size_t BuildXsaveLayout(uint8_t* out, size_t capacity) {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0 || !(ecx & bit_OSXSAVE)) return 0;
  uint32_t lo = 0, hi = 0;
  asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  uint64_t xcr0 = (uint64_t{hi} << 32) | lo;
  size_t n = 0;
  for (unsigned i = 2; i < 64; ++i) {
    if (!((xcr0 >> i) & 1)) continue;
    if (n + 16 > capacity) return 0;
    __get_cpuid_count(0xd, i, &eax, &ebx, &ecx, &edx);
    uint32_t rec[4] = {i, eax, ebx, 0};  // type, size, offset, flags
    std::memcpy(out + n, rec, sizeof rec);
    n += sizeof rec;
  }
  return n;
}

bool FillThreadFromSyscallFile(const char* text, size_t len, ThreadSnapshot* t) {
  const char* p = text;
  const char* end = text + len;
  if (len >= 7 && std::memcmp(text, "running", 7) == 0) return false;
  bool negative = p < end && *p == '-';
  if (negative) ++p;
  uint64_t nr = 0;
  size_t digits = ParseDecimal(std::string_view(p, static_cast<size_t>(end - p)), &nr);
  if (digits == 0) return false;
  p += digits;
  uint64_t v[8];
  size_t n = 0;
  while (n < 8 && ParseHexField(&p, end, &v[n])) ++n;
  user_regs_struct& u = t->regs;
  if (negative && n >= 2) {  // "-1 sp pc": blocked, not in a syscall
    u.rsp = v[0];
    u.rip = v[1];
  } else if (!negative && n == 8) {
    u.orig_rax = nr;
    u.rdi = v[0];
    u.rsi = v[1];
    u.rdx = v[2];
    u.r10 = v[3];
    u.r8 = v[4];
    u.r9 = v[5];
    u.rsp = v[6];
    u.rip = v[7];
    u.rcx = v[7];  // the syscall instruction leaves the return address in rcx
  } else {
    return false;
  }
  u.cs = 0x33;
  u.ss = 0x2b;
  t->source = RegisterSource::kKernelSyscall;
  return true;
}

}  // namespace cppdiag::dump

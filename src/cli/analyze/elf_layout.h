// On-disk layouts of an x86-64 Linux ELF core, as the reader sees them: the
// ELF structures (from <elf.h>, fixed by the ELF spec) and the x86-64 note
// descriptors (the kernel's elf_prstatus, elf_prpsinfo and siginfo, as
// offsets, so the reader never depends on the host's struct layout).
//
// Every multi-byte value in a core is little-endian (the reader rejects
// anything else) and may sit at any alignment in the file: read fields with
// LoadLe, never by casting a pointer into the mapping.
#pragma once

#include <elf.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace cppdiag::cli::analyze {

// The value of type T at `offset` of `bytes`. The caller has checked that
// offset + sizeof(T) <= bytes.size() (the descriptor sizes below guarantee it).
template <typename T>
T LoadLe(std::span<const uint8_t> bytes, size_t offset) {
  T v;
  std::memcpy(&v, bytes.data() + offset, sizeof v);  // the reader runs on x86-64 only
  return v;
}

inline constexpr size_t kEhdrSize = sizeof(Elf64_Ehdr);  // 64
inline constexpr size_t kPhdrSize = sizeof(Elf64_Phdr);  // 56
inline constexpr size_t kShdrSize = sizeof(Elf64_Shdr);  // 64
inline constexpr size_t kNhdrSize = sizeof(Elf64_Nhdr);  // 12
static_assert(kEhdrSize == 64 && kPhdrSize == 56 && kShdrSize == 64 && kNhdrSize == 12);

// Note owners and types (NT_* from <elf.h>; the type space is per owner).
inline constexpr char kOwnerCore[] = "CORE";    // NT_PRSTATUS, NT_PRFPREG, NT_PRPSINFO,
                                                // NT_AUXV, NT_SIGINFO, NT_FILE
inline constexpr char kOwnerLinux[] = "LINUX";  // NT_X86_XSTATE and other regsets

// x86-64 struct user_regs_struct: the general registers in NT_PRSTATUS.
struct X86Registers {
  uint64_t r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, orig_rax, rip,
      cs, eflags, rsp, ss, fs_base, gs_base, ds, es, fs, gs;
};
inline constexpr size_t kX86RegisterCount = 27;
static_assert(sizeof(X86Registers) == kX86RegisterCount * 8);
// Names in the order of X86Registers (gdb's names).
inline constexpr const char* kX86RegisterNames[kX86RegisterCount] = {
    "r15",    "r14", "r13", "r12",     "rbp",     "rbx", "r11",      "r10", "r9",
    "r8",     "rax", "rcx", "rdx",     "rsi",     "rdi", "orig_rax", "rip", "cs",
    "eflags", "rsp", "ss",  "fs_base", "gs_base", "ds",  "es",       "fs",  "gs"};

// NT_PRSTATUS descriptor (x86-64 struct elf_prstatus), 336 bytes.
namespace prstatus {
inline constexpr size_t kSize = 336;
inline constexpr size_t kInfoSigno = 0;  // int32 pr_info.si_signo
inline constexpr size_t kInfoCode = 4;   // int32 pr_info.si_code
inline constexpr size_t kInfoErrno = 8;  // int32 pr_info.si_errno
inline constexpr size_t kCursig = 12;    // int16
inline constexpr size_t kSigpend = 16;   // uint64
inline constexpr size_t kSighold = 24;   // uint64
inline constexpr size_t kPid = 32;       // int32: the thread id
inline constexpr size_t kPpid = 36;      // int32
inline constexpr size_t kPgrp = 40;      // int32
inline constexpr size_t kSid = 44;       // int32
inline constexpr size_t kUtime = 48;     // timeval: int64 sec, int64 usec
inline constexpr size_t kStime = 64;     // timeval
inline constexpr size_t kRegs = 112;     // X86Registers
inline constexpr size_t kFpvalid = 328;  // int32
static_assert(kRegs + sizeof(X86Registers) == kFpvalid);
}  // namespace prstatus

// NT_PRPSINFO descriptor (x86-64 struct elf_prpsinfo), 136 bytes.
namespace prpsinfo {
inline constexpr size_t kSize = 136;
inline constexpr size_t kState = 0;   // char
inline constexpr size_t kSname = 1;   // char: 'R', 'S', 'D', 'T', 'Z'...
inline constexpr size_t kZomb = 2;    // char
inline constexpr size_t kNice = 3;    // signed char
inline constexpr size_t kFlag = 8;    // uint64
inline constexpr size_t kUid = 16;    // uint32
inline constexpr size_t kGid = 20;    // uint32
inline constexpr size_t kPid = 24;    // int32
inline constexpr size_t kPpid = 28;   // int32
inline constexpr size_t kPgrp = 32;   // int32
inline constexpr size_t kSid = 36;    // int32
inline constexpr size_t kFname = 40;  // char[16], NUL-padded (not always terminated)
inline constexpr size_t kFnameSize = 16;
inline constexpr size_t kPsargs = 56;  // char[80]
inline constexpr size_t kPsargsSize = 80;
static_assert(kPsargs + kPsargsSize == kSize);
}  // namespace prpsinfo

// NT_SIGINFO descriptor (x86-64 siginfo_t), 128 bytes.
namespace siginfo {
inline constexpr size_t kSize = 128;
inline constexpr size_t kSigno = 0;  // int32
inline constexpr size_t kErrno = 4;  // int32
inline constexpr size_t kCode = 8;   // int32
inline constexpr size_t kAddr = 16;  // uint64 si_addr, for SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP
}  // namespace siginfo

// NT_AUXV: (uint64 type, uint64 value) pairs, ending with AT_NULL.
inline constexpr size_t kAuxvEntrySize = 16;

// NT_FILE: uint64 count, uint64 page_size, `count` entries of uint64 start,
// end, file offset (in pages), then `count` NUL-terminated names.
namespace file_note {
inline constexpr size_t kHeaderSize = 16;
inline constexpr size_t kEntrySize = 24;
}  // namespace file_note

// NT_PRFPREG: the FXSAVE area (user_fpregs_struct).
inline constexpr size_t kFpregsetSize = 512;
// NT_X86_XSTATE: the XSAVE area (the legacy 512 bytes, then the 64-byte
// XSAVE header); XCR0 (the enabled components) at 464, in the legacy area's
// software-reserved bytes, as the kernel writes it.
inline constexpr size_t kXstateMinSize = 576;
inline constexpr size_t kXstateXcr0Offset = 464;

}  // namespace cppdiag::cli::analyze

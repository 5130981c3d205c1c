#include "diag/dump/testing/typical_process.h"

#include <elf.h>

#include <cstring>

namespace cppdiag::dump::testing {
namespace {

using P = TypicalProcess;

void PutElfHeader(FakeProcessSnapshot* f, uint64_t at) {
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_type = ET_DYN;
  eh.e_machine = EM_X86_64;
  eh.e_phoff = sizeof eh;
  eh.e_phentsize = sizeof(Elf64_Phdr);
  eh.e_phnum = 3;
  f->SetBytes(at, &eh, sizeof eh);
}

void PutU64(FakeProcessSnapshot* f, uint64_t at, uint64_t v) { f->SetBytes(at, &v, sizeof v); }

void PutLinkMap(FakeProcessSnapshot* f, uint64_t at, uint64_t l_addr, uint64_t name, uint64_t l_ld,
                uint64_t next, uint64_t prev) {
  uint64_t lm[5] = {l_addr, name, l_ld, next, prev};
  f->SetBytes(at, lm, sizeof lm);
}

}  // namespace

std::unique_ptr<FakeProcessSnapshot> MakeTypicalProcess() {
  auto f = std::make_unique<FakeProcessSnapshot>();
  constexpr uint64_t kPage = 0x1000;
  f->AddMapping(P::kExe, kPage, "r--p", "/usr/bin/app", 0);
  f->AddMapping(P::kExeText, kPage, "r-xp", "/usr/bin/app", 0x1000);
  f->AddMapping(P::kExeRodata, kPage, "r--p", "/usr/bin/app", 0x2000);
  f->AddMapping(P::kExeRelro, kPage, "r--p", "/usr/bin/app", 0x3000);
  f->AddMapping(P::kExeData, kPage, "rw-p", "/usr/bin/app", 0x4000);
  f->AddMapping(P::kHeap, 16 * kPage, "rw-p", "[heap]");
  f->AddMapping(P::kThreadGuard, kPage, "---p");
  f->AddMapping(P::kThreadStack, 64 * kPage, "rw-p");
  f->AddMapping(P::kLibc, kPage, "r--p", "/lib/libc.so.6", 0);
  f->AddMapping(P::kLibc + kPage, 4 * kPage, "r-xp", "/lib/libc.so.6", 0x1000);
  f->AddMapping(P::kSharedFile, 4 * kPage, "rw-s", "/data/db", 0);
  f->AddMapping(P::kSharedAnon, 2 * kPage, "rw-s", "/dev/zero (deleted)", 0, 77);
  f->AddMapping(P::kLdso, kPage, "r--p", "/lib/ld.so", 0);
  f->AddMapping(P::kLdsoData, kPage, "rw-p", "/lib/ld.so", 0x1000);
  MappingSnapshot& vvar = f->AddMapping(P::kVvar, 4 * kPage, "r--p", "[vvar]");
  vvar.dont_dump = vvar.io = vvar.pfn_map = true;  // as smaps' VmFlags show it
  f->AddMapping(P::kVdso, 2 * kPage, "r-xp", "[vdso]");
  f->AddMapping(P::kStack, 33 * kPage, "rw-p", "[stack]");

  // Executable: ELF header, program headers, code, rodata.
  PutElfHeader(f.get(), P::kExe);
  Elf64_Phdr ph[3]{};
  ph[0].p_type = PT_PHDR;
  ph[0].p_vaddr = 0x40;
  ph[0].p_memsz = sizeof ph;
  ph[1].p_type = PT_LOAD;
  ph[1].p_memsz = 0x5000;
  ph[2].p_type = PT_DYNAMIC;
  ph[2].p_vaddr = 0x3e00;
  ph[2].p_memsz = 4 * sizeof(Elf64_Dyn);
  f->SetBytes(P::kExe + 0x40, ph, sizeof ph);
  f->Fill(P::kExeText, kPage, 0x90);
  f->Fill(P::kExeRodata, kPage, 0x41);
  f->Fill(P::kExeData, 64, 0x7);
  f->SetPageFlags(P::kExeData, kPagePresent);  // written: a private copy

  // Dynamic section (in relro, a private copy since DT_DEBUG was written).
  uint64_t r_debug = P::kLdsoData + 0x100;
  Elf64_Dyn dyn[2] = {{DT_DEBUG, {r_debug}}, {DT_NULL, {0}}};
  f->SetBytes(P::kExeRelro + 0xe00, dyn, sizeof dyn);
  f->Fill(P::kExeRelro, 0x100, 0x11);  // .got-like bytes before it
  f->SetPageFlags(P::kExeRelro, kPagePresent);
  f->SetPageFlags(P::kExeRodata, kPagePresent | kPageFileOrSharedAnon);
  f->SetPageFlags(P::kExeText, kPagePresent | kPageFileOrSharedAnon);
  f->SetPageFlags(P::kExe, kPagePresent | kPageFileOrSharedAnon);

  // Dynamic linker: r_debug, the main program's link_map and its name.
  PutElfHeader(f.get(), P::kLdso);
  f->SetPageFlags(P::kLdso, kPagePresent | kPageFileOrSharedAnon);
  uint64_t main_lm = P::kLdsoData + 0x200;
  uint64_t empty_name = P::kLdsoData + 0x400;
  f->SetBytes(r_debug, "\x01\0\0\0\0\0\0\0", 8);  // r_version 1
  PutU64(f.get(), r_debug + 8, main_lm);
  PutLinkMap(f.get(), main_lm, P::kExe, empty_name, P::kExeRelro + 0xe00, P::kLibcLinkMap, 0);
  f->SetBytes(empty_name, "", 1);
  f->Fill(P::kLdsoData + 0x800, 16, 0x22);
  f->SetPageFlags(P::kLdsoData, kPagePresent);

  // libc, and its link_map in the heap next to a secret.
  PutElfHeader(f.get(), P::kLibc);
  f->SetPageFlags(P::kLibc, kPagePresent | kPageFileOrSharedAnon);
  f->Fill(P::kLibc + kPage, 4 * kPage, 0xcc);
  PutLinkMap(f.get(), P::kLibcLinkMap, P::kLibc, P::kLibcLinkMap + 0x100, 0, 0, main_lm);
  f->SetBytes(P::kLibcLinkMap + 0x100, "/lib/libc.so.6", 15);
  f->SetBytes(P::kHeapSecret, P::kSecret);
  f->SetBytes(P::kHeapMarker, P::kMarker);

  f->Fill(P::kSharedFile, 4 * kPage, 0x33);
  f->Fill(P::kSharedAnon, kPage, 0x44);
  f->Fill(P::kVvar, 4 * kPage, 0x55);
  f->SetUnreadable(P::kVvar, 4 * kPage);
  f->Fill(P::kVdso, 2 * kPage, 0x66);
  PutElfHeader(f.get(), P::kVdso);

  // Stacks: a few used pages at their tops.
  f->Fill(P::kThreadSp - 0x100, P::kThreadStack + 64 * kPage - (P::kThreadSp - 0x100), 0x77);
  f->Fill(P::kMainSp - 0x100, P::kStack + 33 * kPage - (P::kMainSp - 0x100), 0x88);

  ThreadSnapshot& main = f->AddThread(P::kMainTid);
  main.regs.rsp = P::kMainSp;
  main.regs.rip = P::kExeText + 0x10;
  main.cursig = SIGSEGV;
  main.has_fpregs = true;
  main.fpregs.mxcsr = 0x1f80;
  ThreadSnapshot& worker = f->AddThread(P::kWorkerTid);
  worker.regs.rsp = P::kThreadSp;
  worker.regs.rip = P::kLibc + 0x1100;

  f->SetAuxv({{AT_PHDR, P::kExe + 0x40},
              {AT_PHNUM, 3},
              {AT_PAGESZ, kPage},
              {AT_BASE, P::kLdso},
              {AT_SYSINFO_EHDR, P::kVdso}});
  siginfo_t si{};
  si.si_signo = SIGSEGV;
  si.si_code = SEGV_MAPERR;
  f->SetSiginfo(si);
  return f;
}

}  // namespace cppdiag::dump::testing

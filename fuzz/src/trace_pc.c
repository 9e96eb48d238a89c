/*
 * Coverage of the C++ the targets link (OpenH264's decoder) for AFL++.
 *
 * rustc instruments the Rust code with SanitizerCoverage's guards, which
 * AFL++'s runtime counts. The C++ of a `cc` build is compiled by GCC, which
 * has no guards but can call __sanitizer_cov_trace_pc() at every basic
 * block (`CXXFLAGS=-fsanitize-coverage=trace-pc`, set by `cargo xtask
 * fuzz`). This turns each (previous block, block) pair, hashed as classic
 * AFL does, into one of GUARDS guards registered with the same runtime, so
 * the decoder's edges guide the fuzzer like the Rust ones.
 */
#include <stdint.h>

#define GUARDS 65536u

void __sanitizer_cov_trace_pc_guard_init(uint32_t *start, uint32_t *stop);
void __sanitizer_cov_trace_pc_guard(uint32_t *guard);

static uint32_t guards[GUARDS];
static __thread uint32_t previous;

__attribute__((constructor, no_sanitize_coverage)) static void register_guards(void) {
  __sanitizer_cov_trace_pc_guard_init(guards, guards + GUARDS);
}

__attribute__((no_sanitize_coverage)) void __sanitizer_cov_trace_pc(void) {
  uint64_t pc = (uint64_t)(uintptr_t)__builtin_return_address(0);
  uint32_t block = (uint32_t)((pc * 0x9E3779B97F4A7C15ull) >> 40) % GUARDS;
  __sanitizer_cov_trace_pc_guard(&guards[block ^ previous]);
  previous = block >> 1;
}

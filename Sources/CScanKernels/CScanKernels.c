#if defined(__linux__)
#define _GNU_SOURCE
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#include "CScanKernels.h"

#if defined(__SSE2__)
#include <emmintrin.h>

size_t cg_string_special(const uint8_t *p, size_t n) {
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i space = _mm_set1_epi8(0x20);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m128i v = _mm_loadu_si128((const __m128i *)(p + i));
    // Signed compare: below 0x20 catches both control bytes and bytes >= 0x80.
    __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                               _mm_cmplt_epi8(v, space));
    int mask = _mm_movemask_epi8(hit);
    if (mask != 0) return i + (size_t)__builtin_ctz((unsigned)mask);
  }
  for (; i < n; i++) {
    uint8_t c = p[i];
    if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) return i;
  }
  return n;
}

#else

size_t cg_string_special(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint8_t c = p[i];
    if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) return i;
  }
  return n;
}

#endif

void *cg_remap(void *old_address, size_t old_size, size_t new_size) {
#if defined(__linux__)
  void *p = mremap(old_address, old_size, new_size, MREMAP_MAYMOVE);
  return p == MAP_FAILED ? NULL : p;
#else
  (void)old_address;
  (void)old_size;
  (void)new_size;
  return NULL;
#endif
}

int cg_nice_this_thread(int nice) {
#if defined(__linux__)
  return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice);
#else
  (void)nice;
  return 0;
#endif
}

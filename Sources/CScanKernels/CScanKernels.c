#if defined(__linux__)
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#include <errno.h>

#include "CScanKernels.h"

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

int cg_start_writeback(int fd, int64_t offset, int64_t length) {
#if defined(__linux__)
  return sync_file_range(fd, (off_t)offset, (off_t)length, SYNC_FILE_RANGE_WRITE);
#else
  (void)fd;
  (void)offset;
  (void)length;
  return 0;
#endif
}

int cg_open_direct(const char *path, int flags, int mode) {
#if defined(__linux__)
  return open(path, flags | O_DIRECT, mode);
#else
  (void)path;
  (void)flags;
  (void)mode;
  errno = EINVAL;
  return -1;
#endif
}

int cg_clear_direct(int fd) {
#if defined(__linux__)
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return -1;
  return fcntl(fd, F_SETFL, flags & ~O_DIRECT);
#else
  (void)fd;
  return 0;
#endif
}

#if defined(__x86_64__)
#include <immintrin.h>

static size_t count_lf_sse2(const uint8_t *p, size_t n, size_t *last) {
  const __m128i lf = _mm_set1_epi8('\n');
  size_t count = 0, at = n, k = 0;
  for (; k + 64 <= n; k += 64) {
    uint64_t mask = 0;
    for (int j = 0; j < 4; j++) {
      const __m128i v = _mm_loadu_si128((const __m128i *)(p + k + 16 * j));
      mask |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, lf)) << (16 * j);
    }
    if (mask != 0) {
      count += (size_t)__builtin_popcountll(mask);
      at = k + 63 - (size_t)__builtin_clzll(mask);
    }
  }
  for (; k < n; k++) {
    if (p[k] == '\n') {
      count++;
      at = k;
    }
  }
  *last = at;
  return count;
}

// The LF bits of 64 bytes, two 32-byte compares.
__attribute__((target("avx2"))) static inline uint64_t lf_mask_avx2(const uint8_t *p) {
  const __m256i lf = _mm256_set1_epi8('\n');
  const uint32_t lo =
      (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)p), lf));
  const uint32_t hi = (uint32_t)_mm256_movemask_epi8(
      _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(p + 32)), lf));
  return (uint64_t)hi << 32 | lo;
}

// Twice the SSE2 loop's bytes per step, in half the compares: the framer counts every input
// byte on the reading thread, the one stage that cannot be split.
__attribute__((target("avx2,popcnt,lzcnt"))) static size_t count_lf_avx2(const uint8_t *p,
                                                                          size_t n,
                                                                          size_t *last) {
  size_t count = 0, at = n, k = 0;
  for (; k + 128 <= n; k += 128) {
    const uint64_t lo = lf_mask_avx2(p + k), hi = lf_mask_avx2(p + k + 64);
    count += (size_t)(__builtin_popcountll(lo) + __builtin_popcountll(hi));
    if (hi != 0) {
      at = k + 127 - (size_t)__builtin_clzll(hi);
    } else if (lo != 0) {
      at = k + 63 - (size_t)__builtin_clzll(lo);
    }
  }
  size_t tailLast;
  const size_t tail = count_lf_sse2(p + k, n - k, &tailLast);
  if (tail > 0) at = k + tailLast;
  *last = at;
  return count + tail;
}

size_t cg_count_lf(const uint8_t *p, size_t n, size_t *last) {
  // 0: not yet known, 1: SSE2, 2: AVX2. A benign race: every thread stores the same value.
  static int level = 0;
  int use = __atomic_load_n(&level, __ATOMIC_RELAXED);
  if (use == 0) {
    use = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt") ? 2 : 1;
    __atomic_store_n(&level, use, __ATOMIC_RELAXED);
  }
  return use == 2 ? count_lf_avx2(p, n, last) : count_lf_sse2(p, n, last);
}

int cg_crc32_fast_available(void) {
  return __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
}

// Folding constants for the bit-reflected gzip polynomial 0x104C11DB7: x^(4*128+32) and
// x^(4*128-32) mod P for the 512-bit fold, x^(128+32) and x^(128-32) for the 128-bit fold,
// x^64 mod P for 64 -> 32 bits, and the Barrett constants (floor(x^64 / P) and P).
__attribute__((target("pclmul,sse4.1"))) uint32_t cg_crc32_fold(uint32_t crc, const uint8_t *p,
                                                                 size_t n) {
  const __m128i k1k2 = _mm_set_epi64x(0x1c6e41596, 0x154442bd4);
  const __m128i k3k4 = _mm_set_epi64x(0x0ccaa009e, 0x1751997d0);
  const __m128i k5 = _mm_set_epi64x(0, 0x163cd6124);
  const __m128i poly = _mm_set_epi64x(0x1f7011641, 0x1db710641);
  const __m128i mask32 = _mm_set_epi32(0, 0, 0, -1);

  __m128i x1 = _mm_loadu_si128((const __m128i *)(p + 0));
  __m128i x2 = _mm_loadu_si128((const __m128i *)(p + 16));
  __m128i x3 = _mm_loadu_si128((const __m128i *)(p + 32));
  __m128i x4 = _mm_loadu_si128((const __m128i *)(p + 48));
  x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)~crc));
  p += 64;
  n -= 64;
  while (n >= 64) {
    __m128i h1 = _mm_clmulepi64_si128(x1, k1k2, 0x11);
    __m128i h2 = _mm_clmulepi64_si128(x2, k1k2, 0x11);
    __m128i h3 = _mm_clmulepi64_si128(x3, k1k2, 0x11);
    __m128i h4 = _mm_clmulepi64_si128(x4, k1k2, 0x11);
    x1 = _mm_xor_si128(_mm_clmulepi64_si128(x1, k1k2, 0x00), h1);
    x2 = _mm_xor_si128(_mm_clmulepi64_si128(x2, k1k2, 0x00), h2);
    x3 = _mm_xor_si128(_mm_clmulepi64_si128(x3, k1k2, 0x00), h3);
    x4 = _mm_xor_si128(_mm_clmulepi64_si128(x4, k1k2, 0x00), h4);
    x1 = _mm_xor_si128(x1, _mm_loadu_si128((const __m128i *)(p + 0)));
    x2 = _mm_xor_si128(x2, _mm_loadu_si128((const __m128i *)(p + 16)));
    x3 = _mm_xor_si128(x3, _mm_loadu_si128((const __m128i *)(p + 32)));
    x4 = _mm_xor_si128(x4, _mm_loadu_si128((const __m128i *)(p + 48)));
    p += 64;
    n -= 64;
  }
  // Four lanes into one.
  __m128i t;
  t = _mm_clmulepi64_si128(x1, k3k4, 0x11);
  x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k3k4, 0x00), t), x2);
  t = _mm_clmulepi64_si128(x1, k3k4, 0x11);
  x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k3k4, 0x00), t), x3);
  t = _mm_clmulepi64_si128(x1, k3k4, 0x11);
  x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k3k4, 0x00), t), x4);
  while (n >= 16) {
    t = _mm_clmulepi64_si128(x1, k3k4, 0x11);
    x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k3k4, 0x00), t),
                       _mm_loadu_si128((const __m128i *)p));
    p += 16;
    n -= 16;
  }
  // 128 -> 64 bits.
  t = _mm_clmulepi64_si128(x1, k3k4, 0x10);
  x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), t);
  // 64 -> 32 bits.
  t = _mm_and_si128(x1, mask32);
  x1 = _mm_srli_si128(x1, 4);
  x1 = _mm_xor_si128(x1, _mm_clmulepi64_si128(t, k5, 0x00));
  // Barrett reduction.
  t = _mm_and_si128(x1, mask32);
  t = _mm_clmulepi64_si128(t, poly, 0x10);
  t = _mm_and_si128(t, mask32);
  t = _mm_clmulepi64_si128(t, poly, 0x00);
  x1 = _mm_xor_si128(x1, t);
  return ~(uint32_t)_mm_extract_epi32(x1, 1);
}

#else

size_t cg_count_lf(const uint8_t *p, size_t n, size_t *last) {
  size_t count = 0, at = n;
  for (size_t k = 0; k < n; k++) {
    if (p[k] == '\n') {
      count++;
      at = k;
    }
  }
  *last = at;
  return count;
}

int cg_crc32_fast_available(void) { return 0; }
uint32_t cg_crc32_fold(uint32_t crc, const uint8_t *p, size_t n) {
  (void)p;
  (void)n;
  return crc;
}

#endif

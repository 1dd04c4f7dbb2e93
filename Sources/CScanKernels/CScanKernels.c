#if defined(__linux__)
#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
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

void cg_fix_mmap_threshold(size_t bytes) {
#if defined(__linux__) && defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, (int)bytes);
#else
  (void)bytes;
#endif
}

int cg_die_with_parent(void) {
#if defined(__linux__)
  pid_t parent = getppid();
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return -1;
  // The parent may have died between the two calls: then no signal will ever come.
  return getppid() == parent ? 0 : 1;
#else
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

int cg_set_direct(int fd) {
#if defined(__linux__)
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return -1;
  return fcntl(fd, F_SETFL, flags | O_DIRECT);
#else
  (void)fd;
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

// MARK: SHA-256 block function

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

static inline uint32_t ror32(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

void cg_sha256_blocks_portable(uint32_t state[8], const uint8_t *data, size_t blocks) {
  for (size_t b = 0; b < blocks; b++, data += 64) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++) {
      const uint8_t *p = data + 4 * i;
      w[i] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    }
    for (int i = 16; i < 64; i++) {
      uint32_t s0 = ror32(w[i - 15], 7) ^ ror32(w[i - 15], 18) ^ (w[i - 15] >> 3);
      uint32_t s1 = ror32(w[i - 2], 17) ^ ror32(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = state[0], b2 = state[1], c = state[2], d = state[3];
    uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (int i = 0; i < 64; i++) {
      uint32_t t1 = h + (ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25)) + ((e & f) ^ (~e & g)) +
                    K256[i] + w[i];
      uint32_t t2 = (ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22)) + ((a & b2) ^ (a & c) ^ (b2 & c));
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b2;
      b2 = a;
      a = t1 + t2;
    }
    state[0] += a;
    state[1] += b2;
    state[2] += c;
    state[3] += d;
    state[4] += e;
    state[5] += f;
    state[6] += g;
    state[7] += h;
  }
}

#if defined(__x86_64__)
int cg_sha256_hw_available(void) {
  unsigned a, b, c, d;
  __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0), "c"(0));
  if (a < 7) return 0;
  __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(0));
  int sha = (b >> 29) & 1;
  return sha && __builtin_cpu_supports("sse4.1") && __builtin_cpu_supports("ssse3");
}

// Four rounds of one lane L (SHA-NI): CUR holds this group's message words; NEXT gets the
// group after's from msg2 (M2), PREV is advanced by msg1 (M1). The 16 groups below name
// the four message registers in rotation, so nothing goes through memory.
#define SHA_GROUP(L, g, CUR, PREV, NEXT, M2, M1)                                             \
  do {                                                                                       \
    __m128i msg = _mm_add_epi32(CUR##L, _mm_loadu_si128((const __m128i *)&K256[4 * (g)]));   \
    S1##L = _mm_sha256rnds2_epu32(S1##L, S0##L, msg);                                        \
    if (M2)                                                                                  \
      NEXT##L = _mm_sha256msg2_epu32(_mm_add_epi32(NEXT##L, _mm_alignr_epi8(CUR##L, PREV##L, 4)), \
                                     CUR##L);                                                \
    msg = _mm_shuffle_epi32(msg, 0x0E);                                                      \
    S0##L = _mm_sha256rnds2_epu32(S0##L, S1##L, msg);                                        \
    if (M1) PREV##L = _mm_sha256msg1_epu32(PREV##L, CUR##L);                                 \
  } while (0)

#define SHA_ALL_GROUPS(X)                                                                    \
  X(0, M0, M3, M1, 0, 0); X(1, M1, M0, M2, 0, 1); X(2, M2, M1, M3, 0, 1);                    \
  X(3, M3, M2, M0, 1, 1); X(4, M0, M3, M1, 1, 1); X(5, M1, M0, M2, 1, 1);                    \
  X(6, M2, M1, M3, 1, 1); X(7, M3, M2, M0, 1, 1); X(8, M0, M3, M1, 1, 1);                    \
  X(9, M1, M0, M2, 1, 1); X(10, M2, M1, M3, 1, 1); X(11, M3, M2, M0, 1, 1);                  \
  X(12, M0, M3, M1, 1, 1); X(13, M1, M0, M2, 1, 0); X(14, M2, M1, M3, 1, 0);                 \
  X(15, M3, M2, M0, 0, 0)

#define SHA_LOAD_STATE(L, st)                                                                \
  __m128i S0##L, S1##L;                                                                      \
  do {                                                                                       \
    __m128i t = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&(st)[0]), 0xB1);        \
    __m128i s1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&(st)[4]), 0x1B);       \
    S0##L = _mm_alignr_epi8(t, s1, 8);                                                       \
    S1##L = _mm_blend_epi16(s1, t, 0xF0);                                                    \
  } while (0)

#define SHA_STORE_STATE(L, st)                                                               \
  do {                                                                                       \
    __m128i t = _mm_shuffle_epi32(S0##L, 0x1B);                                              \
    __m128i s1 = _mm_shuffle_epi32(S1##L, 0xB1);                                             \
    _mm_storeu_si128((__m128i *)&(st)[0], _mm_blend_epi16(t, s1, 0xF0));                     \
    _mm_storeu_si128((__m128i *)&(st)[4], _mm_alignr_epi8(s1, t, 8));                        \
  } while (0)

#define SHA_LOAD_BLOCK(L, p)                                                                 \
  __m128i M0##L = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)((p) + 0)), MASK);      \
  __m128i M1##L = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)((p) + 16)), MASK);     \
  __m128i M2##L = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)((p) + 32)), MASK);     \
  __m128i M3##L = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)((p) + 48)), MASK);     \
  __m128i A0##L = S0##L, A1##L = S1##L

#define SHA_ONE(g, C, P, N, M2, M1) SHA_GROUP(A, g, C, P, N, M2, M1)
#define SHA_TWO(g, C, P, N, M2, M1)                                                          \
  SHA_GROUP(A, g, C, P, N, M2, M1);                                                          \
  SHA_GROUP(B, g, C, P, N, M2, M1)

__attribute__((target("sha,sse4.1,ssse3"))) static void sha256_hw_x1(uint32_t st[8],
                                                                    const uint8_t *d,
                                                                    size_t blocks) {
  const __m128i MASK = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  SHA_LOAD_STATE(A, st);
  for (size_t b = 0; b < blocks; b++, d += 64) {
    SHA_LOAD_BLOCK(A, d);
    SHA_ALL_GROUPS(SHA_ONE);
    S0A = _mm_add_epi32(S0A, A0A);
    S1A = _mm_add_epi32(S1A, A1A);
  }
  SHA_STORE_STATE(A, st);
}

__attribute__((target("sha,sse4.1,ssse3"))) static void sha256_hw_x2(
    uint32_t sa[8], const uint8_t *da, uint32_t sb[8], const uint8_t *db, size_t blocks) {
  const __m128i MASK = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  SHA_LOAD_STATE(A, sa);
  SHA_LOAD_STATE(B, sb);
  for (size_t b = 0; b < blocks; b++, da += 64, db += 64) {
    SHA_LOAD_BLOCK(A, da);
    SHA_LOAD_BLOCK(B, db);
    SHA_ALL_GROUPS(SHA_TWO);
    S0A = _mm_add_epi32(S0A, A0A);
    S1A = _mm_add_epi32(S1A, A1A);
    S0B = _mm_add_epi32(S0B, A0B);
    S1B = _mm_add_epi32(S1B, A1B);
  }
  SHA_STORE_STATE(A, sa);
  SHA_STORE_STATE(B, sb);
}

// -1 until first asked; threads may race to set it, to the same value, hence atomics.
static int sha256_hw = -1;

static int sha256_use_hw(void) {
  int v = __atomic_load_n(&sha256_hw, __ATOMIC_RELAXED);
  if (v < 0) {
    v = cg_sha256_hw_available();
    __atomic_store_n(&sha256_hw, v, __ATOMIC_RELAXED);
  }
  return v;
}

void cg_sha256_blocks(uint32_t state[8], const uint8_t *data, size_t blocks) {
  if (sha256_use_hw())
    sha256_hw_x1(state, data, blocks);
  else
    cg_sha256_blocks_portable(state, data, blocks);
}

void cg_sha256_blocks_x2(uint32_t a[8], const uint8_t *da, uint32_t b[8], const uint8_t *db,
                         size_t blocks) {
  if (sha256_use_hw()) {
    sha256_hw_x2(a, da, b, db, blocks);
  } else {
    cg_sha256_blocks_portable(a, da, blocks);
    cg_sha256_blocks_portable(b, db, blocks);
  }
}
#else
int cg_sha256_hw_available(void) { return 0; }
void cg_sha256_blocks(uint32_t state[8], const uint8_t *data, size_t blocks) {
  cg_sha256_blocks_portable(state, data, blocks);
}
void cg_sha256_blocks_x2(uint32_t a[8], const uint8_t *da, uint32_t b[8], const uint8_t *db,
                         size_t blocks) {
  cg_sha256_blocks_portable(a, da, blocks);
  cg_sha256_blocks_portable(b, db, blocks);
}
#endif

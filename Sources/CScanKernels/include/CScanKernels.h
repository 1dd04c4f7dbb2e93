#ifndef CSCANKERNELS_H
#define CSCANKERNELS_H

#include <stddef.h>
#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/// 0–15 for an ASCII hex digit, -1 otherwise.
static inline int cg_hex_value(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  c |= 0x20;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/// The length of the well-formed UTF-8 sequence whose lead byte (>= 0x80) is `p[i]`, or 0
/// when it is ill-formed (RFC 3629: no overlongs, surrogates, code points past U+10FFFF or
/// truncation at `n`).
__attribute__((always_inline)) static inline size_t cg_utf8_sequence(const uint8_t *p, size_t i,
                                                                    size_t n) {
  uint8_t lead = p[i];
  size_t need;
  uint8_t low = 0x80, high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 1;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    need = 2;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    need = 3;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  if (i + need >= n) return 0;
  if (p[i + 1] < low || p[i + 1] > high) return 0;
  for (size_t k = 2; k <= need; k++) {
    if ((p[i + k] & 0xC0) != 0x80) return 0;
  }
  return need + 1;
}

/// Scans a JSON string body in `p[0..<n]` from `i`, just after its opening quote, validating
/// escapes and UTF-8 as it goes. Returns the index of the closing quote and sets `*escaped`
/// to 1 when a backslash occurs; returns -1 on an unescaped control byte, a bad escape,
/// ill-formed UTF-8 or a missing close.
///
/// Always inlined, so that Swift callers pay no call per string: records hold many short strings
/// (keys, ids, dates), where a call and its setup cost more than the scan.
__attribute__((always_inline)) static inline ptrdiff_t cg_scan_string(const uint8_t *p, size_t i,
                                                                     size_t n, int *escaped) {
  while (i < n) {
#if defined(__SSE2__)
    // Skip plain bytes 16 at a time: stop at a quote, backslash, control or non-ASCII byte
    // (the signed compare below 0x20 catches both of the latter).
    if (i + 16 <= n) {
      const __m128i v = _mm_loadu_si128((const __m128i *)(p + i));
      const __m128i hit = _mm_or_si128(
          _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
          _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)));
      const int mask = _mm_movemask_epi8(hit);
      if (mask == 0) {
        i += 16;
        continue;
      }
      i += (size_t)__builtin_ctz((unsigned)mask);
    }
#endif
    const uint8_t c = p[i];
    if (c == '"') return (ptrdiff_t)i;
    if (c == '\\') {
      *escaped = 1;
      if (i + 1 >= n) return -1;
      switch (p[i + 1]) {
      case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
        i += 2;
        continue;
      case 'u':
        if (i + 5 >= n) return -1;
        for (size_t k = 2; k <= 5; k++) {
          if (cg_hex_value(p[i + k]) < 0) return -1;
        }
        i += 6;
        continue;
      default:
        return -1;
      }
    }
    if (c < 0x20) return -1;
    if (c >= 0x80) {
      // Non-Latin text comes in runs of multi-byte characters: validate the whole run
      // before going back to the 16-byte skip, which would stop at each one.
      do {
        const size_t length = cg_utf8_sequence(p, i, n);
        if (length == 0) return -1;
        i += length;
      } while (i < n && p[i] >= 0x80);
      continue;
    }
    i += 1;
  }
  return -1;
}

/// The number of LF bytes in `p[0..<n]`; `*last` is set to the index of the last one, or to
/// `n` when there is none. The block framer counts lines with it, 128 bytes per step with
/// AVX2 (64 with SSE2), instead of calling `memchr` once per line.
size_t cg_count_lf(const uint8_t *p, size_t n, size_t *last);

/// Asks the cache for the line holding `p` ahead of a read: the consent index issues it for
/// a batch of lookups at once, so their memory misses overlap instead of queueing.
static inline void cg_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

/// Moves and resizes an anonymous mapping (Linux `mremap` with `MREMAP_MAYMOVE`): the
/// kernel remaps the pages, copying nothing. Returns NULL on failure or where unsupported.
void *cg_remap(void *old_address, size_t old_size, size_t new_size);

/// Sets the calling thread's nice value (Linux: each thread has its own). Returns 0 on
/// success; does nothing elsewhere.
int cg_nice_this_thread(int nice);

/// Asks the kernel to SIGKILL this process when the thread that started it exits (Linux
/// `PR_SET_PDEATHSIG`), so that a shard never outlives the engine task that ran it. Returns
/// 0, 1 when the parent is already gone, -1 on failure; does nothing elsewhere.
int cg_die_with_parent(void);

/// Fixes glibc's mmap threshold at `bytes` (it otherwise rises to the size of the largest
/// mapped block freed), so that buffers made and freed per file stay mapped and go back to
/// the system. Process-wide; does nothing elsewhere.
void cg_fix_mmap_threshold(size_t bytes);

/// Starts writing back the dirty pages of `fd` in `[offset, offset + length)` without waiting
/// for them (Linux `sync_file_range` with `SYNC_FILE_RANGE_WRITE`), so that a later `fsync`
/// finds little left to do. Returns 0 on success; does nothing elsewhere.
int cg_start_writeback(int fd, int64_t offset, int64_t length);

/// Turns `O_DIRECT` on for `fd` (Linux): writes then bypass the page cache. Returns 0, or -1
/// with `errno` set (EINVAL where the file system or the platform does not do direct I/O).
/// Set after an exclusive open, so that a refusal leaves no file behind to retry around.
int cg_set_direct(int fd);

/// Turns `O_DIRECT` off on `fd`, so that later writes need no alignment. Returns 0 or -1.
int cg_clear_direct(int fd);

/// The SHA-256 block function (FIPS 180-4): `state` advanced over `blocks` 64-byte blocks of
/// `data`. SHA-NI where the CPU has it (`cg_sha256_hw_available`), portable C elsewhere.
void cg_sha256_blocks(uint32_t state[8], const uint8_t *data, size_t blocks);

/// Two independent streams advanced over `blocks` blocks each, their rounds interleaved: one
/// SHA-NI stream waits on the latency of its round instruction, and a second fills those
/// waits (1.75-1.8x the throughput of the two one after the other here).
void cg_sha256_blocks_x2(uint32_t a[8], const uint8_t *da, uint32_t b[8], const uint8_t *db,
                         size_t blocks);

/// The portable block function, for tests to check the SHA-NI one against.
void cg_sha256_blocks_portable(uint32_t state[8], const uint8_t *data, size_t blocks);

/// True when the CPU has the SHA extensions (and SSSE3, SSE4.1).
int cg_sha256_hw_available(void);

/// True when the CPU has carry-less multiplication (PCLMULQDQ) and SSE4.1.
int cg_crc32_fast_available(void);

/// The gzip CRC-32 (zlib's `crc32`) of `p[0..<n]` continued from `crc`, by folding 64 bytes at
/// a time with carry-less multiplication: several times zlib's speed. `n` must be a multiple
/// of 16 and at least 64, and `cg_crc32_fast_available()` true; callers finish the rest with
/// zlib.
uint32_t cg_crc32_fold(uint32_t crc, const uint8_t *p, size_t n);

#endif

#ifndef CSCANKERNELS_H
#define CSCANKERNELS_H

#include <stddef.h>
#include <stdint.h>

/// The offset of the first byte in `p[0..<n]` that a JSON string scanner must look at: a
/// quote, a backslash, a control byte (< 0x20) or a non-ASCII byte (>= 0x80). Returns `n`
/// when there is none. SSE2 on x86-64, a plain loop elsewhere.
size_t cg_string_special(const uint8_t *p, size_t n);

/// Asks the cache for the line holding `p` ahead of a read: the consent index issues it for
/// a batch of lookups at once, so their memory misses overlap instead of queueing.
static inline void cg_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

/// Moves and resizes an anonymous mapping (Linux `mremap` with `MREMAP_MAYMOVE`): the
/// kernel remaps the pages, copying nothing. Returns NULL on failure or where unsupported.
void *cg_remap(void *old_address, size_t old_size, size_t new_size);

/// Sets the calling thread's nice value (Linux: each thread has its own). Returns 0 on
/// success; does nothing elsewhere.
int cg_nice_this_thread(int nice);

/// True when the CPU has carry-less multiplication (PCLMULQDQ) and SSE4.1.
int cg_crc32_fast_available(void);

/// The gzip CRC-32 (zlib's `crc32`) of `p[0..<n]` continued from `crc`, by folding 64 bytes at
/// a time with carry-less multiplication: several times zlib's speed. `n` must be a multiple
/// of 16 and at least 64, and `cg_crc32_fast_available()` true; callers finish the rest with
/// zlib.
uint32_t cg_crc32_fold(uint32_t crc, const uint8_t *p, size_t n);

#endif

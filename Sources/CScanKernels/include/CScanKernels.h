#ifndef CSCANKERNELS_H
#define CSCANKERNELS_H

#include <stddef.h>
#include <stdint.h>

/// The offset of the first byte in `p[0..<n]` that a JSON string scanner must look at: a
/// quote, a backslash, a control byte (< 0x20) or a non-ASCII byte (>= 0x80). Returns `n`
/// when there is none. SSE2 on x86-64, a plain loop elsewhere.
size_t cg_string_special(const uint8_t *p, size_t n);

#endif

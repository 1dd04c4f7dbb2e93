// A raw deflate (RFC 1951) encoder for whole blocks held in memory: hash chains over 4-byte
// prefixes, lazy matching, and per-block optimal Huffman codes with a stored or fixed block
// where that is smaller.
//
// Why our own: the default build links only zlib, whose level 6 runs at 38 MB/s per core on
// export-like JSONL; gzip output at level 6 then cannot keep up with reading even on both
// cores. The time goes to zlib's chains of 3-byte matches and byte-wise compares. Four-byte
// hashes, word compares and shorter chains find nearly the same matches in half the time, and
// coding each block with its own optimal tree wins back the rest. Every block is
// encoded from the input alone, so the bytes depend only on the input and the level.

#include "CCodecs.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum {
  kWindow = 1 << 15,
  kWindowMask = kWindow - 1,
  kHashBits = 16,
  kMinMatch = 4,
  kMaxMatch = 258,
  kLitLenSymbols = 286,
  kDistSymbols = 30,
  kCodeLenSymbols = 19,
  // Sequences per block: large enough that the dynamic header (~60-90 bytes) is noise, small
  // enough that codes follow the data.
  kBlockSequences = 1 << 15,
  // Empty head slot: below any window limit, so a chain ends on it without a separate test.
  kNoPosition = (int32_t)0x80808080,
};

struct cg_deflater {
  int good_length;  // a match this long makes the lazy search look less far
  int lazy_length;  // a match this long is taken without looking one byte further
  int nice_length;  // a match this long ends the search
  int max_chain;    // candidates looked at per position
  int32_t head[1 << kHashBits];
  int32_t prev[kWindow];
  // A literal is its byte; a match is 1 << 31 | (length - 3) << 16 | (distance - 1).
  uint32_t sequences[kBlockSequences];
  uint32_t litlen_freq[kLitLenSymbols];
  uint32_t dist_freq[kDistSymbols];
};

// Search effort per level, in the spirit of zlib's table, with chains shortened where the
// four-byte hash already rejects the candidates zlib walks past.
static const struct {
  int good, lazy, nice, chain;
} kLevels[10] = {
    {0, 0, 0, 0},        // 0: not used
    {4, 0, 16, 2},       // 1: greedy
    {4, 0, 32, 4},       // 2
    {4, 4, 32, 8},       // 3
    {4, 8, 32, 12},      // 4
    {8, 16, 64, 16},     // 5
    {4, 64, 128, 32},    // 6
    {8, 32, 128, 64},    // 7
    {32, 128, 258, 256}, // 8
    {32, 258, 258, 1024} // 9
};

cg_deflater *cg_deflater_new(int level) {
  if (level < 1 || level > 9) return NULL;
  cg_deflater *d = malloc(sizeof *d);
  if (d == NULL) return NULL;
  d->good_length = kLevels[level].good;
  d->lazy_length = kLevels[level].lazy;
  d->nice_length = kLevels[level].nice;
  d->max_chain = kLevels[level].chain;
  return d;
}

void cg_deflater_free(cg_deflater *d) { free(d); }

size_t cg_deflate_bound(size_t in_len) {
  // No block is written larger than stored: 5 bytes per 65,535, plus a partial byte and the
  // header bits of each block; blocks cover at least one byte.
  return in_len + 5 * (in_len / 65535 + 1) + (in_len / kBlockSequences + 2) * 8 + 64;
}

// MARK: - Symbol tables

static uint16_t length_symbol[kMaxMatch + 1];  // length -> symbol 257...285
static uint8_t length_extra_bits[kMaxMatch + 1];
static uint16_t length_base[kMaxMatch + 1];  // first length of the symbol's range
static uint8_t distance_code[512];  // (distance - 1) -> code, split as zlib does
static const uint16_t kDistBase[kDistSymbols] = {
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769,
    1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const uint8_t kDistExtra[kDistSymbols] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6,
                                                 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12,
                                                 13, 13};
static const uint8_t kCodeLenOrder[kCodeLenSymbols] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5,
                                                       11, 4, 12, 3, 13, 2, 14, 1, 15};
static uint8_t fixed_litlen_lengths[288];
static uint8_t fixed_dist_lengths[32];
static uint16_t fixed_ll_codes[288], fixed_d_codes[32];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void build_codes(const uint8_t *lengths, int count, uint16_t *codes);

static void build_tables(void) {
  static const uint16_t base[29] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27,
                                    31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
  static const uint8_t extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                    2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
  for (int s = 0; s < 29; s++) {
    int end = s == 28 ? 259 : base[s + 1];
    if (s == 27) end = 258;  // 258 has its own symbol, 285
    for (int len = base[s]; len < end; len++) {
      length_symbol[len] = (uint16_t)(257 + s);
      length_extra_bits[len] = extra[s];
      length_base[len] = base[s];
    }
  }
  for (int c = 0; c < kDistSymbols; c++) {
    for (int d = kDistBase[c]; d < kDistBase[c] + (1 << kDistExtra[c]); d++) {
      int i = d - 1;
      if (i < 256) distance_code[i] = (uint8_t)c;
      else distance_code[256 + (i >> 7)] = (uint8_t)c;
    }
  }
  for (int s = 0; s < 288; s++)
    fixed_litlen_lengths[s] = s < 144 ? 8 : s < 256 ? 9 : s < 280 ? 7 : 8;
  for (int s = 0; s < 32; s++) fixed_dist_lengths[s] = 5;
  build_codes(fixed_litlen_lengths, 288, fixed_ll_codes);
  build_codes(fixed_dist_lengths, 32, fixed_d_codes);
}

static inline int dist_code(uint32_t distance_minus_1) {
  return distance_minus_1 < 256 ? distance_code[distance_minus_1]
                                : distance_code[256 + (distance_minus_1 >> 7)];
}

// MARK: - Huffman code lengths

// Code lengths of minimum redundancy for weights sorted ascending, computed in place
// (Moffat and Katajainen, "In-place calculation of minimum-redundancy codes", 1995): after
// the call a[i] is the length for the i-th lightest symbol.
static void minimum_redundancy(uint32_t *a, int n) {
  if (n == 1) {
    a[0] = 1;
    return;
  }
  // Pass 1, left to right: a[next] becomes an internal node's weight, and the nodes it
  // absorbed point to it.
  a[0] += a[1];
  int root = 0, leaf = 2;
  for (int next = 1; next < n - 1; next++) {
    if (leaf >= n || a[root] < a[leaf]) {
      a[next] = a[root];
      a[root++] = (uint32_t)next;
    } else {
      a[next] = a[leaf++];
    }
    if (leaf >= n || (root < next && a[root] < a[leaf])) {
      a[next] += a[root];
      a[root++] = (uint32_t)next;
    } else {
      a[next] += a[leaf++];
    }
  }
  // Pass 2, right to left: parent pointers become internal node depths.
  a[n - 2] = 0;
  for (int next = n - 3; next >= 0; next--) a[next] = a[a[next]] + 1;
  // Pass 3: internal depths become leaf depths.
  int available = 1, used = 0, depth = 0;
  root = n - 2;
  int next = n - 1;
  while (available > 0) {
    while (root >= 0 && (int)a[root] == depth) {
      used++;
      root--;
    }
    while (available > used) {
      a[next--] = (uint32_t)depth;
      available--;
    }
    available = 2 * used;
    depth++;
    used = 0;
  }
}

// Lengths (at most `limit` bits) for `count` symbols with frequencies `freq`; symbols that
// never occur get 0. At least two symbols get a code, so that every tree is complete, as
// zlib's inflate wants for the distance tree.
static void build_lengths(uint32_t *freq, int count, int limit, uint8_t *lengths) {
  uint64_t keys[kLitLenSymbols];
  int used = 0;
  for (int s = 0; s < count; s++) {
    lengths[s] = 0;
    if (freq[s]) keys[used++] = (uint64_t)freq[s] << 16 | (uint64_t)s;
  }
  for (int s = 0; used < 2; s++) {
    if (!freq[s]) {
      freq[s] = 1;
      keys[used++] = (uint64_t)1 << 16 | (uint64_t)s;
    }
  }
  // Insertion sort: at most 286 keys, mostly short runs; deterministic for equal weights.
  for (int i = 1; i < used; i++) {
    uint64_t k = keys[i];
    int j = i - 1;
    while (j >= 0 && keys[j] > k) {
      keys[j + 1] = keys[j];
      j--;
    }
    keys[j + 1] = k;
  }
  uint32_t a[kLitLenSymbols];
  for (int i = 0; i < used; i++) a[i] = (uint32_t)(keys[i] >> 16);
  minimum_redundancy(a, used);
  // Limit the lengths: fold everything deeper into `limit`, then lengthen codes until the
  // Kraft sum is exactly one again (the method of miniz and others).
  int per_length[33] = {0};
  for (int i = 0; i < used; i++) per_length[a[i] > (uint32_t)limit ? (uint32_t)limit : a[i]]++;
  uint32_t kraft = 0;
  for (int l = 1; l <= limit; l++) kraft += (uint32_t)per_length[l] << (limit - l);
  while (kraft > (1u << limit)) {
    per_length[limit]--;
    for (int l = limit - 1; l > 0; l--) {
      if (per_length[l]) {
        per_length[l]--;
        per_length[l + 1] += 2;
        break;
      }
    }
    kraft--;
  }
  // Longest codes to the lightest symbols.
  int i = 0;
  for (int l = limit; l >= 1; l--)
    for (int k = per_length[l]; k > 0; k--) lengths[keys[i++] & 0xffff] = (uint8_t)l;
}

// Canonical codes for `lengths`, bit-reversed for the LSB-first bit writer.
static void build_codes(const uint8_t *lengths, int count, uint16_t *codes) {
  int per_length[16] = {0};
  for (int s = 0; s < count; s++) per_length[lengths[s]]++;
  per_length[0] = 0;
  int next[16];
  int code = 0;
  for (int l = 1; l < 16; l++) {
    code = (code + per_length[l - 1]) << 1;
    next[l] = code;
  }
  for (int s = 0; s < count; s++) {
    int l = lengths[s];
    if (!l) continue;
    unsigned c = (unsigned)next[l]++, r = 0;
    for (int b = 0; b < l; b++) r = r << 1 | ((c >> b) & 1);
    codes[s] = (uint16_t)r;
  }
}

// MARK: - Bit output

typedef struct {
  uint8_t *out, *end;
  uint64_t bits;
  int count;
} bit_writer;

// Callers check room for a whole block before writing it, so puts only flush.
static inline void put_bits(bit_writer *w, uint32_t value, int n) {
  w->bits |= (uint64_t)value << w->count;
  w->count += n;
  if (w->count >= 32) {
    uint32_t word = (uint32_t)w->bits;
    memcpy(w->out, &word, 4);  // little-endian hosts only, as the package assumes
    w->out += 4;
    w->bits >>= 32;
    w->count -= 32;
  }
}

static void align_to_byte(bit_writer *w) {
  while (w->count > 0) {
    *w->out++ = (uint8_t)w->bits;
    w->bits >>= 8;
    w->count = w->count > 8 ? w->count - 8 : 0;
  }
  w->bits = 0;
}

// MARK: - Blocks

typedef struct {
  uint8_t symbol, extra_bits;
  uint8_t extra;
} code_length_item;

// The run-length coding of the code lengths of a dynamic header.
static int encode_lengths(const uint8_t *lengths, int n, code_length_item *items,
                          uint32_t *freq) {
  int count = 0;
  for (int i = 0; i < n;) {
    uint8_t v = lengths[i];
    int run = 1;
    while (i + run < n && lengths[i + run] == v) run++;
    i += run;
    if (v == 0) {
      while (run >= 11) {
        int r = run > 138 ? 138 : run;
        items[count++] = (code_length_item){18, 7, (uint8_t)(r - 11)};
        run -= r;
      }
      if (run >= 3) {
        items[count++] = (code_length_item){17, 3, (uint8_t)(run - 3)};
        run = 0;
      }
    } else {
      items[count++] = (code_length_item){v, 0, 0};
      run--;
      while (run >= 3) {
        int r = run > 6 ? 6 : run;
        items[count++] = (code_length_item){16, 2, (uint8_t)(r - 3)};
        run -= r;
      }
    }
    while (run-- > 0) items[count++] = (code_length_item){v, 0, 0};
  }
  for (int k = 0; k < count; k++) freq[items[k].symbol]++;
  return count;
}

static void write_sequences(bit_writer *w, const uint32_t *seq, int n, const uint16_t *ll_codes,
                            const uint8_t *ll_lengths, const uint16_t *d_codes,
                            const uint8_t *d_lengths) {
  for (int i = 0; i < n; i++) {
    uint32_t s = seq[i];
    if (!(s >> 31)) {
      put_bits(w, ll_codes[s], ll_lengths[s]);
      continue;
    }
    // Each code goes out with its extra bits in one put: at most 15 + 5 and 15 + 13 bits.
    int length = (int)((s >> 16) & 0xff) + 3;
    uint32_t dm1 = s & 0xffff;
    int ls = length_symbol[length];
    put_bits(w, ll_codes[ls] | (uint32_t)(length - length_base[length]) << ll_lengths[ls],
             ll_lengths[ls] + length_extra_bits[length]);
    int dc = dist_code(dm1);
    put_bits(w, d_codes[dc] | (dm1 + 1 - kDistBase[dc]) << d_lengths[dc],
             d_lengths[dc] + kDistExtra[dc]);
  }
  put_bits(w, ll_codes[256], ll_lengths[256]);
}

// Writes the block of `n` sequences covering in[start, end) as whichever of stored, fixed
// or dynamic Huffman is smallest. Returns 0 when `w` has no room for it.
static int flush_block(cg_deflater *d, bit_writer *w, const uint8_t *in, size_t start,
                       size_t end, int n, int final) {
  uint32_t *ll_freq = d->litlen_freq, *d_freq = d->dist_freq;
  ll_freq[256] = 1;
  uint64_t extra_bits = 0;
  // Extra bits do not depend on the codes: count them once for both Huffman choices.
  for (int i = 0; i < n; i++) {
    uint32_t s = d->sequences[i];
    if (s >> 31) {
      int length = (int)((s >> 16) & 0xff) + 3;
      extra_bits += length_extra_bits[length] + kDistExtra[dist_code(s & 0xffff)];
    }
  }
  uint8_t ll_lengths[kLitLenSymbols], d_lengths[kDistSymbols];
  build_lengths(ll_freq, kLitLenSymbols, 15, ll_lengths);
  build_lengths(d_freq, kDistSymbols, 15, d_lengths);
  int hlit = kLitLenSymbols, hdist = kDistSymbols;
  while (hlit > 257 && !ll_lengths[hlit - 1]) hlit--;
  while (hdist > 1 && !d_lengths[hdist - 1]) hdist--;
  uint8_t all_lengths[kLitLenSymbols + kDistSymbols];
  memcpy(all_lengths, ll_lengths, (size_t)hlit);
  memcpy(all_lengths + hlit, d_lengths, (size_t)hdist);
  code_length_item items[kLitLenSymbols + kDistSymbols];
  uint32_t cl_freq[kCodeLenSymbols] = {0};
  int item_count = encode_lengths(all_lengths, hlit + hdist, items, cl_freq);
  uint8_t cl_lengths[kCodeLenSymbols];
  build_lengths(cl_freq, kCodeLenSymbols, 7, cl_lengths);
  int hclen = kCodeLenSymbols;
  while (hclen > 4 && !cl_lengths[kCodeLenOrder[hclen - 1]]) hclen--;

  uint64_t dynamic_bits = 3 + 5 + 5 + 4 + 3 * (uint64_t)hclen + extra_bits;
  for (int k = 0; k < item_count; k++)
    dynamic_bits += cl_lengths[items[k].symbol] + items[k].extra_bits;
  uint64_t fixed_bits = 3 + extra_bits;
  for (int s = 0; s < kLitLenSymbols; s++) {
    dynamic_bits += (uint64_t)ll_freq[s] * ll_lengths[s];
    fixed_bits += (uint64_t)ll_freq[s] * fixed_litlen_lengths[s];
  }
  for (int s = 0; s < kDistSymbols; s++) {
    dynamic_bits += (uint64_t)d_freq[s] * d_lengths[s];
    fixed_bits += (uint64_t)d_freq[s] * 5;
  }
  size_t raw = end - start;
  uint64_t stored_bits = 8 * ((uint64_t)raw + 5 * (raw / 65535 + 1)) + 8;

  uint64_t best = dynamic_bits < fixed_bits ? dynamic_bits : fixed_bits;
  if (stored_bits < best) best = stored_bits;
  if ((uint64_t)(w->end - w->out) < best / 8 + 32) return 0;

  if (best == stored_bits) {
    size_t at = start;
    do {
      size_t chunk = end - at > 65535 ? 65535 : end - at;
      int last = final && at + chunk == end;
      put_bits(w, (uint32_t)last, 3);
      align_to_byte(w);
      uint8_t header[4] = {(uint8_t)chunk, (uint8_t)(chunk >> 8), (uint8_t)~chunk,
                           (uint8_t)(~chunk >> 8)};
      memcpy(w->out, header, 4);
      memcpy(w->out + 4, in + at, chunk);
      w->out += 4 + chunk;
      at += chunk;
    } while (at < end);
  } else if (best == fixed_bits) {
    put_bits(w, (uint32_t)final | 1u << 1, 3);
    write_sequences(w, d->sequences, n, fixed_ll_codes, fixed_litlen_lengths, fixed_d_codes,
                    fixed_dist_lengths);
  } else {
    uint16_t ll_codes[kLitLenSymbols], d_codes[kDistSymbols], cl_codes[kCodeLenSymbols];
    build_codes(ll_lengths, kLitLenSymbols, ll_codes);
    build_codes(d_lengths, kDistSymbols, d_codes);
    build_codes(cl_lengths, kCodeLenSymbols, cl_codes);
    put_bits(w, (uint32_t)final | 2u << 1, 3);
    put_bits(w, (uint32_t)(hlit - 257), 5);
    put_bits(w, (uint32_t)(hdist - 1), 5);
    put_bits(w, (uint32_t)(hclen - 4), 4);
    for (int k = 0; k < hclen; k++) put_bits(w, cl_lengths[kCodeLenOrder[k]], 3);
    for (int k = 0; k < item_count; k++) {
      put_bits(w, cl_codes[items[k].symbol], cl_lengths[items[k].symbol]);
      put_bits(w, items[k].extra, items[k].extra_bits);
    }
    write_sequences(w, d->sequences, n, ll_codes, ll_lengths, d_codes, d_lengths);
  }
  memset(d->litlen_freq, 0, sizeof d->litlen_freq);
  memset(d->dist_freq, 0, sizeof d->dist_freq);
  return 1;
}

// MARK: - Matching

static inline uint32_t load32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

static inline uint64_t load64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

static inline uint32_t hash4(const uint8_t *p) {
  return (load32(p) * 0x1E35A7BDu) >> (32 - kHashBits);
}

// Bytes a[0..<max] and b[0..<max] have in common from the start.
static inline int common_length(const uint8_t *a, const uint8_t *b, int max) {
  int n = 0;
  while (n + 8 <= max) {
    uint64_t x = load64(a + n) ^ load64(b + n);
    if (x) return n + (__builtin_ctzll(x) >> 3);
    n += 8;
  }
  while (n < max && a[n] == b[n]) n++;
  return n;
}

// The longest match at `pos` longer than `best`, among at most `chain` candidates of the
// hash chain starting at `candidate`; 0 when there is none.
static inline int longest_match(const cg_deflater *d, const uint8_t *in, int32_t pos,
                                int32_t candidate, int best, int max_length, int chain,
                                uint32_t *distance) {
  if (best >= max_length) return 0;
  int nice = d->nice_length < max_length ? d->nice_length : max_length;
  const uint8_t *cur = in + pos;
  int32_t limit = pos - kWindow;  // distances up to 32,767: the chain is never stale there
  int found = 0;
  // The four bytes ending where a longer match must still agree, then the first four.
  int probe = best < kMinMatch ? 0 : best - 3;
  uint32_t cur_probe = load32(cur + probe), cur_first = load32(cur);
  while (candidate > limit && chain-- > 0) {
    const uint8_t *m = in + candidate;
    if (load32(m + probe) == cur_probe && load32(m) == cur_first) {
      int length = kMinMatch + common_length(m + kMinMatch, cur + kMinMatch,
                                             max_length - kMinMatch);
      if (length > best) {
        best = length;
        found = 1;
        *distance = (uint32_t)(pos - candidate);
        if (length >= nice) break;
        probe = best - 3;
        cur_probe = load32(cur + probe);
      }
    }
    candidate = d->prev[candidate & kWindowMask];
  }
  return found ? best : 0;
}

// Makes `pos` the head of its hash chain; returns the position it links to.
static inline int32_t insert(cg_deflater *d, const uint8_t *in, int32_t pos) {
  uint32_t h = hash4(in + pos);
  int32_t previous = d->head[h];
  d->prev[pos & kWindowMask] = previous;
  d->head[h] = pos;
  return previous;
}

// Hash-inserts the positions a match covers after its first, which the search inserted.
static inline void insert_covered(cg_deflater *d, const uint8_t *in, int32_t first,
                                  int32_t end, int32_t n) {
  for (int32_t p = first + 1; p < end && n - p >= kMinMatch; p++) insert(d, in, p);
}

static inline void emit_literal(cg_deflater *d, int *count, uint8_t byte) {
  d->sequences[(*count)++] = byte;
  d->litlen_freq[byte]++;
}

static inline void emit_match(cg_deflater *d, int *count, int length, uint32_t distance) {
  d->sequences[(*count)++] = 1u << 31 | (uint32_t)(length - 3) << 16 | (distance - 1);
  d->litlen_freq[length_symbol[length]]++;
  d->dist_freq[dist_code(distance - 1)]++;
}

size_t cg_deflate_raw(cg_deflater *d, const uint8_t *in, size_t in_len, uint8_t *out,
                      size_t out_cap) {
  pthread_once(&tables_once, build_tables);
  if (in_len > (1u << 30) || out_cap < 16) return 0;
  bit_writer w = {out, out + out_cap, 0, 0};
  memset(d->head, 0x80, sizeof d->head);  // every slot kNoPosition
  _Static_assert(kNoPosition == (int32_t)0x80808080, "head slots are cleared bytewise");
  memset(d->litlen_freq, 0, sizeof d->litlen_freq);
  memset(d->dist_freq, 0, sizeof d->dist_freq);
  int32_t n = (int32_t)in_len;
  int32_t pos = 0, block_start = 0;
  int count = 0;
  int prev_length = 0, have_prev = 0;
  uint32_t prev_distance = 0;

  while (pos < n) {
    int length = 0;
    uint32_t distance = 0;
    if (n - pos >= kMinMatch) {
      int32_t candidate = insert(d, in, pos);
      // Greedy levels never hold a match back, so they always search.
      if (!have_prev || prev_length < d->lazy_length) {
        int chain = have_prev && prev_length >= d->good_length ? d->max_chain >> 2 : d->max_chain;
        int max_length = n - pos < kMaxMatch ? n - pos : kMaxMatch;
        length = longest_match(d, in, pos, candidate, have_prev ? prev_length : 0, max_length,
                               chain, &distance);
      }
    }
    if (d->lazy_length == 0) {
      // Greedy: a match is taken at once.
      if (length >= kMinMatch) {
        emit_match(d, &count, length, distance);
        insert_covered(d, in, pos, pos + length, n);
        pos += length;
      } else {
        emit_literal(d, &count, in[pos]);
        pos++;
      }
    } else if (have_prev && prev_length >= kMinMatch && length <= prev_length) {
      // The match found one byte back is at least as long: take it.
      emit_match(d, &count, prev_length, prev_distance);
      int32_t end = pos - 1 + prev_length;
      insert_covered(d, in, pos, end, n);
      pos = end;
      have_prev = 0;
      prev_length = 0;
    } else {
      if (have_prev) emit_literal(d, &count, in[pos - 1]);
      have_prev = 1;
      prev_length = length;
      prev_distance = distance;
      pos++;
    }
    if (count >= kBlockSequences - 2) {
      int32_t end = have_prev ? pos - 1 : pos;
      if (!flush_block(d, &w, in, (size_t)block_start, (size_t)end, count, 0)) return 0;
      block_start = end;
      count = 0;
    }
  }
  if (have_prev) emit_literal(d, &count, in[pos - 1]);
  if (!flush_block(d, &w, in, (size_t)block_start, (size_t)n, count, 1)) return 0;
  align_to_byte(&w);
  return (size_t)(w.out - out);
}

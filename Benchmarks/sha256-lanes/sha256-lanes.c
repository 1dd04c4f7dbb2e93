// Does this CPU hash two independent SHA-256 streams faster interleaved than one after the
// other? One SHA-NI stream is bound by the latency of sha256rnds2, not its throughput, so a
// second stream's rounds can fill the gaps. A run hashes its input and its kept output, two
// independent streams, on the writer thread: ~0.42 s of a 2.1 s run on the 2-core machine.
//
//   cc -O2 -ISources/CScanKernels/include -o /tmp/sha256-lanes \
//     Benchmarks/sha256-lanes/sha256-lanes.c && /tmp/sha256-lanes
//
// Self-checking: the "abc" test vector, and two lanes against one. It times the package's own
// kernels (`cg_sha256_blocks`, `cg_sha256_blocks_x2` in Sources/CScanKernels).
// First: it defines _GNU_SOURCE before any system header.
#include "../../Sources/CScanKernels/CScanKernels.c"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now() {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}
static void x1(uint32_t *s, const uint8_t *d, size_t n) { cg_sha256_blocks(s, d, n); }
static void x2(uint32_t *a, const uint8_t *da, uint32_t *b, const uint8_t *db, size_t n) {
  cg_sha256_blocks_x2(a, da, b, db, n);
}

static const uint32_t H0[8] = {0x6a09e667,0xbb67ae85,0x3c6ef372,0xa54ff53a,0x510e527f,0x9b05688c,0x1f83d9ab,0x5be0cd19};
// full digest with padding, using x1 for all blocks
static void digest(const uint8_t *m, size_t n, uint8_t out[32]) {
  uint32_t s[8]; memcpy(s, H0, 32);
  size_t full = n / 64; x1(s, m, full);
  uint8_t tail[128] = {0}; size_t r = n - full * 64; memcpy(tail, m + full * 64, r); tail[r] = 0x80;
  size_t tb = (r + 9 <= 64) ? 1 : 2; uint64_t bits = (uint64_t)n * 8;
  for (int i = 0; i < 8; i++) tail[tb * 64 - 1 - i] = (uint8_t)(bits >> (8 * i));
  x1(s, tail, tb);
  for (int i = 0; i < 8; i++) { out[4*i]=s[i]>>24; out[4*i+1]=s[i]>>16; out[4*i+2]=s[i]>>8; out[4*i+3]=s[i]; }
}
int main(void) {
  // The FIPS 180-2 "abc" vector, then the two lanes against one lane on 64 MiB each.
  static const char *abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  uint8_t out[32];
  char hex[65];
  digest((const uint8_t *)"abc", 3, out);
  for (int i = 0; i < 32; i++) sprintf(hex + 2 * i, "%02x", out[i]);
  if (strcmp(hex, abc) != 0) { printf("wrong digest of abc: %s\n", hex); return 1; }
  size_t N = 64 << 20;
  uint8_t *a = malloc(N), *b = malloc(N);
  for (size_t i = 0; i < N; i++) { a[i] = (uint8_t)(i * 131 + 7); b[i] = (uint8_t)(i * 71 + 3); }
  uint32_t s1[8], s2[8], t1[8], t2[8];
  memcpy(s1, H0, 32); memcpy(s2, H0, 32); memcpy(t1, H0, 32); memcpy(t2, H0, 32);
  x1(s1, a, N / 64); x1(s2, b, N / 64); x2(t1, a, t2, b, N / 64);
  if (memcmp(s1, t1, 32) || memcmp(s2, t2, 32)) { printf("two lanes disagree with one\n"); return 1; }
  for (int r = 0; r < 3; r++) {
    memcpy(s1, H0, 32);
    double t0 = now(); x1(s1, a, N / 64); x1(s1, b, N / 64); double t = now() - t0;
    memcpy(t1, H0, 32); memcpy(t2, H0, 32);
    double u0 = now(); x2(t1, a, t2, b, N / 64); double u = now() - u0;
    printf("one stream: %.2f GB/s   two streams interleaved: %.2f GB/s together (%.2fx)\n",
           2.0 * N / t / 1e9, 2.0 * N / u / 1e9, t / u);
  }
  return 0;
}

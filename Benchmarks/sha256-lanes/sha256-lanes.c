// Does this CPU hash two independent SHA-256 streams faster interleaved than one after the
// other? One SHA-NI stream is bound by the latency of sha256rnds2, not its throughput, so a
// second stream's rounds can fill the gaps. A run hashes its input and its kept output, two
// independent streams, on the writer thread: ~0.42 s of a 2.1 s run on the 2-core machine.
//
//   cc -O3 -o /tmp/sha256-lanes Benchmarks/sha256-lanes/sha256-lanes.c && /tmp/sha256-lanes
//
// Self-checking: the "abc" test vector, and two lanes against one. The package's own kernels
// (`cg_sha256_blocks`, `cg_sha256_blocks_x2`) are in Sources/CScanKernels.
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const uint32_t K[64] = {
0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,0x923f82a4,0xab1c5ed5,
0xd807aa98,0x12835b01,0x243185be,0x550c7dc3,0x72be5d74,0x80deb1fe,0x9bdc06a7,0xc19bf174,
0xe49b69c1,0xefbe4786,0x0fc19dc6,0x240ca1cc,0x2de92c6f,0x4a7484aa,0x5cb0a9dc,0x76f988da,
0x983e5152,0xa831c66d,0xb00327c8,0xbf597fc7,0xc6e00bf3,0xd5a79147,0x06ca6351,0x14292967,
0x27b70a85,0x2e1b2138,0x4d2c6dfc,0x53380d13,0x650a7354,0x766a0abb,0x81c2c92e,0x92722c85,
0xa2bfe8a1,0xa81a664b,0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,0xf40e3585,0x106aa070,
0x19a4c116,0x1e376c08,0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,0x5b9cca4f,0x682e6ff3,
0x748f82ee,0x78a5636f,0x84c87814,0x8cc70208,0x90befffa,0xa4506ceb,0xbef9a3f7,0xc67178f2};

#define LANES_MAX 2
__attribute__((target("sha,sse4.1,ssse3")))
static inline void compress_lanes(int lanes, uint32_t *st[], const uint8_t *d[], size_t blocks) {
  const __m128i MASK = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i S0[LANES_MAX], S1[LANES_MAX];
  for (int l = 0; l < lanes; l++) {
    __m128i t = _mm_loadu_si128((const __m128i *)&st[l][0]);
    __m128i s1 = _mm_loadu_si128((const __m128i *)&st[l][4]);
    t = _mm_shuffle_epi32(t, 0xB1);
    s1 = _mm_shuffle_epi32(s1, 0x1B);
    S0[l] = _mm_alignr_epi8(t, s1, 8);
    S1[l] = _mm_blend_epi16(s1, t, 0xF0);
  }
  for (size_t b = 0; b < blocks; b++) {
    __m128i A0[LANES_MAX], A1[LANES_MAX], M[LANES_MAX][4];
    for (int l = 0; l < lanes; l++) { A0[l] = S0[l]; A1[l] = S1[l]; }
#pragma GCC unroll 16
    for (int g = 0; g < 16; g++) {
      __m128i k = _mm_loadu_si128((const __m128i *)&K[4 * g]);
      for (int l = 0; l < lanes; l++) {
        if (g < 4) M[l][g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(d[l] + 64 * b + 16 * g)), MASK);
        __m128i msg = _mm_add_epi32(M[l][g & 3], k);
        S1[l] = _mm_sha256rnds2_epu32(S1[l], S0[l], msg);
        if (g >= 3 && g < 15) {
          __m128i t = _mm_alignr_epi8(M[l][g & 3], M[l][(g - 1) & 3], 4);
          M[l][(g + 1) & 3] = _mm_sha256msg2_epu32(_mm_add_epi32(M[l][(g + 1) & 3], t), M[l][g & 3]);
        }
        msg = _mm_shuffle_epi32(msg, 0x0E);
        S0[l] = _mm_sha256rnds2_epu32(S0[l], S1[l], msg);
        if (g >= 1 && g < 13) M[l][(g - 1) & 3] = _mm_sha256msg1_epu32(M[l][(g - 1) & 3], M[l][g & 3]);
      }
    }
    for (int l = 0; l < lanes; l++) { S0[l] = _mm_add_epi32(S0[l], A0[l]); S1[l] = _mm_add_epi32(S1[l], A1[l]); }
  }
  for (int l = 0; l < lanes; l++) {
    __m128i t = _mm_shuffle_epi32(S0[l], 0x1B);
    __m128i s1 = _mm_shuffle_epi32(S1[l], 0xB1);
    _mm_storeu_si128((__m128i *)&st[l][0], _mm_blend_epi16(t, s1, 0xF0));
    _mm_storeu_si128((__m128i *)&st[l][4], _mm_alignr_epi8(s1, t, 8));
  }
}
__attribute__((noinline)) void x1(uint32_t *s, const uint8_t *d, size_t n) { uint32_t *st[1] = {s}; const uint8_t *dd[1] = {d}; compress_lanes(1, st, dd, n); }
__attribute__((noinline)) void x2(uint32_t *a, const uint8_t *da, uint32_t *b, const uint8_t *db, size_t n) { uint32_t *st[2] = {a, b}; const uint8_t *dd[2] = {da, db}; compress_lanes(2, st, dd, n); }

static const uint32_t H0[8] = {0x6a09e667,0xbb67ae85,0x3c6ef372,0xa54ff53a,0x510e527f,0x9b05688c,0x1f83d9ab,0x5be0cd19};
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
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

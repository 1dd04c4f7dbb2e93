#include "CCodecs.h"

#include <stdlib.h>
#include <string.h>

#ifdef CG_ISAL
#include <isa-l/igzip_lib.h>

struct cg_isal_inflater {
  struct inflate_state state;
};


cg_isal_inflater *cg_isal_inflater_new(void) {
  // Zeroed: isal_inflate_init leaves some header-parsing fields alone, and stale heap bytes
  // there broke the second member of a multi-member file.
  cg_isal_inflater *p = calloc(1, sizeof *p);
  if (p == NULL) return NULL;
  isal_inflate_init(&p->state);
  p->state.crc_flag = ISAL_GZIP_NO_HDR_VER;
  return p;
}

void cg_isal_inflater_free(cg_isal_inflater *p) { free(p); }

void cg_isal_inflater_reset(cg_isal_inflater *p) {
  // A full re-initialisation, as cheap as a reset and leaving nothing behind.
  memset(p, 0, sizeof *p);
  isal_inflate_init(&p->state);
  p->state.crc_flag = ISAL_GZIP_NO_HDR_VER;
}

int cg_isal_inflate(cg_isal_inflater *p, const uint8_t *in, size_t in_len, size_t *consumed,
                    uint8_t *out, size_t out_len, size_t *produced) {
  uint32_t in_avail = in_len > UINT32_MAX ? UINT32_MAX : (uint32_t)in_len;
  uint32_t out_avail = out_len > UINT32_MAX ? UINT32_MAX : (uint32_t)out_len;
  p->state.next_in = (uint8_t *)in;
  p->state.avail_in = in_avail;
  p->state.next_out = out;
  p->state.avail_out = out_avail;
  int rc = isal_inflate(&p->state);
  *consumed = in_avail - p->state.avail_in;
  *produced = out_avail - p->state.avail_out;
  if (rc < 0) return rc;
  return p->state.block_state == ISAL_BLOCK_FINISH ? 1 : 0;
}

const char *cg_isal_error(int code) {
  switch (code) {
  case ISAL_INVALID_BLOCK: return "invalid deflate block";
  case ISAL_INVALID_SYMBOL: return "invalid deflate symbol";
  case ISAL_INVALID_LOOKBACK: return "invalid distance too far back";
  case ISAL_INVALID_WRAPPER: return "invalid gzip header";
  case ISAL_UNSUPPORTED_METHOD: return "unknown compression method";
  case ISAL_INCORRECT_CHECKSUM: return "incorrect data check";
  default: return "inflate error";
  }
}

size_t cg_isal_level_buffer_size(int level) {
  switch (level) {
  case 1: return ISAL_DEF_LVL1_DEFAULT;
  case 2: return ISAL_DEF_LVL2_DEFAULT;
  default: return ISAL_DEF_LVL3_DEFAULT;
  }
}

size_t cg_isal_deflate_raw(int level, const uint8_t *in, size_t in_len, uint8_t *out,
                           size_t out_cap, uint8_t *level_buf, size_t level_buf_size) {
  if (in_len > UINT32_MAX) return 0;
  struct isal_zstream z;
  isal_deflate_stateless_init(&z);
  z.level = (uint32_t)level;
  z.level_buf = level_buf;
  z.level_buf_size = (uint32_t)level_buf_size;
  z.gzip_flag = IGZIP_DEFLATE;
  z.end_of_stream = 1;
  z.flush = NO_FLUSH;
  z.next_in = (uint8_t *)in;
  z.avail_in = (uint32_t)in_len;
  z.next_out = out;
  z.avail_out = out_cap > UINT32_MAX ? UINT32_MAX : (uint32_t)out_cap;
  if (isal_deflate_stateless(&z) != COMP_OK) return 0;
  return z.total_out;
}

#else

cg_isal_inflater *cg_isal_inflater_new(void) { return NULL; }
void cg_isal_inflater_free(cg_isal_inflater *p) { (void)p; }
void cg_isal_inflater_reset(cg_isal_inflater *p) { (void)p; }
int cg_isal_inflate(cg_isal_inflater *p, const uint8_t *in, size_t in_len, size_t *consumed,
                    uint8_t *out, size_t out_len, size_t *produced) {
  (void)p, (void)in, (void)in_len, (void)out, (void)out_len;
  *consumed = 0;
  *produced = 0;
  return -100;
}
const char *cg_isal_error(int code) {
  (void)code;
  return "ISA-L not built in";
}
size_t cg_isal_level_buffer_size(int level) {
  (void)level;
  return 0;
}
size_t cg_isal_deflate_raw(int level, const uint8_t *in, size_t in_len, uint8_t *out,
                           size_t out_cap, uint8_t *level_buf, size_t level_buf_size) {
  (void)level, (void)in, (void)in_len, (void)out, (void)out_cap, (void)level_buf,
      (void)level_buf_size;
  return 0;
}

#endif

#ifdef CG_LIBDEFLATE
#include <libdeflate.h>

cg_libdeflate *cg_libdeflate_new(int level) {
  return (cg_libdeflate *)libdeflate_alloc_compressor(level);
}
void cg_libdeflate_free(cg_libdeflate *c) {
  libdeflate_free_compressor((struct libdeflate_compressor *)c);
}
size_t cg_libdeflate_bound(cg_libdeflate *c, size_t in_len) {
  return libdeflate_gzip_compress_bound((struct libdeflate_compressor *)c, in_len);
}
size_t cg_libdeflate_gzip(cg_libdeflate *c, const uint8_t *in, size_t in_len, uint8_t *out,
                          size_t out_cap) {
  return libdeflate_gzip_compress((struct libdeflate_compressor *)c, in, in_len, out, out_cap);
}

#else

cg_libdeflate *cg_libdeflate_new(int level) {
  (void)level;
  return NULL;
}
void cg_libdeflate_free(cg_libdeflate *c) { (void)c; }
size_t cg_libdeflate_bound(cg_libdeflate *c, size_t in_len) {
  (void)c, (void)in_len;
  return 0;
}
size_t cg_libdeflate_gzip(cg_libdeflate *c, const uint8_t *in, size_t in_len, uint8_t *out,
                          size_t out_cap) {
  (void)c, (void)in, (void)in_len, (void)out, (void)out_cap;
  return 0;
}

#endif

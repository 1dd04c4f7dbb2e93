// zstd through libzstd, compiled to stubs unless the ZSTD trait defines CG_ZSTD.
#include "CCodecs.h"

#include <stdlib.h>

#ifdef CG_ZSTD
#include <zstd.h>

struct cg_zstd_decoder {
  ZSTD_DStream *stream;
  const char *error;
};

cg_zstd_decoder *cg_zstd_decoder_new(void) {
  cg_zstd_decoder *d = calloc(1, sizeof *d);
  if (d == NULL) return NULL;
  d->stream = ZSTD_createDStream();
  // 2^27 = 128 MiB: a frame asking for a larger window fails instead of allocating it.
  if (d->stream == NULL || ZSTD_isError(ZSTD_DCtx_setParameter(d->stream, ZSTD_d_windowLogMax, 27))) {
    ZSTD_freeDStream(d->stream);
    free(d);
    return NULL;
  }
  return d;
}

void cg_zstd_decoder_free(cg_zstd_decoder *d) {
  if (d == NULL) return;
  ZSTD_freeDStream(d->stream);
  free(d);
}

int cg_zstd_decode(cg_zstd_decoder *d, const uint8_t *in, size_t in_len, size_t *consumed,
                   uint8_t *out, size_t out_len, size_t *produced) {
  ZSTD_inBuffer input = {in, in_len, 0};
  ZSTD_outBuffer output = {out, out_len, 0};
  size_t rc = ZSTD_decompressStream(d->stream, &output, &input);
  *consumed = input.pos;
  *produced = output.pos;
  if (ZSTD_isError(rc)) {
    d->error = ZSTD_getErrorName(rc);
    return -1;
  }
  return rc == 0 ? 1 : 0;
}

const char *cg_zstd_decoder_error(cg_zstd_decoder *d) {
  return d->error ? d->error : "zstd error";
}

struct cg_zstd_encoder {
  ZSTD_CCtx *cctx;
};

cg_zstd_encoder *cg_zstd_encoder_new(int level) {
  cg_zstd_encoder *e = calloc(1, sizeof *e);
  if (e == NULL) return NULL;
  e->cctx = ZSTD_createCCtx();
  if (e->cctx == NULL ||
      ZSTD_isError(ZSTD_CCtx_setParameter(e->cctx, ZSTD_c_compressionLevel, level)) ||
      ZSTD_isError(ZSTD_CCtx_setParameter(e->cctx, ZSTD_c_checksumFlag, 1)) ||
      ZSTD_isError(ZSTD_CCtx_setParameter(e->cctx, ZSTD_c_contentSizeFlag, 1))) {
    ZSTD_freeCCtx(e->cctx);
    free(e);
    return NULL;
  }
  return e;
}

void cg_zstd_encoder_free(cg_zstd_encoder *e) {
  if (e == NULL) return;
  ZSTD_freeCCtx(e->cctx);
  free(e);
}

size_t cg_zstd_bound(size_t in_len) { return ZSTD_compressBound(in_len); }

size_t cg_zstd_compress_frame(cg_zstd_encoder *e, const uint8_t *in, size_t in_len, uint8_t *out,
                              size_t out_cap) {
  // One-shot: the frame header carries the content size, and the bytes depend only on the
  // input and the level.
  size_t rc = ZSTD_compress2(e->cctx, out, out_cap, in, in_len);
  return ZSTD_isError(rc) ? 0 : rc;
}

const char *cg_zstd_version(void) { return ZSTD_versionString(); }

#else

cg_zstd_decoder *cg_zstd_decoder_new(void) { return NULL; }
void cg_zstd_decoder_free(cg_zstd_decoder *d) { (void)d; }
int cg_zstd_decode(cg_zstd_decoder *d, const uint8_t *in, size_t in_len, size_t *consumed,
                   uint8_t *out, size_t out_len, size_t *produced) {
  (void)d, (void)in, (void)in_len, (void)out, (void)out_len;
  *consumed = 0;
  *produced = 0;
  return -1;
}
const char *cg_zstd_decoder_error(cg_zstd_decoder *d) {
  (void)d;
  return "zstd support not built";
}
cg_zstd_encoder *cg_zstd_encoder_new(int level) {
  (void)level;
  return NULL;
}
void cg_zstd_encoder_free(cg_zstd_encoder *e) { (void)e; }
size_t cg_zstd_bound(size_t in_len) {
  (void)in_len;
  return 0;
}
size_t cg_zstd_compress_frame(cg_zstd_encoder *e, const uint8_t *in, size_t in_len, uint8_t *out,
                              size_t out_cap) {
  (void)e, (void)in, (void)in_len, (void)out, (void)out_cap;
  return 0;
}
const char *cg_zstd_version(void) { return "not built"; }

#endif

#ifndef CCODECS_H
#define CCODECS_H

#include <stddef.h>
#include <stdint.h>

/// Optional accelerated gzip codecs. The declarations are always present; the definitions
/// call ISA-L only when the package is built with the ISAL trait (CG_ISAL) and libdeflate
/// only with the LIBDEFLATE trait (CG_LIBDEFLATE); without them nothing links against either
/// library, and Swift code calls these only under `#if ISAL` / `#if LIBDEFLATE` (`Codecs`).

/// A streaming ISA-L inflater for the deflate data and trailer of a gzip member: ISA-L checks
/// CRC-32 and ISIZE. The caller parses the header: ISA-L 2.30's own header parser misread
/// the flags of a header that arrived in small pieces (a second member's FNAME became an
/// FCOMMENT), so it is not used.
typedef struct cg_isal_inflater cg_isal_inflater;

cg_isal_inflater *cg_isal_inflater_new(void);
void cg_isal_inflater_free(cg_isal_inflater *inflater);
/// Prepares for the next member.
void cg_isal_inflater_reset(cg_isal_inflater *inflater);
/// Inflates from `in` into `out`. Returns 1 at the end of a member (its trailer checked),
/// 0 when more input or output room is needed, or a negative ISA-L error code.
int cg_isal_inflate(cg_isal_inflater *inflater, const uint8_t *in, size_t in_len,
                    size_t *consumed, uint8_t *out, size_t out_len, size_t *produced);
/// A short description of an ISA-L error code.
const char *cg_isal_error(int code);

/// Bytes of scratch an ISA-L deflate at `level` (1–3) needs.
size_t cg_isal_level_buffer_size(int level);
/// Raw deflate data of `in` at ISA-L `level`, final block included, written to `out` (the
/// caller frames it as a gzip member). Returns the bytes written, or 0 when `out_cap` is too
/// small.
size_t cg_isal_deflate_raw(int level, const uint8_t *in, size_t in_len, uint8_t *out,
                           size_t out_cap, uint8_t *level_buf, size_t level_buf_size);

/// A libdeflate compressor at one level; one gzip member per call.
typedef struct cg_libdeflate cg_libdeflate;

cg_libdeflate *cg_libdeflate_new(int level);
void cg_libdeflate_free(cg_libdeflate *compressor);
size_t cg_libdeflate_bound(cg_libdeflate *compressor, size_t in_len);
/// Returns the bytes written, or 0 when `out_cap` is too small.
size_t cg_libdeflate_gzip(cg_libdeflate *compressor, const uint8_t *in, size_t in_len,
                          uint8_t *out, size_t out_cap);

/// The package's own raw deflate encoder (Deflate.c), always built: it makes gzip output at
/// levels where zlib is slow keep up with reading in the default build.
typedef struct cg_deflater cg_deflater;

/// A deflater at `level` (1-9), or NULL for another level or when out of memory.
cg_deflater *cg_deflater_new(int level);
void cg_deflater_free(cg_deflater *deflater);
/// The most bytes `cg_deflate_raw` writes for `in_len` input bytes.
size_t cg_deflate_bound(size_t in_len);
/// Raw deflate data of `in` (at most 1 GiB), final block included, written to `out`.
/// Returns the bytes written, or 0 when `out_cap` is too small.
size_t cg_deflate_raw(cg_deflater *deflater, const uint8_t *in, size_t in_len, uint8_t *out,
                      size_t out_cap);

/// zstd (the ZSTD trait, Debian libzstd-dev). A streaming decoder over a sequence of frames
/// (skippable frames skipped), with the window limited to 2^27 bytes (128 MiB, what `zstd -d`
/// accepts by default): a larger one is an error, never an allocation.
typedef struct cg_zstd_decoder cg_zstd_decoder;

cg_zstd_decoder *cg_zstd_decoder_new(void);
void cg_zstd_decoder_free(cg_zstd_decoder *decoder);
/// Decodes from `in` into `out`. Returns 1 when a frame (or skippable frame) has just ended
/// and everything of it is in `out`, 0 when more input or output room is needed, or -1 on an
/// error, whose text `cg_zstd_decoder_error` gives.
int cg_zstd_decode(cg_zstd_decoder *decoder, const uint8_t *in, size_t in_len, size_t *consumed,
                   uint8_t *out, size_t out_len, size_t *produced);
const char *cg_zstd_decoder_error(cg_zstd_decoder *decoder);

/// A zstd compressor at one level (1-19); one frame per call, with its content size and
/// checksum.
typedef struct cg_zstd_encoder cg_zstd_encoder;

cg_zstd_encoder *cg_zstd_encoder_new(int level);
void cg_zstd_encoder_free(cg_zstd_encoder *encoder);
size_t cg_zstd_bound(size_t in_len);
/// Returns the bytes written, or 0 on an error (`out_cap` too small).
size_t cg_zstd_compress_frame(cg_zstd_encoder *encoder, const uint8_t *in, size_t in_len,
                              uint8_t *out, size_t out_cap);
/// libzstd's version, e.g. "1.5.4".
const char *cg_zstd_version(void);

#endif

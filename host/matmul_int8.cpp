// Launcher for kernels/matmul_int8.cl (see matmul_int8.hpp).
#include "host/matmul_int8.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "engine/error.hpp"
#include "host/device.hpp"
#include "host/env.hpp"

namespace quill::host {
namespace {
constexpr int kWorkGroup = 128;  // matmul_int8_rows: 4 rows x 32 lanes
constexpr int kLanes = 32;
constexpr int kTokTile = 4;
// matmul_int8_mma tilings (warps_m, warps_n, mt, nt: warps_m x warps_n warps, each mt m16 tiles of tokens
// x nt n8 tiles of rows; dist: MMA_DIST, the k-tiles between a tile's loads and its use), measured
// (docs/PERFORMANCE.md): 4,2,2,8,1 (BM 128, BN 128) best in general (dist 2 needs 176 registers: slower);
// when its grid would not fill the compute units (e.g. 512 tokens x 4096 rows: 128 work-groups for 132
// SMs), 4,2,2,4,2 (BM 128, BN 64: twice the work-groups, loads two k-tiles ahead) instead (session 11,
// run 70: 294 -> 305 TOPS at 512x4096x4096, 339 -> 377 at 512x4096x14336).
// $QUILL_INT8_MMA / $QUILL_INT8_MMA_SMALL = "wm,wn,mt,nt[,dist]" override them (benchmarks); BN divides
// kRowAlign.
struct MmaTilingDefault {
  int wm, wn, mt, nt, dist;
};
constexpr MmaTilingDefault kMmaTiling{4, 2, 2, 8, 1}, kMmaTilingSmallGrid{4, 2, 2, 4, 2};
// matmul_int8_fused: 16 warps, 2 rows per warp task, one work-group per compute unit (persistent).
// $QUILL_INT8_FUSED="rows_per_warp,groups_per_cu" overrides the last two (benchmarks).
constexpr int kFusedWorkGroup = 512, kFusedRowsPerWarp = 2, kFusedGroupsPerCu = 1;
static_assert(MatmulInt8::kRowAlign % kFusedRowsPerWarp == 0);
// The one-token variant (FZ_ONE; on NVIDIA it streams, FZ_STREAM): its own work-group size, rows per warp
// task and work-groups per compute unit; x sits in registers, FZ_XR = kFusedOneMaxCols / (4 * work group)
// float4 per work-item. $QUILL_INT8_ONE="work_group,rows_per_warp,groups_per_cu" overrides (benchmarks).
constexpr int kFusedOneWorkGroup = 512, kFusedOneRowsPerWarp = 1, kFusedOneGroupsPerCu = 1;
constexpr int kFusedOneMaxCols = 16384;
constexpr int kOutlierGatherWg = 256, kOutlierGatherRows = kOutlierGatherWg / 32;  // int8_outliers.cl
static_assert(MatmulInt8::kOutlierCap % MatmulInt8::kColAlign == 0 && MatmulInt8::kRowAlign % kOutlierGatherRows == 0);
}  // namespace

std::array<size_t, 5> MatmulInt8::outlier_bytes(const Int8WeightBuffers& w, int n_tok) {
  return {2 * size_t(n_tok) * kOutlierCap, 2 * size_t(n_tok) * 4, size_t(w.rows_pad) * kOutlierCap,
          size_t(w.cols) * 4, 3 * 4};
}

MatmulInt8::MatmulInt8(Device& device) : device_(device) {
  has_mma_ = mma_available(device.info());
  int groups_per_cu = kFusedGroupsPerCu;
  fused_rpw_ = kFusedRowsPerWarp;
  if (const char* env = std::getenv("QUILL_INT8_FUSED"); env && *env) {
    if (std::sscanf(env, "%d,%d", &fused_rpw_, &groups_per_cu) != 2 || fused_rpw_ < 1 || kRowAlign % fused_rpw_ != 0 ||
        groups_per_cu < 1)
      fail(ErrorKind::kInvalidArgument, "QUILL_INT8_FUSED={}: want rows_per_warp (dividing {}),groups_per_cu", env,
           kRowAlign);
  }
  rows_ = Kernel(mma_program(device, kMmaTiling.wm, kMmaTiling.wn, kMmaTiling.mt, kMmaTiling.nt, kMmaTiling.dist),
                 "matmul_int8_rows");
  if (has_mma_) {
    mma_ = MmaTiling::make(device, "QUILL_INT8_MMA", kMmaTiling.wm, kMmaTiling.wn, kMmaTiling.mt, kMmaTiling.nt,
                           kMmaTiling.dist);
    mma_small_ = MmaTiling::make(device, "QUILL_INT8_MMA_SMALL", kMmaTilingSmallGrid.wm, kMmaTilingSmallGrid.wn,
                                 kMmaTilingSmallGrid.mt, kMmaTilingSmallGrid.nt, kMmaTilingSmallGrid.dist);
    outlier_gather_ =
        Kernel(device.program("int8_outliers.cl", fmt::format("-DOG_WG={} -DOG_CAP={}", kOutlierGatherWg, kOutlierCap)),
               "int8_outlier_gather");
  }
  // $QUILL_INT8_FUSED_DEFS: extra build flags for measurements (e.g. -DFZ_NO_STREAM: the prologue alone).
  const std::string defs = env_string("QUILL_INT8_FUSED_DEFS");
  auto fused = device.program("matmul_int8_fused.cl",
                              fmt::format("-DFWG={} -DRPW={} -DFMAX_TOK={} -DLCODE_BYTES={} -DMAX_FLAG_WORDS={} "
                                          "-cl-fp32-correctly-rounded-divide-sqrt {}",
                                          kFusedWorkGroup, fused_rpw_, kFusedMaxTokens, kFusedMaxKpad,
                                          kFusedMaxCols / 32, defs));
  fused_ = Kernel(fused, "matmul_int8_fused");
  int one_groups_per_cu = kFusedOneGroupsPerCu;
  one_wg_ = kFusedOneWorkGroup;
  one_rpw_ = kFusedOneRowsPerWarp;
  if (const char* env = std::getenv("QUILL_INT8_ONE"); env && *env) {
    if (std::sscanf(env, "%d,%d,%d", &one_wg_, &one_rpw_, &one_groups_per_cu) != 3 || one_wg_ < 32 ||
        one_wg_ % 32 != 0 || kFusedOneMaxCols % (4 * one_wg_) != 0 || one_rpw_ < 1 || kRowAlign % one_rpw_ != 0 ||
        one_groups_per_cu < 1)
      fail(ErrorKind::kInvalidArgument,
           "QUILL_INT8_ONE={}: want work_group (a multiple of 32 dividing {}),rows_per_warp (dividing {}),groups_per_cu",
           env, kFusedOneMaxCols / 4, kRowAlign);
  }
  auto fused_one = device.program("matmul_int8_fused.cl",
                                  fmt::format("-DFWG={} -DRPW={} -DFMAX_TOK={} -DLCODE_BYTES={} -DMAX_FLAG_WORDS={} "
                                              "-DFZ_ONE=1 -DFZ_XR={} -cl-fp32-correctly-rounded-divide-sqrt {}",
                                              one_wg_, one_rpw_, kFusedMaxTokens, kFusedMaxKpad, kFusedMaxCols / 32,
                                              kFusedOneMaxCols / (4 * one_wg_), defs));
  one_groups_ = std::max<int>(1, int(device.info().compute_units) * one_groups_per_cu);
  fused_one_ = Kernel(fused_one, "matmul_int8_fused");
  fused_groups_ = std::max<int>(1, int(device.info().compute_units) * groups_per_cu);
}

std::shared_ptr<const Program> MatmulInt8::mma_program(Device& device, int wm, int wn, int mt, int nt, int dist) {
  return device.program("matmul_int8.cl",
                        fmt::format("-DWG_SIZE={} -DTOK_TILE={} -DWARPS_M={} -DWARPS_N={} -DMT={} -DNT={} -DBK={} "
                                    "-DMMA_DIST={}",
                                    kWorkGroup, kTokTile, wm, wn, mt, nt, kColAlign, dist));
}

MatmulInt8::MmaTiling MatmulInt8::MmaTiling::make(Device& device, const char* env_name, int wm, int wn, int mt, int nt,
                                                  int dist) {
  if (const char* env = std::getenv(env_name); env && *env) {
    if (std::sscanf(env, "%d,%d,%d,%d,%d", &wm, &wn, &mt, &nt, &dist) < 4 || wm < 1 || wn < 1 || mt < 1 || nt < 1 ||
        dist < 1 || dist > 2 || kRowAlign % (wn * nt * 8) != 0 ||
        (wm * mt * 16 * (kColAlign / 16)) % (wm * wn * 32) != 0 ||
        (wn * nt * 8 * (kColAlign / 16)) % (wm * wn * 32) != 0)
      fail(ErrorKind::kInvalidArgument, "{}={}: want warps_m,warps_n,mt,nt[,dist 1|2] with BN dividing {}", env_name,
           env, kRowAlign);
  }
  MmaTiling t;
  t.bm = wm * mt * 16;
  t.bn = wn * nt * 8;
  t.threads = wm * wn * 32;
  const auto program = mma_program(device, wm, wn, mt, nt, dist);
  t.kernel = Kernel(program, "matmul_int8_mma");
  t.digits = Kernel(program, "matmul_int8_digits");
  return t;
}

void MatmulInt8::run(const Int8WeightBuffers& w, const Buffer& x, const Int8ActivationBuffers& a, Buffer& y, int n_tok,
                     bool accumulate, Event* event, const Int8OutlierScratch* outliers) {
  if (w.rows <= 0 || w.cols <= 0 || n_tok <= 0 || w.rows_pad < w.rows || w.rows_pad % kRowAlign != 0 ||
      w.kpad < w.cols || w.kpad % kColAlign != 0 || w.n16 < 0)
    fail(ErrorKind::kInternal, "matmul_int8: bad shape rows={} cols={} rows_pad={} kpad={} n_tok={}", w.rows, w.cols,
         w.rows_pad, w.kpad, n_tok);
  if (w.cb->bytes() < size_t(w.rows_pad) * w.kpad || w.scb->bytes() < size_t(w.rows_pad) * 4 ||
      w.slot->bytes() < size_t(w.cols) * 4 || w.w16->bytes() < size_t(w.rows_pad) * w.n16 * 2 ||
      x.bytes() < size_t(n_tok) * w.cols * 4 || a.codes->bytes() < size_t(n_tok) * w.kpad ||
      a.sca->bytes() < size_t(n_tok) * 4 || a.olist->bytes() < size_t(w.cols) * 4 || a.ocount->bytes() < 4 ||
      y.bytes() < size_t(n_tok) * w.rows * 4)
    fail(ErrorKind::kInternal, "matmul_int8: buffers too small for rows={} cols={} n_tok={}", w.rows, w.cols, n_tok);
  // The general tiling, or the small-grid one where the general grid would leave compute units idle.
  const int cus = int(device_.info().compute_units);
  MmaTiling& tiling = (w.rows_pad / mma_.bn) * ((n_tok + mma_.bm - 1) / mma_.bm) < cus ? mma_small_ : mma_;
  Kernel& k = uses_mma(n_tok) ? tiling.kernel : rows_;
  const bool digits = uses_mma(n_tok) && outliers != nullptr;
  if (digits) {
    const auto need = outlier_bytes(w, n_tok);
    const Buffer* bufs[] = {outliers->xd, outliers->xds, outliers->cbo, outliers->slist, outliers->scount};
    for (size_t i = 0; i < need.size(); ++i)
      if (bufs[i]->bytes() < need[i])
        fail(ErrorKind::kInternal, "matmul_int8: outlier scratch {} too small ({} < {} bytes)", i, bufs[i]->bytes(),
             need[i]);
    outlier_gather_.args(x, int32_t(n_tok), int32_t(w.cols), *a.olist, *a.ocount, *w.slot, *w.cb, int32_t(w.kpad),
                         int32_t(w.rows_pad), int32_t(kOutlierCap), *outliers->xd, *outliers->xds, *outliers->cbo,
                         *outliers->slist, *outliers->scount);
    const size_t gather_groups = size_t(n_tok) + size_t(w.rows_pad / kOutlierGatherRows) + 1;
    outlier_gather_.launch(device_, Range(gather_groups * kOutlierGatherWg), Range(kOutlierGatherWg));
  }
  // Without the digits the side path takes every outlier column, as quantize_rows listed them.
  k.args(*w.cb, *w.scb, *w.slot, *w.w16, int32_t(w.n16), *a.codes, *a.sca, x, digits ? *outliers->slist : *a.olist,
         digits ? *outliers->scount : *a.ocount, y, int32_t(w.rows), int32_t(w.cols), int32_t(w.kpad), int32_t(n_tok),
         int32_t(accumulate ? 1 : 0));
  if (uses_mma(n_tok)) {
    const size_t groups = size_t(w.rows_pad / tiling.bn), tok_groups = size_t((n_tok + tiling.bm - 1) / tiling.bm);
    const Range global(groups * tiling.threads, tok_groups), local(tiling.threads, 1);
    k.launch(device_, global, local, digits ? nullptr : event);
    if (digits) {
      tiling.digits.args(*outliers->cbo, *w.scb, *outliers->xd, *outliers->xds, *outliers->scount,
                         int32_t(kOutlierCap), y, int32_t(w.rows), int32_t(n_tok));
      tiling.digits.launch(device_, global, local, event);
    }
  } else {
    const size_t groups = (size_t(w.rows) + kWorkGroup / kLanes - 1) / (kWorkGroup / kLanes);
    k.launch(device_, Range(groups * kWorkGroup, size_t((n_tok + kTokTile - 1) / kTokTile)), Range(kWorkGroup, 1),
             event);
  }
}

void MatmulInt8::run_fused(const Int8WeightBuffers& w, const Buffer& x, FusedTransform transform,
                           const Buffer* norm_weight, float eps, const Int8ActScale& scale, Buffer& y, int n_tok,
                           bool accumulate, const FusedDebugBuffers* debug, Event* event,
                           const L2Prefetch& prefetch) {
  check_act_scale(scale);
  if (w.rows <= 0 || w.cols <= 0 || w.rows_pad < w.rows || w.rows_pad % kRowAlign != 0 || w.kpad < w.cols ||
      w.kpad % kColAlign != 0 || w.n16 < 0 || !fused_ok(n_tok, w.cols, w.kpad))
    fail(ErrorKind::kInternal, "matmul_int8 fused: bad shape rows={} cols={} kpad={} n_tok={}", w.rows, w.cols, w.kpad,
         n_tok);
  const size_t x_cols = transform == FusedTransform::kSwiGlu ? 2 * size_t(w.cols) : size_t(w.cols);
  if (x.bytes() < size_t(n_tok) * x_cols * 4 || y.bytes() < size_t(n_tok) * w.rows * 4 ||
      (transform == FusedTransform::kRmsNorm && (!norm_weight || norm_weight->bytes() < size_t(w.cols) * 4)))
    fail(ErrorKind::kInternal, "matmul_int8 fused: buffers too small for rows={} cols={} n_tok={}", w.rows, w.cols, n_tok);
  if (debug && (debug->xt->bytes() < size_t(n_tok) * w.cols * 4 || debug->codes->bytes() < size_t(n_tok) * w.kpad ||
                debug->sca->bytes() < size_t(n_tok) * 4 || debug->olist->bytes() < size_t(w.cols) * 4 ||
                debug->ocount->bytes() < 4))
    fail(ErrorKind::kInternal, "matmul_int8 fused: debug buffers too small");
  const Buffer& nw = transform == FusedTransform::kRmsNorm ? *norm_weight : x;
  const Buffer& d_xt = debug ? *debug->xt : y;  // unused unless dbg
  const bool one = n_tok == 1 && w.cols % 4 == 0 && w.cols <= kFusedOneMaxCols;
  Kernel& fused = one ? fused_one_ : fused_;
  fused.args(*w.cb, *w.scb, *w.slot, *w.w16, int32_t(w.n16), x, nw, int32_t(transform), eps, scale.threshold,
             scale.static_amax, y, int32_t(w.rows), int32_t(w.cols), int32_t(w.kpad), int32_t(n_tok),
             int32_t(accumulate ? 1 : 0), int32_t(debug ? 1 : 0), d_xt, debug ? *debug->codes : y,
             debug ? *debug->sca : y, debug ? *debug->olist : y, debug ? *debug->ocount : y, prefetch.arg_buffer(y),
             prefetch.arg_bytes());
  const int wg = one ? one_wg_ : kFusedWorkGroup, rpw = one ? one_rpw_ : fused_rpw_;
  const int tasks = (w.rows + rpw - 1) / rpw;
  const int groups = std::min(one ? one_groups_ : fused_groups_, (tasks + wg / 32 - 1) / (wg / 32));
  fused.launch(device_, Range(size_t(groups) * wg), Range(wg), event);
}

}  // namespace quill::host

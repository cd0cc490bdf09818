#include "core/cuda/cublaslt_gemm.h"

#include <cublasLt.h>

#include <algorithm>
#include <cstdint>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/cuda/accumulate.h"
#include "core/cuda/gemm_layout.h"
#include "core/status_macros.h"

namespace trident::cuda {
namespace {

const char* CublasStatusName(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS:
      return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED:
      return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED:
      return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE:
      return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH:
      return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR:
      return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED:
      return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR:
      return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED:
      return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR:
      return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

absl::Status CublasError(cublasStatus_t status, absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", CublasStatusName(status)));
}

#define TRIDENT_CUBLAS_RETURN_IF_ERROR(call)              \
  do {                                                    \
    const cublasStatus_t trident_cublas_status = (call);  \
    if (trident_cublas_status != CUBLAS_STATUS_SUCCESS) { \
      return CublasError(trident_cublas_status, #call);   \
    }                                                     \
  } while (0)

cudaDataType_t CudaDataType(DType dtype) {
  switch (dtype) {
    case DType::kBFloat16:
      return CUDA_R_16BF;
    case DType::kFloat16:
      return CUDA_R_16F;
    default:
      return CUDA_R_32F;
  }
}

cublasLtEpilogue_t CublasEpilogue(LtEpilogue epilogue) {
  switch (epilogue) {
    case LtEpilogue::kNone:
      return CUBLASLT_EPILOGUE_DEFAULT;
    case LtEpilogue::kBias:
      return CUBLASLT_EPILOGUE_BIAS;
    case LtEpilogue::kBiasGeluAux:
      return CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
    case LtEpilogue::kBiasGradA:
      return CUBLASLT_EPILOGUE_BGRADA;
  }
  return CUBLASLT_EPILOGUE_DEFAULT;
}

// The largest power of two <= 256 dividing `value` (an address or a byte offset).
int PowerOfTwoAlignment(uintptr_t value) {
  int alignment = 256;
  while (alignment > 1 && value % alignment != 0) alignment /= 2;
  return alignment;
}

int AddressAlignment(const void* ptr) {
  return PowerOfTwoAlignment(reinterpret_cast<uintptr_t>(ptr));
}

int CommonAlignment(std::initializer_list<const void*> pointers) {
  int alignment = 256;
  for (const void* p : pointers) alignment = std::min(alignment, AddressAlignment(p));
  return alignment;
}

// The row stride a matrix operand is read with (cuBLASLt's ld): a single row
// has no meaningful row stride (views of one row may carry any), so it is read
// with ld = its column count, as core/ops/gemm.cc describes such calls.
int64_t RowStride(const Tensor& t) {
  return t.dim(-2) <= 1 ? std::max<int64_t>(t.dim(-1), 1) : t.stride(-2);
}

// One operand of a call: defined, on `device`, of `dtype`, contiguous, and of
// `shape` ([rows, cols] or the bias's [cols]).
absl::Status CheckOperand(const char* role, const Tensor& t, absl::Span<const int64_t> shape,
                          DType dtype, const Device& device) {
  if (!t.defined()) return absl::InvalidArgumentError(absl::StrCat(role, " is undefined"));
  if (t.device() != device) {
    return absl::InvalidArgumentError(
        absl::StrCat(role, " is on ", t.device().ToString(), ", expected ", device.ToString()));
  }
  if (t.dtype() != dtype) {
    return absl::InvalidArgumentError(absl::StrCat(role, " has dtype ", DTypeName(t.dtype()),
                                                   ", expected ", DTypeName(dtype),
                                                   " (one dtype per call)"));
  }
  if (t.shape() != Shape(shape.begin(), shape.end())) {
    return absl::InvalidArgumentError(absl::StrCat(role, " has shape ", ShapeToString(t.shape()),
                                                   ", expected ", ShapeToString(shape)));
  }
  if (!t.is_contiguous()) {
    return absl::InvalidArgumentError(absl::StrCat(role, " must be contiguous"));
  }
  return absl::OkStatus();
}

absl::Status CheckFloatDType(DType dtype) {
  if (dtype == DType::kFloat32 || dtype == DType::kBFloat16 || dtype == DType::kFloat16) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("LtGemm: dtype ", DTypeName(dtype), " is not fp32, bf16 or fp16"));
}

}  // namespace

struct LtGemm::Handle {
  cublasLtHandle_t lt = nullptr;
  ~Handle() {
    if (lt != nullptr) cublasLtDestroy(lt);
  }
};

// Descriptors and the chosen algorithm of one GemmPlanKey. Pointers (bias,
// aux) are per call and set on `matmul` just before each cublasLtMatmul.
struct LtGemm::Plan {
  cublasLtMatmulDesc_t matmul = nullptr;
  cublasLtMatrixLayout_t a = nullptr;
  cublasLtMatrixLayout_t b = nullptr;
  cublasLtMatrixLayout_t d = nullptr;
  cublasLtMatmulAlgo_t algo{};

  ~Plan() {
    if (d != nullptr) cublasLtMatrixLayoutDestroy(d);
    if (b != nullptr) cublasLtMatrixLayoutDestroy(b);
    if (a != nullptr) cublasLtMatrixLayoutDestroy(a);
    if (matmul != nullptr) cublasLtMatmulDescDestroy(matmul);
  }
};

absl::StatusOr<std::unique_ptr<LtGemm>> LtGemm::Create(std::shared_ptr<Allocator> allocator,
                                                       LtGemmOptions options) {
  if (allocator == nullptr || !allocator->device().is_cuda()) {
    return absl::InvalidArgumentError("LtGemm needs an allocator of a CUDA device");
  }
  if (options.workspace_bytes < 0) {
    return absl::InvalidArgumentError(absl::StrCat("LtGemmOptions.workspace_bytes is ",
                                                   options.workspace_bytes, ": must be >= 0"));
  }
  if (const cudaError_t error = cudaSetDevice(allocator->device().index); error != cudaSuccess) {
    return absl::UnavailableError(absl::StrCat("cudaSetDevice: ", cudaGetErrorName(error)));
  }
  auto handle = std::make_unique<Handle>();
  TRIDENT_CUBLAS_RETURN_IF_ERROR(cublasLtCreate(&handle->lt));
  // Held as fp32 elements only because tensors are typed; cuBLASLt sees bytes.
  Tensor workspace = Tensor::Empty({(options.workspace_bytes + 3) / 4}, DType::kFloat32, allocator);
  return std::unique_ptr<LtGemm>(
      new LtGemm(std::move(allocator), options, std::move(handle), std::move(workspace)));
}

LtGemm::LtGemm(std::shared_ptr<Allocator> allocator, LtGemmOptions options,
               std::unique_ptr<Handle> handle, Tensor workspace)
    : allocator_(std::move(allocator)),
      options_(options),
      handle_(std::move(handle)),
      workspace_(std::move(workspace)) {}

LtGemm::~LtGemm() {
  plans_.clear();  // Descriptors go before the handle.
}

absl::Status LtGemm::SetEpiloguePointers(Plan& plan, void* bias, void* aux) {
  TRIDENT_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
      plan.matmul, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
  if (aux != nullptr) {
    TRIDENT_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
        plan.matmul, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux, sizeof(aux)));
  }
  return absl::OkStatus();
}

absl::StatusOr<LtGemm::Plan*> LtGemm::PlanFor(const GemmPlanKey& key, const LtGemmLayout& layout,
                                              void* bias, void* aux) {
  if (auto it = plans_.find(key); it != plans_.end()) {
    if (key.epilogue != LtEpilogue::kNone) {
      RETURN_IF_ERROR(SetEpiloguePointers(*it->second, bias, aux));
    }
    return it->second.get();
  }

  auto plan = std::make_unique<Plan>();
  const bool tf32 = key.dtype == DType::kFloat32 && key.allow_tf32;
  TRIDENT_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescCreate(
      &plan->matmul, tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t trans_a = layout.a.transpose ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t trans_b = layout.b.transpose ? CUBLAS_OP_T : CUBLAS_OP_N;
  TRIDENT_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
      plan->matmul, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a, sizeof(trans_a)));
  TRIDENT_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
      plan->matmul, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b, sizeof(trans_b)));
  const cublasLtEpilogue_t epilogue = CublasEpilogue(key.epilogue);
  if (key.epilogue != LtEpilogue::kNone) {
    TRIDENT_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
        plan->matmul, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)));
  }
  if (key.epilogue == LtEpilogue::kBiasGeluAux) {
    // The pre-activation is stored like D: column-major [m, n], ld m.
    const int64_t aux_ld = layout.d.ld;
    TRIDENT_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
        plan->matmul, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &aux_ld, sizeof(aux_ld)));
  }

  // The stored operands exactly as gemm_layout.h maps them; C is D.
  const cudaDataType_t type = CudaDataType(key.dtype);
  for (auto [operand, out] : {std::pair{&layout.a, &plan->a}, std::pair{&layout.b, &plan->b},
                              std::pair{&layout.d, &plan->d}}) {
    TRIDENT_CUBLAS_RETURN_IF_ERROR(
        cublasLtMatrixLayoutCreate(out, type, operand->rows, operand->cols, operand->ld));
    if (layout.batch != 1) {
      const int32_t batch = static_cast<int32_t>(layout.batch);
      const int64_t stride = operand->batch_stride;
      TRIDENT_CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutSetAttribute(
          *out, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof(batch)));
      TRIDENT_CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutSetAttribute(
          *out, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
    }
  }
  // The heuristic reads the epilogue pointers' values (not their contents) to
  // judge their alignment, so they are set before it is asked.
  if (key.epilogue != LtEpilogue::kNone) RETURN_IF_ERROR(SetEpiloguePointers(*plan, bias, aux));

  cublasLtMatmulPreference_t preference = nullptr;
  TRIDENT_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulPreferenceCreate(&preference));
  const uint64_t workspace_bytes = static_cast<uint64_t>(options_.workspace_bytes);
  const uint32_t alignment = static_cast<uint32_t>(key.alignment_bytes);
  cublasStatus_t status =
      cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                           &workspace_bytes, sizeof(workspace_bytes));
  for (const auto attribute :
       {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES}) {
    if (status == CUBLAS_STATUS_SUCCESS) {
      status = cublasLtMatmulPreferenceSetAttribute(preference, attribute, &alignment,
                                                    sizeof(alignment));
    }
  }
  cublasLtMatmulHeuristicResult_t result{};
  int returned = 0;
  if (status == CUBLAS_STATUS_SUCCESS) {
    status = cublasLtMatmulAlgoGetHeuristic(handle_->lt, plan->matmul, plan->a, plan->b, plan->d,
                                            plan->d, preference, 1, &result, &returned);
  }
  cublasLtMatmulPreferenceDestroy(preference);
  if (status != CUBLAS_STATUS_SUCCESS) {
    return CublasError(
        status, absl::StrCat("cublasLtMatmulAlgoGetHeuristic for ", GemmPlanKeyToString(key)));
  }
  if (returned == 0) {
    return absl::UnimplementedError(absl::StrCat("cuBLASLt has no algorithm for ",
                                                 GemmPlanKeyToString(key), " within ",
                                                 options_.workspace_bytes, " workspace bytes"));
  }
  plan->algo = result.algo;
  Plan* raw = plan.get();
  plans_.emplace(key, std::move(plan));
  return raw;
}

absl::Status LtGemm::LinearForward(cudaStream_t stream, const Tensor& x, const Tensor& weight,
                                   const Tensor& bias, ops::LinearEpilogue epilogue,
                                   const Tensor& y, const Tensor& pre) {
  const Device device = allocator_->device();
  if (!x.defined() || x.ndim() != 2 || !weight.defined() || weight.ndim() != 2) {
    return absl::InvalidArgumentError("LinearForward: x and weight must be 2-D tensors");
  }
  const int64_t tokens = x.dim(0), in = x.dim(1), out = weight.dim(1);
  const DType dtype = x.dtype();
  RETURN_IF_ERROR(CheckFloatDType(dtype));
  RETURN_IF_ERROR(CheckOperand("LinearForward x", x, {tokens, in}, dtype, device));
  RETURN_IF_ERROR(CheckOperand("LinearForward weight", weight, {in, out}, dtype, device));
  RETURN_IF_ERROR(CheckOperand("LinearForward bias", bias, {out}, dtype, device));
  RETURN_IF_ERROR(CheckOperand("LinearForward y", y, {tokens, out}, dtype, device));
  const bool gelu = epilogue == ops::LinearEpilogue::kBiasGelu;
  if (gelu) {
    RETURN_IF_ERROR(CheckOperand("LinearForward pre", pre, {tokens, out}, dtype, device));
    // The pre-activation's leading dimension is out (gemm_layout.h), and
    // cuBLASLt wants a GELU aux leading dimension divisible by 8.
    if (out % 8 != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("LinearForward kBiasGelu: out features (weight dim 1) is ", out,
                       ": must be a multiple of 8 (cuBLASLt's GELU aux leading dimension)"));
    }
  }
  if (tokens == 0 || out == 0) return absl::OkStatus();

  const LtGemmLayout layout = ForwardLayout(tokens, in, out);
  GemmPlanKey key{.layout = layout,
                  .dtype = dtype,
                  .epilogue = gelu ? LtEpilogue::kBiasGeluAux : LtEpilogue::kBias,
                  .allow_tf32 = options_.allow_tf32};
  void* aux = gelu ? pre.raw_data() : nullptr;
  key.alignment_bytes = CommonAlignment(
      {x.raw_data(), weight.raw_data(), y.raw_data(), bias.raw_data(), gelu ? aux : y.raw_data()});
  ASSIGN_OR_RETURN(Plan * plan, PlanFor(key, layout, bias.raw_data(), aux));
  const float alpha = 1.0f, beta = 0.0f;
  // A = W, B = x, D = y (gemm_layout.h); beta = 0, so C is D and never read.
  TRIDENT_CUBLAS_RETURN_IF_ERROR(
      cublasLtMatmul(handle_->lt, plan->matmul, &alpha, weight.raw_data(), plan->a, x.raw_data(),
                     plan->b, &beta, y.raw_data(), plan->d, y.raw_data(), plan->d, &plan->algo,
                     workspace_.raw_data(), static_cast<size_t>(options_.workspace_bytes), stream));
  return absl::OkStatus();
}

absl::Status LtGemm::LinearWeightGrad(cudaStream_t stream, const Tensor& x, const Tensor& dy,
                                      const Tensor& dweight, const Tensor& dbias) {
  const Device device = allocator_->device();
  if (!x.defined() || x.ndim() != 2 || !dy.defined() || dy.ndim() != 2) {
    return absl::InvalidArgumentError("LinearWeightGrad: x and dy must be 2-D tensors");
  }
  const int64_t tokens = x.dim(0), in = x.dim(1), out = dy.dim(1);
  const DType dtype = x.dtype();
  RETURN_IF_ERROR(CheckFloatDType(dtype));
  RETURN_IF_ERROR(CheckOperand("LinearWeightGrad x", x, {tokens, in}, dtype, device));
  RETURN_IF_ERROR(CheckOperand("LinearWeightGrad dy", dy, {tokens, out}, dtype, device));
  RETURN_IF_ERROR(CheckOperand("LinearWeightGrad dweight", dweight, {in, out}, dtype, device));
  RETURN_IF_ERROR(CheckOperand("LinearWeightGrad dbias", dbias, {out}, dtype, device));
  if (tokens == 0 || in == 0 || out == 0) return absl::OkStatus();

  const LtGemmLayout layout = WeightGradLayout(tokens, in, out);
  GemmPlanKey key{.layout = layout,
                  .dtype = dtype,
                  .epilogue = LtEpilogue::kBiasGradA,
                  .allow_tf32 = options_.allow_tf32};
  // BGRADA overwrites its output; the op accumulates, so the epilogue writes
  // to scratch that is then added into dbias on the same stream. The scratch
  // returns to the caching allocator at the end of this call, which is safe
  // for work queued later on the same stream (cuda_allocator.h).
  const Tensor bias_scratch = Tensor::Empty({out}, dtype, allocator_);
  key.alignment_bytes =
      CommonAlignment({x.raw_data(), dy.raw_data(), dweight.raw_data(), bias_scratch.raw_data()});
  ASSIGN_OR_RETURN(Plan * plan, PlanFor(key, layout, bias_scratch.raw_data(), /*aux=*/nullptr));
  const float alpha = 1.0f, beta = 1.0f;
  // A = dy, B = x (transposed), C = D = dW (gemm_layout.h); beta = 1 accumulates.
  TRIDENT_CUBLAS_RETURN_IF_ERROR(cublasLtMatmul(
      handle_->lt, plan->matmul, &alpha, dy.raw_data(), plan->a, x.raw_data(), plan->b, &beta,
      dweight.raw_data(), plan->d, dweight.raw_data(), plan->d, &plan->algo, workspace_.raw_data(),
      static_cast<size_t>(options_.workspace_bytes), stream));
  return AccumulateInto(stream, dtype, bias_scratch.raw_data(), dbias.raw_data(), out);
}

absl::Status LtGemm::Gemm(cudaStream_t stream, const Tensor& a, ops::Trans trans_a, const Tensor& b,
                          ops::Trans trans_b, const Tensor& c, float alpha, float beta) {
  const Device device = allocator_->device();
  if (!a.defined() || !b.defined() || !c.defined()) {
    return absl::InvalidArgumentError("Gemm: a, b and c must be defined");
  }
  const int rank = c.ndim();
  if ((rank != 2 && rank != 3) || a.ndim() != rank || b.ndim() != rank) {
    return absl::InvalidArgumentError(
        absl::StrCat("Gemm: a, b, c must all be 2-D (one product) or all 3-D (a batch); got ",
                     a.ndim(), "-D, ", b.ndim(), "-D, ", rank, "-D"));
  }
  const DType dtype = c.dtype();
  RETURN_IF_ERROR(CheckFloatDType(dtype));
  const bool ta = trans_a == ops::Trans::kYes;
  const bool tb = trans_b == ops::Trans::kYes;
  const int row = rank - 2, col = rank - 1;
  RowMajorGemm gemm{.m = c.dim(row),
                    .n = c.dim(col),
                    .k = ta ? a.dim(row) : a.dim(col),
                    .transpose_a = ta,
                    .transpose_b = tb,
                    .row_stride_a = RowStride(a),
                    .row_stride_b = RowStride(b),
                    .row_stride_c = RowStride(c)};
  if (rank == 3) {
    gemm.batch = c.dim(0);
    gemm.batch_stride_a = a.stride(0);
    gemm.batch_stride_b = b.stride(0);
    gemm.batch_stride_c = c.stride(0);
  }
  const int64_t a_rows = ta ? gemm.k : gemm.m, a_cols = ta ? gemm.m : gemm.k;
  const int64_t b_rows = tb ? gemm.n : gemm.k, b_cols = tb ? gemm.k : gemm.n;
  for (const auto& [name, t, rows, cols] :
       {std::tuple{"a", &a, a_rows, a_cols}, std::tuple{"b", &b, b_rows, b_cols},
        std::tuple{"c", &c, gemm.m, gemm.n}}) {
    if (t->device() != device || t->dtype() != dtype) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Gemm: ", name, " is ", DTypeName(t->dtype()), " on ", t->device().ToString(),
          ", expected ", DTypeName(dtype), " on ", device.ToString(), " (one dtype per call)"));
    }
    if (t->dim(row) != rows || t->dim(col) != cols || (rank == 3 && t->dim(0) != gemm.batch)) {
      return absl::InvalidArgumentError(
          absl::StrCat("Gemm: ", name, " has shape ", ShapeToString(t->shape()), ", expected [",
                       rank == 3 ? absl::StrCat(gemm.batch, ", ") : "", rows, ", ", cols, "]"));
    }
    // cuBLASLt reads each stored matrix column-major with ld = row stride.
    if ((cols > 1 && t->stride(col) != 1) || RowStride(*t) < std::max<int64_t>(cols, 1)) {
      return absl::InvalidArgumentError(
          absl::StrCat("Gemm: ", name, " has strides ", ShapeToString(t->strides()),
                       ": needs unit column stride and a row stride >= its ", cols, " columns"));
    }
  }
  if (gemm.m == 0 || gemm.n == 0 || gemm.batch == 0) return absl::OkStatus();
  if (gemm.k == 0) {
    return absl::InvalidArgumentError("Gemm: the inner dimension k is 0 (cuBLASLt needs k >= 1)");
  }

  GemmPlanKey key{.layout = GemmLayout(gemm),
                  .dtype = dtype,
                  .epilogue = LtEpilogue::kNone,
                  .allow_tf32 = options_.allow_tf32};
  const size_t element = DTypeSize(dtype);
  int alignment = CommonAlignment({a.raw_data(), b.raw_data(), c.raw_data()});
  if (rank == 3) {
    // Every matrix of the batch must be as aligned as the plan assumes.
    for (const int64_t stride : {gemm.batch_stride_a, gemm.batch_stride_b, gemm.batch_stride_c}) {
      alignment =
          std::min(alignment, PowerOfTwoAlignment(static_cast<uintptr_t>(stride) * element));
    }
  }
  key.alignment_bytes = alignment;
  ASSIGN_OR_RETURN(Plan * plan, PlanFor(key, key.layout, /*bias=*/nullptr, /*aux=*/nullptr));
  // A' = b, B' = a, C = D = c (gemm_layout.h). cuBLASLt does not read C when
  // beta is 0, so garbage or NaN there is fine, as core/ops/gemm.h promises.
  TRIDENT_CUBLAS_RETURN_IF_ERROR(
      cublasLtMatmul(handle_->lt, plan->matmul, &alpha, b.raw_data(), plan->a, a.raw_data(),
                     plan->b, &beta, c.raw_data(), plan->d, c.raw_data(), plan->d, &plan->algo,
                     workspace_.raw_data(), static_cast<size_t>(options_.workspace_bytes), stream));
  return absl::OkStatus();
}

}  // namespace trident::cuda

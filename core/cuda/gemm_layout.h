#ifndef TRIDENT_CORE_CUDA_GEMM_LAYOUT_H_
#define TRIDENT_CORE_CUDA_GEMM_LAYOUT_H_

// How the linear layer's row-major products map onto cuBLASLt's column-major
// D = op(A) op(B).
//
// A row-major matrix X [r, c] with row stride c is, read column-major, the
// matrix X^T [c, r] with leading dimension c. So every row-major product is
// computed as its transpose, with the operands swapped:
//
//   Forward   y [M, N] = x [M, K] W [K, N]
//             y^T = W^T x^T:  A = W  read as [N, K] (ld N), op N
//                             B = x  read as [K, M] (ld K), op N
//                             D = y  read as [N, M] (ld N)
//     cuBLASLt's bias is indexed by the rows of D, i.e. by the output feature
//     n: exactly the [N] bias of the layer, broadcast over tokens. The GELU
//     auxiliary output (the pre-activation) has D's layout.
//
//   Weight gradient  dW [K, N] += x^T [K, M] dy [M, N]
//             dW^T = dy^T x:  A = dy read as [N, M] (ld N), op N
//                             B = x  read as [K, M] (ld K), op T -> [M, K]
//                             D = dW read as [N, K] (ld N), beta = 1
//     The bias gradient db[n] = sum over tokens of dy[m, n] is the sum of A
//     over the GEMM's k dimension (the tokens M), one value per row of D:
//     that is CUBLASLT_EPILOGUE_BGRADA. (BGRADB would reduce B = x, giving a
//     [K] vector: the right variant for the [out, in] weight layout of
//     torch.nn.Linear, where the operands are the other way round.)

#include <cstdint>
#include <string>

namespace trident::cuda {

// One operand as cuBLASLt sees it: the stored column-major matrix (rows,
// cols, leading dimension) and whether the product reads it transposed.
struct LtOperand {
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t ld = 0;
  bool transpose = false;

  friend bool operator==(const LtOperand&, const LtOperand&) = default;
};

// D [m, n] = op(A) [m, k] op(B) [k, n], column-major.
struct LtGemmLayout {
  int64_t m = 0;
  int64_t n = 0;
  int64_t k = 0;
  LtOperand a;
  LtOperand b;
  LtOperand d;
};

// y [tokens, out] = x [tokens, in] W [in, out], all row-major and contiguous.
LtGemmLayout ForwardLayout(int64_t tokens, int64_t in_features, int64_t out_features);

// dW [in, out] += x^T dy for x [tokens, in], dy [tokens, out].
LtGemmLayout WeightGradLayout(int64_t tokens, int64_t in_features, int64_t out_features);

// "m=.. n=.. k=.. A[r x c, ld, N|T] B[...] D[...]" for error messages.
std::string LayoutToString(const LtGemmLayout& layout);

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_GEMM_LAYOUT_H_

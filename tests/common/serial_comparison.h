#ifndef TRIDENT_TESTS_COMMON_SERIAL_COMPARISON_H_
#define TRIDENT_TESTS_COMMON_SERIAL_COMPARISON_H_

// Comparing a parallel layout's model tensors with the serial run's, as every
// model-equivalence suite does (DESIGN.md rule 2): per tensor,
// ||got - serial|| / ||serial|| below a tolerance (a tensor whose serial norm
// is 0 must be exactly 0); NaN always fails.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace trident::testing {

// The serial model's tensors by parameter name ("wte.weight", "h.0.ln_1.bias").
using TensorsByName = std::map<std::string, std::vector<float>>;

// ||got - want|| / ||want||, or a huge value when want is all zeros and got
// is not; NaN propagates (and fails every comparison).
double RelativeDifference(const std::vector<float>& got, const std::vector<float>& want);

double MaxAbs(const std::vector<float>& values);

// The key third of attn.c_attn.bias has a gradient that is exactly zero in
// exact arithmetic (softmax is invariant to adding q.b_k to every score of a
// row), so it holds only rounding noise (~1e-12), which AdamW's normalisation
// turns into noise-sized steps that no two summation orders share. Parameters
// after training are therefore compared with the key bias split off under the
// name "<name> (key third)", and that part is only required to stay noise.
inline constexpr char kKeyBiasSuffix[] = " (key third)";
TensorsByName SplitOffKeyBias(TensorsByName tensors, int64_t hidden);

// Adds a gtest failure per tensor of `want` that `got` lacks or that differs
// by `tolerance` or more; `worst` keeps the largest difference seen. With
// `key_bias_out` the key biases are split off (above) and must stay below
// 1e-4 in both runs.
void ExpectSameTensors(const TensorsByName& got, const TensorsByName& want, const std::string& what,
                       int64_t hidden, bool key_bias_out, double tolerance, double* worst);

}  // namespace trident::testing

#endif  // TRIDENT_TESTS_COMMON_SERIAL_COMPARISON_H_

#ifndef TRIDENT_TRAINING_CPU_PEAK_H_
#define TRIDENT_TRAINING_CPU_PEAK_H_

// The peak MFU is measured against on a CPU (training/flops.h explains why it
// is measured, not read off a datasheet), measured once per machine.
//
// Measuring at every start, with all cores, while other ranks or processes
// also start, gave peaks that varied 2x and MFU above 100%. So: the best fp32
// GEMM rate of ONE core, measured alone and kept in a cache file keyed by the
// host and CPU model. Processes that start together (an MPI job) take turns
// on a lock on that file: the first measures while the others sleep in
// flock(), the rest read its figure. A job's peak is that rate times the cores
// it computes on (its threads, at most the cores it may use), which is at
// least what those cores together sustain (one core's turbo clock is the
// highest), so MFU cannot pass 100%.

#include <string>


namespace trident::training {

struct CpuPeak {
  double flops_per_core = 0;
  std::string source;  // e.g. "one core's best fp32 GEMM, cached in ~/.cache/..."
};

// The default cache: $XDG_CACHE_HOME/trident/cpu_peak, else
// $HOME/.cache/trident/cpu_peak.
std::string DefaultCpuPeakCache();

// One core's peak from `cache_file` (created, with its directory, when
// missing or when it holds no entry for this machine). When the cache cannot
// be used the peak is measured all the same, and `source` says why.
CpuPeak MeasuredCpuPeak(const std::string& cache_file);

}  // namespace trident::training

#endif  // TRIDENT_TRAINING_CPU_PEAK_H_

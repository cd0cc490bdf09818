// The default model, serial layout, trains on the GPU as on the CPU: 20 steps
// through Train() (//tools:train's path) with --device=cuda and with the CPU,
// on the same token files and seed. fp32: every step's loss within 1e-4
// (relative) of the CPU's (the bound; the CPU layouts agree to 1e-5,
// the GPU's kernels sum in other orders). bf16: within the mixed-precision
// tolerance (training/precision.h) of the CPU's fp32 run, as the CPU's bf16
// run is. NaN never passes. And the GPU's state leaves and returns through
// host copies: a checkpoint written at step 10 resumes on the GPU bit for bit
// (as on the CPU) and on the CPU within 1e-4, and the export is written. Skips
// without a GPU.

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "core/cuda/gpu_test_util.h"
#include "core/io/test_util.h"
#include "gtest/gtest.h"
#include "training/default_config.h"
#include "training/precision.h"
#include "training/test_corpus.h"
#include "training/trainer_testing.h"
#include "training/trainer.h"

namespace trident::training {
namespace {

constexpr int kSteps = 20;
constexpr double kFp32Tolerance = 1e-4;

struct TrainedRun {
  std::vector<double> losses;
  std::string log;
};

TrainedRun TrainDefaultModel(const std::string& data_dir, Precision precision,
                             const std::string& device,
                             const std::function<void(TrainOptions&)>& adjust = nullptr) {
  TrainOptions options = testing::DefaultJob(data_dir, kSteps, /*serial=*/true);
  options.device = device;
  options.config.set_precision(precision);
  if (adjust != nullptr) adjust(options);
  std::ostringstream log;
  options.log = &log;
  absl::StatusOr<TrainResult> result = Train(options);
  EXPECT_TRUE(result.ok()) << device << " " << PrecisionName(precision) << ": " << result.status();
  if (!result.ok()) return {};
  return {result->losses, log.str()};
}

// Every step's |run - reference| / reference within `tolerance`; prints the
// worst.
void ExpectTracks(const std::vector<double>& run, const std::vector<double>& reference,
                  double tolerance, const std::string& what) {
  ASSERT_EQ(run.size(), kSteps) << what;
  ASSERT_EQ(reference.size(), kSteps) << what;
  double worst = 0;
  for (int s = 0; s < kSteps; ++s) {
    const double difference = std::abs(run[s] - reference[s]) / std::abs(reference[s]);
    if (!(difference <= worst)) worst = difference;  // NaN is the worst.
    EXPECT_TRUE(difference <= tolerance)
        << what << " step " << s + 1 << ": " << run[s] << " against " << reference[s];
  }
  std::printf("%s: worst relative loss difference over %d steps %.3g (bound %.0e)\n", what.c_str(),
              kSteps, worst, tolerance);
}

TEST(CudaTrainTest, DefaultModelSerialTracksTheCpuRun) {
  TRIDENT_SKIP_WITHOUT_GPU(gpu);
  const std::string data_dir =
      testing::WriteEnglishLikeTokenFiles(io::testing::FreshTestDir("cuda_train_corpus"));

  const TrainedRun cpu_fp32 = TrainDefaultModel(data_dir, FP32, "cpu");
  const TrainedRun gpu_fp32 = TrainDefaultModel(data_dir, FP32, "cuda");
  EXPECT_NE(gpu_fp32.log.find("\ndevice: cuda:0 ("), std::string::npos) << gpu_fp32.log;
  ASSERT_EQ(cpu_fp32.losses.size(), kSteps);
  ASSERT_LT(cpu_fp32.losses.back(), cpu_fp32.losses.front()) << "the model must learn";
  ExpectTracks(gpu_fp32.losses, cpu_fp32.losses, kFp32Tolerance, "GPU fp32 against CPU fp32");

  const TrainedRun gpu_bf16 = TrainDefaultModel(data_dir, BF16, "cuda");
  const TrainedRun cpu_bf16 = TrainDefaultModel(data_dir, BF16, "cpu");
  ExpectTracks(gpu_bf16.losses, cpu_fp32.losses, kMixedPrecisionLossTolerance,
               "GPU bf16 against CPU fp32");
  ExpectTracks(cpu_bf16.losses, cpu_fp32.losses, kMixedPrecisionLossTolerance,
               "CPU bf16 against CPU fp32 (the same bound, for scale)");
}

TEST(CudaTrainTest, CheckpointResumeAndExportFromTheGpu) {
  TRIDENT_SKIP_WITHOUT_GPU(gpu);
  const std::string dir = io::testing::FreshTestDir("cuda_train_checkpoint");
  const std::string data_dir = testing::WriteEnglishLikeTokenFiles(dir);
  const std::string ckpt = dir + "/ckpt";
  const std::string exported = dir + "/model.safetensors";

  const TrainedRun whole = TrainDefaultModel(data_dir, FP32, "cuda");
  ASSERT_EQ(whole.losses.size(), kSteps);
  const TrainedRun head = TrainDefaultModel(data_dir, FP32, "cuda", [&](TrainOptions& o) {
    o.save_dir = ckpt;
    o.stop_at_step = kSteps / 2;
  });
  ASSERT_EQ(head.losses.size(), kSteps / 2);
  const TrainedRun tail = TrainDefaultModel(data_dir, FP32, "cuda", [&](TrainOptions& o) {
    o.resume_dir = ckpt;
    o.export_path = exported;
  });
  ASSERT_EQ(tail.losses.size(), kSteps / 2);
  for (int s = 0; s < kSteps / 2; ++s) {
    EXPECT_EQ(head.losses[s], whole.losses[s]) << "step " << s + 1;  // Bitwise.
    EXPECT_EQ(tail.losses[s], whole.losses[kSteps / 2 + s]) << "step " << kSteps / 2 + s + 1;
  }
  EXPECT_GT(std::filesystem::file_size(exported), 4u * 800000) << "the export holds the weights";

  // The GPU's checkpoint, resumed on the CPU.
  const TrainedRun on_cpu =
      TrainDefaultModel(data_dir, FP32, "cpu", [&](TrainOptions& o) { o.resume_dir = ckpt; });
  ASSERT_EQ(on_cpu.losses.size(), kSteps / 2);
  const std::vector<double> gpu_tail(whole.losses.begin() + kSteps / 2, whole.losses.end());
  for (int s = 0; s < kSteps / 2; ++s) {
    const double difference = std::abs(on_cpu.losses[s] - gpu_tail[s]) / gpu_tail[s];
    EXPECT_TRUE(difference <= kFp32Tolerance)
        << "step " << kSteps / 2 + s + 1 << ": CPU " << on_cpu.losses[s] << ", GPU " << gpu_tail[s];
  }
}

}  // namespace
}  // namespace trident::training

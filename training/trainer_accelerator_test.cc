// The trainer's --device=cuda path (trainer.cc) without a GPU: a stand-in
// accelerator registered as "cuda" whose rank context is the CPU's. What the
// trainer does with a device is checked here: the device opened once and
// waited for after set-up and after each step, the inputs and targets
// uploaded every step, the losses those of the CPU run bit for bit (same
// kernels), the header naming the device, MFU over the datasheet peak found
// by the device's name or none for an unknown one, and the refusals (no
// visible device, too little device memory) before anything is built.

#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/io/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "training/accelerator.h"
#include "training/default_config.h"
#include "training/test_corpus.h"
#include "training/trainer_testing.h"
#include "training/trainer.h"

namespace trident::training {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// What the stand-in reports, and what the trainer asked of it.
struct StandIn {
  absl::Status visible = absl::OkStatus();
  std::string name = "NVIDIA H100 80GB HBM3";
  int64_t free_bytes = int64_t{80} << 30;
  int opened = 0;
  int uploads = 0;
  int waits = 0;
};

StandIn& TheStandIn() {
  static StandIn* stand_in = new StandIn;
  return *stand_in;
}

class HostRank final : public AcceleratorRank {
 public:
  const ExecContext& exec() const override { return exec_; }
  absl::StatusOr<Tensor> Upload(const Tensor& host) const override {
    if (host.dtype() != DType::kInt32 || !host.device().is_cpu()) {
      return absl::InvalidArgumentError("the stand-in uploads int32 host tensors only");
    }
    ++TheStandIn().uploads;
    return Tensor::FromVector(host.ToVector<int32_t>(), host.shape());
  }
  absl::Status WaitForDevice() const override {
    ++TheStandIn().waits;
    return absl::OkStatus();
  }

 private:
  const ExecContext exec_ = ExecContext::Cpu(1);
};

class HostAccelerator final : public Accelerator {
 public:
  absl::StatusOr<std::vector<AcceleratorDevice>> VisibleDevices() const override {
    const StandIn& s = TheStandIn();
    if (!s.visible.ok()) return s.visible;
    return std::vector<AcceleratorDevice>{
        {.index = 0, .name = s.name, .free_memory_bytes = s.free_bytes}};
  }
  absl::StatusOr<std::unique_ptr<AcceleratorRank>> Open(int index) const override {
    ++TheStandIn().opened;
    return std::unique_ptr<AcceleratorRank>(new HostRank);
  }
};

const bool kRegistered = [] {
  RegisterAccelerator("cuda", std::make_unique<HostAccelerator>());
  return true;
}();

constexpr int kSteps = 4;

class TrainerAcceleratorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_dir_ = new std::string(
        testing::WriteEnglishLikeTokenFiles(io::testing::FreshTestDir("accelerator_corpus")));
  }
  void SetUp() override { TheStandIn() = StandIn(); }

  // The default model, serial layout, one CPU thread (the stand-in's).
  static TrainOptions Options(const std::string& device) {
    TrainOptions options = testing::DefaultJob(*data_dir_, kSteps, /*serial=*/true);
    options.device = device;
    options.threads = 1;
    options.config.set_log_interval(1);
    return options;
  }

  static absl::StatusOr<TrainResult> TrainLogged(TrainOptions options, std::string* log) {
    std::ostringstream sink;
    options.log = &sink;
    absl::StatusOr<TrainResult> result = Train(options);
    *log = sink.str();
    return result;
  }

  static std::string* data_dir_;
};

std::string* TrainerAcceleratorTest::data_dir_ = nullptr;

TEST_F(TrainerAcceleratorTest, TrainsThroughTheDeviceAsOnTheCpu) {
  std::string cpu_log, device_log;
  const absl::StatusOr<TrainResult> cpu = TrainLogged(Options("cpu"), &cpu_log);
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  const absl::StatusOr<TrainResult> device = TrainLogged(Options("cuda"), &device_log);
  ASSERT_TRUE(device.ok()) << device.status();
  ASSERT_EQ(device->losses.size(), kSteps);
  EXPECT_EQ(device->losses, cpu->losses);  // The same kernels: bit for bit.
  EXPECT_EQ(TheStandIn().opened, 1);
  EXPECT_EQ(TheStandIn().uploads, 2 * kSteps);  // Inputs and targets, every step.
  EXPECT_EQ(TheStandIn().waits, 1 + kSteps);    // After set-up and after each step.
  EXPECT_THAT(device_log, HasSubstr("\ndevice: cuda:0 (NVIDIA H100 80GB HBM3)"));
  EXPECT_THAT(device_log, HasSubstr("mfu: model FLOPs over 67 TFLOP/s (H100 SXM5 datasheet"));
  EXPECT_THAT(device_log, HasSubstr("mfu "));  // On the progress lines.
}

TEST_F(TrainerAcceleratorTest, PeakByDeviceNamePrecisionOrFlag) {
  std::string log;
  TrainOptions bf16 = Options("cuda");
  bf16.config.set_precision(BF16);
  ASSERT_TRUE(TrainLogged(bf16, &log).ok());
  EXPECT_THAT(log, HasSubstr("mfu: model FLOPs over 989 TFLOP/s (H100 SXM5 datasheet, dense "
                             "bf16/fp16 tensor cores)"));

  TrainOptions given = Options("cuda");
  given.peak_flops = 5e12;
  given.peak_source = "--peak_tflops";
  ASSERT_TRUE(TrainLogged(given, &log).ok());
  EXPECT_THAT(log, HasSubstr("mfu: model FLOPs over 5 TFLOP/s (--peak_tflops)"));

  TheStandIn().name = "NVIDIA H100 PCIe";
  ASSERT_TRUE(TrainLogged(Options("cuda"), &log).ok());
  EXPECT_THAT(log, HasSubstr("unknown GPU: no MFU (NVIDIA H100 PCIe"));
  EXPECT_THAT(log, Not(HasSubstr("mfu")));
}

TEST_F(TrainerAcceleratorTest, RefusedBeforeAnythingIsBuilt) {
  std::string log;
  TheStandIn().visible = absl::UnavailableError("the stand-in has no driver");
  absl::StatusOr<TrainResult> none = TrainLogged(Options("cuda"), &log);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(none.status().message(),
              HasSubstr("--device=cuda: no GPU is visible: the stand-in has no driver"));

  TheStandIn() = StandIn();
  TheStandIn().free_bytes = 1 << 20;
  absl::StatusOr<TrainResult> small = TrainLogged(Options("cuda"), &log);
  ASSERT_FALSE(small.ok());
  EXPECT_THAT(small.status().message(),
              HasSubstr("more than the 0.00105 GB free on GPU 0 (NVIDIA H100 80GB HBM3)"));
  EXPECT_EQ(TheStandIn().opened, 0);
  EXPECT_EQ(TheStandIn().uploads, 0);
}

}  // namespace
}  // namespace trident::training

#include "core/comm/mpi/launch_env.h"

#include <map>
#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace trident::comm {
namespace {

using ::testing::HasSubstr;

// A fake environment for ReadLaunchInfo.
class FakeEnv {
 public:
  explicit FakeEnv(std::map<std::string, std::string> vars) : vars_(std::move(vars)) {}
  const char* operator()(const char* name) const {
    auto it = vars_.find(name);
    return it == vars_.end() ? nullptr : it->second.c_str();
  }

 private:
  std::map<std::string, std::string> vars_;
};

absl::StatusOr<LaunchInfo> Read(std::map<std::string, std::string> vars) {
  FakeEnv env(std::move(vars));
  return ReadLaunchInfo(env);
}

TEST(LaunchEnvTest, NoLauncherMeansRankZeroOfOne) {
  absl::StatusOr<LaunchInfo> info = Read({{"HOME", "/root"}});
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_FALSE(info->launched());
  EXPECT_EQ(info->launcher, "");
  EXPECT_EQ(info->rank, 0);
  EXPECT_EQ(info->size, 1);
  EXPECT_EQ(info->local_rank, 0);
}

TEST(LaunchEnvTest, ReadsOpenMpi) {
  absl::StatusOr<LaunchInfo> info = Read({{"OMPI_COMM_WORLD_RANK", "5"},
                                          {"OMPI_COMM_WORLD_SIZE", "8"},
                                          {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}});
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_TRUE(info->launched());
  EXPECT_EQ(info->launcher, "openmpi");
  EXPECT_EQ(info->rank, 5);
  EXPECT_EQ(info->size, 8);
  EXPECT_EQ(info->local_rank, 1);
}

TEST(LaunchEnvTest, ReadsPmiAndSlurm) {
  absl::StatusOr<LaunchInfo> pmi =
      Read({{"PMI_RANK", "2"}, {"PMI_SIZE", "4"}, {"MPI_LOCALRANKID", "0"}});
  ASSERT_TRUE(pmi.ok()) << pmi.status();
  EXPECT_EQ(pmi->launcher, "pmi");
  EXPECT_EQ(pmi->rank, 2);
  EXPECT_EQ(pmi->size, 4);
  EXPECT_EQ(pmi->local_rank, 0);

  absl::StatusOr<LaunchInfo> slurm =
      Read({{"SLURM_PROCID", "3"}, {"SLURM_STEP_NUM_TASKS", "16"}, {"SLURM_LOCALID", "3"}});
  ASSERT_TRUE(slurm.ok()) << slurm.status();
  EXPECT_EQ(slurm->launcher, "slurm");
  EXPECT_EQ(slurm->rank, 3);
  EXPECT_EQ(slurm->size, 16);
  EXPECT_EQ(slurm->local_rank, 3);
}

TEST(LaunchEnvTest, SbatchScriptWithoutSrunIsNotALaunch) {
  // sbatch sets SLURM_PROCID=0 and SLURM_NTASKS for the batch script itself.
  absl::StatusOr<LaunchInfo> info = Read({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "8"}});
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_FALSE(info->launched());
}

TEST(LaunchEnvTest, OpenMpiWinsOverSlurmWhenBothAreSet) {
  // mpirun inside a Slurm allocation: the processes are mpirun's.
  absl::StatusOr<LaunchInfo> info = Read({{"OMPI_COMM_WORLD_RANK", "1"},
                                          {"OMPI_COMM_WORLD_SIZE", "2"},
                                          {"SLURM_PROCID", "0"},
                                          {"SLURM_STEP_NUM_TASKS", "1"}});
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->launcher, "openmpi");
  EXPECT_EQ(info->rank, 1);
}

TEST(LaunchEnvTest, MissingLocalRankDefaultsToZero) {
  absl::StatusOr<LaunchInfo> info = Read({{"PMI_RANK", "1"}, {"PMI_SIZE", "2"}});
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->local_rank, 0);
}

TEST(LaunchEnvTest, MalformedValuesNameTheVariable) {
  absl::StatusOr<LaunchInfo> not_int =
      Read({{"OMPI_COMM_WORLD_RANK", "two"}, {"OMPI_COMM_WORLD_SIZE", "4"}});
  EXPECT_EQ(not_int.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(not_int.status().message(), HasSubstr("OMPI_COMM_WORLD_RANK='two'"));

  absl::StatusOr<LaunchInfo> out_of_range =
      Read({{"OMPI_COMM_WORLD_RANK", "4"}, {"OMPI_COMM_WORLD_SIZE", "4"}});
  EXPECT_EQ(out_of_range.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(out_of_range.status().message(), HasSubstr("OMPI_COMM_WORLD_RANK=4 must lie in [0"));

  absl::StatusOr<LaunchInfo> zero_size = Read({{"PMI_RANK", "0"}, {"PMI_SIZE", "0"}});
  EXPECT_EQ(zero_size.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(zero_size.status().message(), HasSubstr("PMI_SIZE=0 must be at least 1"));

  absl::StatusOr<LaunchInfo> bad_local =
      Read({{"SLURM_PROCID", "1"}, {"SLURM_STEP_NUM_TASKS", "2"}, {"SLURM_LOCALID", "-1"}});
  EXPECT_EQ(bad_local.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_local.status().message(), HasSubstr("SLURM_LOCALID=-1"));
}

}  // namespace
}  // namespace trident::comm

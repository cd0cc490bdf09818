// The parameter server with bounded staleness (parameter_server.h) on the
// local backend, on ps_quadratic_testing.h's quadratic.
//   - S = 0 equals synchronous data parallelism bit for bit (1 and 2
//     servers): the reference all-reduces the same gradients (a rank-ordered
//     fp32 sum, like the server's) and takes the same elementwise AdamW step,
//     so every operation and rounding is the same; compared with memcmp.
//   - Staleness never exceeds S: every applied gradient's clock minus the
//     version it was computed on, as recorded by the servers, is in [0, S];
//     a slow worker makes the others run ahead (the bound is asserted, the
//     observed maximum printed, never a time).
//   - It trains: the objective falls by at least half of sync's drop.
//   - Bytes per clock counted by the communicator: a worker sends 4(P + N)
//     (a header per server) and receives 4P, server j receives 4 (P_j + 1) W
//     and sends 4 P_j W.
//   - An early stop after clock k < steps (S = 0 and S = 2): the servers
//     apply exactly k clocks and return, every worker pulls the same version-k
//     state, with S = 0 sync's values after clock k bit for bit; a stop at a
//     snapshot version sends the state once; workers stopping after
//     different clocks fail by rule; a stop after the last clock is refused.
//   - A run started by worker 0 and resumed from a snapshot continues bit for
//     bit (SendPsStart, PsWorker::PullState, PsServer::CreateFromStart).
//   - Bad options are refused by name.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "core/comm/communicator.h"
#include "core/comm/local/local_world.h"
#include "core/status_macros.h"
#include "data_parallel/sync_modes/parameter_server.h"
#include "data_parallel/sync_modes/ps_quadratic_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace trident::data_parallel {
namespace {

using ::testing::HasSubstr;

using testing::kPsElements;
using testing::PsInitial;
using testing::PsObjective;

constexpr int64_t kElements = kPsElements;

// Synchronous data parallelism on `workers` local ranks: replica 0's values
// after each clock.
std::vector<std::vector<float>> SyncRun(int workers, int64_t steps) {
  std::vector<std::vector<float>> trajectory;
  EXPECT_TRUE(comm::RunLocalRanks(workers, [&](int rank, comm::Communicator& dp) {
                ASSIGN_OR_RETURN(std::vector<std::vector<float>> mine,
                                 testing::SyncRun(dp, steps));
                if (rank == 0) trajectory = std::move(mine);
                return absl::OkStatus();
              }).ok());
  return trajectory;
}

struct PsRun {
  // trajectory[w][c]: worker w's values after its pull of clock c.
  std::vector<std::vector<std::vector<float>>> trajectory;
  std::vector<std::vector<PsAppliedGradient>> applied;  // By server.
  std::vector<comm::CommStats> stats;                   // By rank.
};

PsRun RunPs(const PsOptions& options, int slow_worker = -1, int64_t stop_after = -1,
            std::vector<testing::PsRankResult>* results = nullptr) {
  PsRun run;
  const int world = options.workers + options.servers;
  if (results != nullptr) results->assign(world, {});
  run.trajectory.resize(options.workers);
  run.applied.resize(options.servers);
  run.stats.resize(world);
  const absl::Status status = comm::RunLocalRanks(world, [&](int rank, comm::Communicator& comm) {
    ASSIGN_OR_RETURN(testing::PsRankResult mine,
                     testing::RunPsRank(comm, options, slow_worker, stop_after));
    if (results != nullptr) (*results)[rank] = mine;
    if (rank < options.workers) {
      run.trajectory[rank] = std::move(mine.trajectory);
    } else {
      run.applied[rank - options.workers] = std::move(mine.applied);
    }
    run.stats[rank] = comm.stats();
    return absl::OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status;
  return run;
}

TEST(ParameterServer, StalenessZeroEqualsSynchronousDataParallelismBitForBit) {
  constexpr int kWorkers = 3;
  constexpr int64_t kSteps = 20;
  const std::vector<std::vector<float>> sync = SyncRun(kWorkers, kSteps);
  ASSERT_EQ(sync.size(), static_cast<size_t>(kSteps));
  for (int servers : {1, 2}) {
    const PsRun ps = RunPs({.workers = kWorkers, .servers = servers, .staleness = 0,
                            .steps = kSteps});
    for (int w = 0; w < kWorkers; ++w) {
      ASSERT_EQ(ps.trajectory[w].size(), static_cast<size_t>(kSteps));
      for (int64_t c = 0; c < kSteps; ++c) {
        ASSERT_EQ(std::memcmp(ps.trajectory[w][c].data(), sync[c].data(),
                              kElements * sizeof(float)),
                  0)
            << "servers " << servers << " worker " << w << " clock " << c;
      }
    }
    for (const std::vector<PsAppliedGradient>& applied : ps.applied) {
      ASSERT_EQ(applied.size(), static_cast<size_t>(kWorkers * kSteps));
      for (const PsAppliedGradient& a : applied) EXPECT_EQ(a.staleness(), 0);
    }
  }
}

TEST(ParameterServer, StalenessNeverExceedsTheBoundAndItTrains) {
  constexpr int kWorkers = 4;
  constexpr int64_t kSteps = 50;
  const std::vector<std::vector<float>> sync = SyncRun(kWorkers, kSteps);
  const double initial = PsObjective(PsInitial(), kWorkers);
  const double sync_drop = initial - PsObjective(sync.back(), kWorkers);
  ASSERT_GT(sync_drop, 0.5 * initial) << "the reference must learn for the bound to matter";
  for (int staleness : {1, 3}) {
    const PsRun ps = RunPs(
        {.workers = kWorkers, .servers = 2, .staleness = staleness, .steps = kSteps},
        /*slow_worker=*/kWorkers - 1);
    int64_t worst = 0;
    for (const std::vector<PsAppliedGradient>& applied : ps.applied) {
      ASSERT_EQ(applied.size(), static_cast<size_t>(kWorkers * kSteps));
      for (const PsAppliedGradient& a : applied) {
        ASSERT_GE(a.staleness(), 0);
        ASSERT_LE(a.staleness(), staleness) << "worker " << a.worker << " clock " << a.clock;
        worst = std::max(worst, a.staleness());
      }
    }
    // Every worker ends on the same, final parameters.
    for (int w = 1; w < kWorkers; ++w) {
      EXPECT_EQ(ps.trajectory[w].back(), ps.trajectory[0].back()) << "worker " << w;
    }
    const double drop = initial - PsObjective(ps.trajectory[0].back(), kWorkers);
    std::printf("S=%d: largest staleness seen %lld; objective drop %.4f (sync %.4f)\n", staleness,
                static_cast<long long>(worst), drop, sync_drop);
    EXPECT_GE(drop, 0.5 * sync_drop);  // NaN fails too.
  }
}

TEST(ParameterServer, BytesPerClockAreTheFormula) {
  constexpr int kWorkers = 3, kServers = 2;
  constexpr int64_t kSteps = 5;
  const PsRun ps = RunPs({.workers = kWorkers, .servers = kServers, .staleness = 1,
                          .steps = kSteps});
  for (int w = 0; w < kWorkers; ++w) {
    EXPECT_EQ(ps.stats[w].bytes_of(comm::CommOp::kSend), 4 * (kElements + kServers) * kSteps);
    EXPECT_EQ(ps.stats[w].bytes_of(comm::CommOp::kRecv), 4 * kElements * kSteps);
  }
  for (int j = 0; j < kServers; ++j) {
    const int64_t window = PsWindowOf(kElements, kServers, j).length;
    EXPECT_EQ(ps.stats[kWorkers + j].bytes_of(comm::CommOp::kRecv),
              4 * (window + 1) * kWorkers * kSteps);
    EXPECT_EQ(ps.stats[kWorkers + j].bytes_of(comm::CommOp::kSend), 4 * window * kWorkers * kSteps);
  }
}

TEST(ParameterServer, AnEarlyStopEndsEveryWorkerOnTheSameStateAndTheServersReturn) {
  constexpr int kWorkers = 3, kServers = 2;
  constexpr int64_t kSteps = 12, kStop = 7;
  const std::vector<std::vector<float>> sync = SyncRun(kWorkers, kSteps);
  for (int staleness : {0, 2}) {
    std::vector<testing::PsRankResult> results;
    // RunPs fails the test unless every rank, servers included, returns OK.
    const PsRun ps = RunPs({.workers = kWorkers, .servers = kServers, .staleness = staleness,
                            .steps = kSteps},
                           /*slow_worker=*/kWorkers - 1, /*stop_after=*/kStop, &results);
    for (const std::vector<PsAppliedGradient>& applied : ps.applied) {
      EXPECT_EQ(applied.size(), static_cast<size_t>(kWorkers * kStop)) << "S=" << staleness;
      for (const PsAppliedGradient& a : applied) EXPECT_LT(a.clock, kStop);
    }
    ASSERT_EQ(results[0].stop_values.size(), static_cast<size_t>(kElements));
    for (int w = 0; w < kWorkers; ++w) {
      EXPECT_EQ(ps.trajectory[w].size(), static_cast<size_t>(kStop));
      EXPECT_EQ(results[w].stop_values, results[0].stop_values) << "S=" << staleness << " w " << w;
      EXPECT_EQ(results[w].stop_exp_avg, results[0].stop_exp_avg);
      EXPECT_EQ(results[w].stop_exp_avg_sq, results[0].stop_exp_avg_sq);
    }
    for (float v : results[0].stop_exp_avg_sq) ASSERT_TRUE(std::isfinite(v) && v > 0);
    if (staleness == 0) {
      // Version k's values: what sync holds after clock k, and what the
      // workers pulled for clock k.
      EXPECT_EQ(std::memcmp(results[0].stop_values.data(), sync[kStop - 1].data(),
                            kElements * sizeof(float)),
                0);
      EXPECT_EQ(results[0].stop_values, ps.trajectory[0].back());
    } else {
      // Not sync's trajectory, but the same k updates: it still trains.
      EXPECT_LT(PsObjective(results[0].stop_values, kWorkers),
                PsObjective(PsInitial(), kWorkers));
    }
  }
}

TEST(ParameterServer, AStopAtASnapshotVersionSendsTheStateOnce) {
  // The snapshot of version 3 is the stop's state: the workers pull it once
  // and nothing is left unreceived (the run would fail at teardown or hang).
  const PsOptions options{.workers = 2, .servers = 2, .staleness = 0, .steps = 6};
  const absl::Status status =
      comm::RunLocalRanks(4, [&](int rank, comm::Communicator& comm) -> absl::Status {
        if (rank >= options.workers) {
          const int server = rank - options.workers;
          ASSIGN_OR_RETURN(PsStart mine, ReceivePsStart(comm, options, server));
          ASSIGN_OR_RETURN(PsServer ps,
                           PsServer::CreateFromStart(options, server, std::move(mine),
                                                     testing::PsAdam(), testing::PsLearningRate));
          RETURN_IF_ERROR(ps.Serve(comm));
          EXPECT_EQ(ps.version(), 3);
          return absl::OkStatus();
        }
        if (rank == 0) {
          PsStart start;
          start.steps = 6;
          start.snapshot_versions = {3};
          start.segments = testing::PsSegments();
          start.values = PsInitial();
          start.exp_avg.assign(kElements, 0.0f);
          start.exp_avg_sq.assign(kElements, 0.0f);
          RETURN_IF_ERROR(SendPsStart(comm, options, start));
        }
        ASSIGN_OR_RETURN(PsWorker worker, PsWorker::Create(options, kElements));
        std::vector<float> x = PsInitial(), m(kElements), v(kElements);
        for (int c = 0; c < 3; ++c) {
          RETURN_IF_ERROR(
              worker.PushAndPull(comm, testing::PsGradient(rank, 2, x), absl::MakeSpan(x)));
        }
        RETURN_IF_ERROR(worker.PullState(comm, absl::MakeSpan(x), absl::MakeSpan(m),
                                         absl::MakeSpan(v)));
        RETURN_IF_ERROR(worker.Stop(comm));
        EXPECT_FALSE(worker.Stop(comm).ok());
        return absl::OkStatus();
      });
  EXPECT_TRUE(status.ok()) << status;
}

TEST(ParameterServer, WorkersStoppingAfterDifferentClocksAreAnError) {
  // Worker 0 stops after clock 2, worker 1 pushes clock 2: whichever the
  // server takes first, it fails naming the rule (and the world aborts).
  const PsOptions options{.workers = 2, .servers = 1, .staleness = 0, .steps = 5};
  const absl::Status status = comm::RunLocalRanks(3, [&](int rank, comm::Communicator& comm) {
    return testing::RunPsRank(comm, options, /*slow_worker=*/-1, /*stop_after=*/2 + rank)
        .status();
  });
  EXPECT_THAT(status.message(), HasSubstr("every worker must stop after the same clock"));
}

TEST(ParameterServer, AStopAfterTheLastClockIsRefused) {
  // After `steps` clocks the servers are done: there is no run to end.
  const PsOptions options{.workers = 1, .servers = 1, .staleness = 0, .steps = 2};
  const absl::Status status = comm::RunLocalRanks(2, [&](int rank, comm::Communicator& comm) {
    if (rank == 1) return testing::RunPsRank(comm, options).status();
    ASSIGN_OR_RETURN(PsWorker worker, PsWorker::Create(options, kElements));
    std::vector<float> x = PsInitial();
    for (int c = 0; c < 2; ++c) {
      RETURN_IF_ERROR(worker.PushAndPull(comm, testing::PsGradient(0, 1, x), absl::MakeSpan(x)));
    }
    const absl::Status stop = worker.Stop(comm);
    EXPECT_EQ(stop.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(stop.message(), HasSubstr("all 2 clocks ran"));
    return absl::OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status;
}

TEST(ParameterServer, WindowsTileTheVector) {
  for (int servers = 1; servers <= 5; ++servers) {
    int64_t next = 0;
    for (int j = 0; j < servers; ++j) {
      const PsWindow w = PsWindowOf(kElements, servers, j);
      EXPECT_EQ(w.offset, next);
      EXPECT_GE(w.length, kElements / servers);
      next += w.length;
    }
    EXPECT_EQ(next, kElements);
  }
}

// A run started by worker 0 (SendPsStart) with a snapshot after clock 3,
// and a second run resumed from that snapshot (first_step 3): its 3 clocks
// equal the first run's clocks 4-6 bit for bit (the moments, the AdamW step
// count and the learning rate's clock carried over), and the first run
// equals synchronous data parallelism (starting from worker 0's state is
// starting from the same values).
struct StartedRun {
  std::vector<std::vector<float>> trajectory;  // Worker 0's values after each clock.
  std::vector<float> values, exp_avg, exp_avg_sq;  // Worker 0's snapshot, if any.
};

StartedRun RunStarted(const PsOptions& options, PsStart start) {
  StartedRun run;
  const int world = options.workers + options.servers;
  const absl::Status status = comm::RunLocalRanks(world, [&](int rank, comm::Communicator& comm) {
    if (rank >= options.workers) {
      const int server = rank - options.workers;
      ASSIGN_OR_RETURN(PsStart mine, ReceivePsStart(comm, options, server));
      ASSIGN_OR_RETURN(PsServer ps, PsServer::CreateFromStart(options, server, std::move(mine),
                                                              testing::PsAdam(),
                                                              testing::PsLearningRate));
      return ps.Serve(comm);
    }
    if (rank == 0) RETURN_IF_ERROR(SendPsStart(comm, options, start));
    ASSIGN_OR_RETURN(PsWorker worker, PsWorker::Create(options, kElements));
    std::vector<float> x = start.values;
    for (int64_t c = 0; c < start.steps; ++c) {
      const std::vector<float> g = testing::PsGradient(rank, options.workers, x);
      RETURN_IF_ERROR(worker.PushAndPull(comm, g, absl::MakeSpan(x)));
      if (rank == 0) run.trajectory.push_back(x);
      if (std::binary_search(start.snapshot_versions.begin(), start.snapshot_versions.end(),
                             c + 1)) {
        std::vector<float> v(kElements), m(kElements), s(kElements);
        RETURN_IF_ERROR(worker.PullState(comm, absl::MakeSpan(v), absl::MakeSpan(m),
                                         absl::MakeSpan(s)));
        if (rank == 0) {
          run.values = v;
          run.exp_avg = m;
          run.exp_avg_sq = s;
        }
      }
    }
    return absl::OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status;
  return run;
}

TEST(ParameterServer, AResumedRunContinuesBitForBit) {
  const PsOptions options{.workers = 3, .servers = 2, .staleness = 0, .steps = 6};
  PsStart fresh;
  fresh.steps = 6;
  fresh.snapshot_versions = {3};
  fresh.segments = testing::PsSegments();
  fresh.values = PsInitial();
  fresh.exp_avg.assign(kElements, 0.0f);
  fresh.exp_avg_sq.assign(kElements, 0.0f);
  const StartedRun whole = RunStarted(options, fresh);
  ASSERT_EQ(whole.trajectory.size(), 6u);
  const std::vector<std::vector<float>> sync = SyncRun(options.workers, 6);
  ASSERT_EQ(sync.size(), 6u);
  for (int c = 0; c < 6; ++c) {
    EXPECT_EQ(std::memcmp(whole.trajectory[c].data(), sync[c].data(), kElements * sizeof(float)),
              0)
        << "clock " << c + 1;
  }
  // The snapshot is version 3's values (what every worker pulled for clock 4).
  ASSERT_EQ(whole.values.size(), static_cast<size_t>(kElements));
  EXPECT_EQ(whole.values, whole.trajectory[2]);

  PsStart resumed;
  resumed.first_step = 3;
  resumed.steps = 3;
  resumed.segments = testing::PsSegments();
  resumed.values = whole.values;
  resumed.exp_avg = whole.exp_avg;
  resumed.exp_avg_sq = whole.exp_avg_sq;
  const StartedRun rest = RunStarted(options, resumed);
  ASSERT_EQ(rest.trajectory.size(), 3u);
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(std::memcmp(rest.trajectory[c].data(), whole.trajectory[3 + c].data(),
                          kElements * sizeof(float)),
              0)
        << "clock " << 4 + c;
  }
  // Without the moments the continuation differs (the test can tell).
  resumed.exp_avg.assign(kElements, 0.0f);
  resumed.exp_avg_sq.assign(kElements, 0.0f);
  const StartedRun fresh_moments = RunStarted(options, resumed);
  ASSERT_EQ(fresh_moments.trajectory.size(), 3u);
  EXPECT_NE(fresh_moments.trajectory[0], whole.trajectory[3]);
}

TEST(ParameterServer, BadOptionsAreRefusedByName) {
  const auto message = [](const PsOptions& o, int64_t elements, int world) {
    return std::string(ValidatePsOptions(o, elements, world).message());
  };
  EXPECT_THAT(message({.workers = 2, .servers = 0}, 10, 2), HasSubstr("ps_servers=0 must be >= 1"));
  EXPECT_THAT(message({.workers = 2, .servers = 1, .staleness = -1}, 10, 3),
              HasSubstr("ps_staleness=-1 must be >= 0"));
  EXPECT_THAT(message({.workers = 2, .servers = 11}, 10, 13),
              HasSubstr("ps_servers=11 must be <= the 10 parameter elements"));
  EXPECT_THAT(message({.workers = 2, .servers = 2}, 10, 5),
              HasSubstr("world size=5 must be workers + ps_servers = 2 + 2"));
  EXPECT_THAT(message({.workers = 2, .servers = 1, .steps = 0}, 10, 3),
              HasSubstr("steps=0 must be >= 1"));
  EXPECT_THAT(message({.workers = 2, .servers = 1, .grad_clip = -1}, 10, 3),
              HasSubstr("grad_clip=-1 must be >= 0"));
  EXPECT_THAT(message({.workers = 2, .servers = 1, .grad_clip = std::nan("")}, 10, 3),
              HasSubstr("grad_clip=nan must be >= 0"));
  EXPECT_TRUE(ValidatePsOptions({.workers = 2, .servers = 2, .staleness = 3}, 10, 4).ok());
}

}  // namespace
}  // namespace trident::data_parallel

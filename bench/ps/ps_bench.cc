// Parameter server with bounded staleness (data_parallel/sync_modes/
// parameter_server.h) against stragglers: W workers and N servers on the
// local backend; every clock each worker "computes" for --compute_ms and one
// worker, drawn at random per clock (seeded), is a straggler and takes
// --straggler_ms more. With S = 0 (synchronous) every clock waits for its
// straggler; with S > 0 fast workers run ahead and the delays average out.
// Prints, per S, the wall time of --clocks clocks, its ratio to S = 0 measured
// in the same run, the largest staleness the servers recorded, and the bytes
// a worker sent per clock (counted) against the formula 4(P + N) (its
// gradient and one push header per server).
//
//   bazel run //bench/ps:ps_bench -- --workers=4 --servers=2

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/comm/communicator.h"
#include "core/comm/local/local_world.h"
#include "core/ops/types.h"
#include "core/status_macros.h"
#include "data_parallel/sync_modes/parameter_server.h"

ABSL_FLAG(int, workers, 4, "worker ranks");
ABSL_FLAG(int, servers, 2, "server ranks");
ABSL_FLAG(int64_t, clocks, 100, "clocks per run");
ABSL_FLAG(int64_t, elements, 1 << 16, "fp32 parameters");
ABSL_FLAG(double, compute_ms, 1.0, "every worker's time per clock");
ABSL_FLAG(double, straggler_ms, 4.0, "the straggler's extra time per clock");

namespace trident::data_parallel {
namespace {

struct Measured {
  double seconds = 0;
  int64_t worst_staleness = 0;
  int64_t worker_bytes_sent = 0;  // Worker 0, all clocks.
};

absl::StatusOr<Measured> RunOnce(const PsOptions& options, int64_t elements, double compute_ms,
                                 double straggler_ms) {
  // Straggler of each clock, drawn once so that every S sees the same delays.
  std::mt19937 rng(12345);
  std::vector<int> straggler(options.steps);
  for (int& s : straggler) s = static_cast<int>(rng() % options.workers);
  Measured measured;
  std::vector<int64_t> worst(options.servers, 0);
  const absl::Time start = absl::Now();
  RETURN_IF_ERROR(comm::RunLocalRanks(
      options.workers + options.servers, [&](int rank, comm::Communicator& world) {
        const std::vector<float> initial(elements, 1.0f);
        if (rank >= options.workers) {
          const int j = rank - options.workers;
          ASSIGN_OR_RETURN(PsServer server,
                           PsServer::Create(options, j, initial, {{.length = elements}},
                                            ops::AdamWOptions(),
                                            [](int64_t) { return 1e-3; }));
          RETURN_IF_ERROR(server.Serve(world));
          for (const PsAppliedGradient& a : server.applied()) {
            worst[j] = std::max(worst[j], a.staleness());
          }
          return absl::OkStatus();
        }
        ASSIGN_OR_RETURN(PsWorker worker, PsWorker::Create(options, elements));
        std::vector<float> x = initial, g(elements);
        for (int64_t c = 0; c < options.steps; ++c) {
          for (int64_t i = 0; i < elements; ++i) g[i] = 1e-3f * x[i];
          double ms = compute_ms + (straggler[c] == rank ? straggler_ms : 0.0);
          absl::SleepFor(absl::Microseconds(1000 * ms));
          RETURN_IF_ERROR(worker.PushAndPull(world, g, absl::MakeSpan(x)));
        }
        if (rank == 0) measured.worker_bytes_sent = world.stats().bytes_of(comm::CommOp::kSend);
        return absl::OkStatus();
      }));
  measured.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  for (int64_t w : worst) measured.worst_staleness = std::max(measured.worst_staleness, w);
  return measured;
}

int Main() {
  const int workers = absl::GetFlag(FLAGS_workers);
  const int servers = absl::GetFlag(FLAGS_servers);
  const int64_t clocks = absl::GetFlag(FLAGS_clocks);
  const int64_t elements = absl::GetFlag(FLAGS_elements);
  std::printf("ps_bench: %d workers, %d servers, %lld clocks, P = %lld fp32, compute %.1f ms, "
              "one straggler per clock +%.1f ms\n",
              workers, servers, static_cast<long long>(clocks), static_cast<long long>(elements),
              absl::GetFlag(FLAGS_compute_ms), absl::GetFlag(FLAGS_straggler_ms));
  std::printf("%3s %10s %12s %15s %22s\n", "S", "seconds", "vs S=0", "max staleness",
              "worker bytes/clock (4(P+N))");
  double baseline = 0;
  for (int staleness : {0, 1, 2, 4, 8}) {
    const PsOptions options{
        .workers = workers, .servers = servers, .staleness = staleness, .steps = clocks};
    absl::Status valid = ValidatePsOptions(options, elements, workers + servers);
    if (!valid.ok()) {
      std::fprintf(stderr, "%s\n", std::string(valid.message()).c_str());
      return 2;
    }
    absl::StatusOr<Measured> m = RunOnce(options, elements, absl::GetFlag(FLAGS_compute_ms),
                                         absl::GetFlag(FLAGS_straggler_ms));
    if (!m.ok()) {
      std::fprintf(stderr, "S=%d: %s\n", staleness, std::string(m.status().message()).c_str());
      return 1;
    }
    if (staleness == 0) baseline = m->seconds;
    std::printf("%3d %10.3f %12.3f %15lld %14lld (%lld)\n", staleness, m->seconds,
                m->seconds / baseline, static_cast<long long>(m->worst_staleness),
                static_cast<long long>(m->worker_bytes_sent / clocks),
                static_cast<long long>(4 * (elements + servers)));
  }
  return 0;
}

}  // namespace
}  // namespace trident::data_parallel

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return trident::data_parallel::Main();
}

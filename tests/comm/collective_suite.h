#ifndef TRIDENT_TESTS_COMM_COLLECTIVE_SUITE_H_
#define TRIDENT_TESTS_COMM_COLLECTIVE_SUITE_H_

// The typed collective test suite: one set of test bodies, written against the
// Communicator interface, run on every backend (DESIGN.md rule 5).
//
// A backend plugs in by implementing RankRunner, which runs a test body on n
// ranks, and instantiating the suite in its own cc_test:
//
//   #include "tests/comm/collective_suite.h"
//   std::unique_ptr<trident::comm::suite::RankRunner> MakeMyRunner() { ... }
//   TRIDENT_INSTANTIATE_COLLECTIVE_SUITE(MyBackend, MakeMyRunner);
//
// with deps = ["//tests/comm:collective_suite", ...] (the library holds the
// TEST_Ps and is alwayslink) and a main that sets up the backend (gtest_main
// for local; an MPI main that calls MPI_Init before RUN_ALL_TESTS for MPI).
//
// Contract of RankRunner::Run(n, body), the only way tests reach ranks:
// - Every test calls Run from the test's main thread, with the same sequence of
//   arguments on every process (tests never branch on the process's rank
//   outside a body), so a multi-process backend can run the whole gtest binary
//   in each process: each process is one rank.
// - The body runs once per rank r in [0, n), on a fresh Communicator of size n
//   whose rank() is r and whose world_ranks() are the backend's world ranks of
//   those n ranks (any values; the suite reads them, never assumes them).
//   With MPI: processes [0, n) run the body on a communicator over those ranks;
//   processes >= n skip it and only wait (e.g. at a barrier on the parent) until
//   the body has finished everywhere. With local threads: n threads.
// - The bodies of one Run may execute concurrently in threads of one process:
//   they share nothing but what is captured, and use gtest EXPECT/ASSERT (which
//   are thread-safe). Each body creates and destroys what it needs (groups
//   included); a body may end with operations failed (timeout tests) so the
//   communicator given to it is not reused by the runner afterwards.
// - The body may change the communicator's timeout (set_timeout) and create
//   groups from it; the runner's own default timeout should be generous (tens of
//   seconds) so that a bug fails a test instead of hanging it.
// - Run returns after every rank's body returned; failures are reported by the
//   gtest assertions in the bodies (a runner may also add its own, e.g. when
//   launching ranks fails).
// Tests that need more ranks than MaxWorldSize() skip; world sizes go up to 8.
//
// What the suite covers: all-reduce (sum, avg, max, min), reduce-scatter,
// all-gather, broadcast from every root, send/recv, batched send/recv (rings,
// both ways on two tags, partial timeouts), barrier, on world sizes 1-8,
// every dtype (fp32, bf16, fp16, int32, int64) with exactly known values; every
// group kind (tp, dp, pp, model-parallel, embedding, pipeline neighbours) of the
// grids tp x pp x dp = 2x2x2, 1x4x2, 4x1x2, 8x1x1 in Megatron rank order tp-dp-pp
// (tp fastest); sizes 0, 1, 1001 and several MiB; many async handles in flight
// on several communicators, waited in reverse order; p2p ordering between many
// pairs and tags, all-to-all exchange; determinism across runs; timeouts; bad
// arguments, each with its exact message (the same on every backend); CommStats
// counts.

#include <functional>
#include <ostream>
#include <memory>
#include <string>

#include "core/comm/communicator.h"
#include "gtest/gtest.h"

namespace trident::comm::suite {

// What a backend promises beyond the interface; tests of a missing trait skip.
struct RunnerTraits {
  // An operation a member never joins fails with DEADLINE_EXCEEDED worded by
  // DeadlineExceededError (naming the missing world rank) after timeout(), and
  // the communicator is broken afterwards (FAILED_PRECONDITION).
  bool timeouts = true;
  // Members disagreeing on a collective's count fail it with INVALID_ARGUMENT
  // (instead of undefined behaviour) and the communicator stays usable.
  bool detects_mismatched_members = true;
  // Reductions combine members in group-rank order, one rounding per element
  // (bf16/fp16 accumulate in float), so results equal a serial rank-order loop
  // bit for bit.
  bool rank_ordered_reduction = true;
};

class RankRunner {
 public:
  virtual ~RankRunner() = default;

  // The backend's name as Communicator::backend() returns it.
  virtual std::string backend() const = 0;
  // The largest n Run accepts (the mpirun size for MPI).
  virtual int MaxWorldSize() const = 0;
  virtual RunnerTraits traits() const = 0;
  // Runs `body` on ranks [0, world_size); see the contract above.
  virtual void Run(int world_size, const std::function<void(Communicator& comm)>& body) = 0;
};

// The suite's parameter: makes a runner for each test.
struct SuiteParam {
  std::string name;  // Shown in test names: Prefix/CollectiveSuite.Test/<name>.
  std::function<std::unique_ptr<RankRunner>()> make_runner;
};

// gtest prints parameters with this.
void PrintTo(const SuiteParam& param, std::ostream* os);
std::string SuiteParamName(const ::testing::TestParamInfo<SuiteParam>& info);

class CollectiveSuite : public ::testing::TestWithParam<SuiteParam> {
 protected:
  void SetUp() override;
  RankRunner& runner() { return *runner_; }

 private:
  std::unique_ptr<RankRunner> runner_;
};

}  // namespace trident::comm::suite

// Instantiates every test of the suite for one backend. `factory` is a callable
// returning std::unique_ptr<trident::comm::suite::RankRunner> (write it fully
// qualified unless it is global); `prefix` an identifier (e.g. Local, Mpi). Use
// at global namespace scope, once per test binary.
#define TRIDENT_INSTANTIATE_COLLECTIVE_SUITE(prefix, factory)                        \
  namespace trident::comm::suite {                                                   \
  INSTANTIATE_TEST_SUITE_P(prefix, CollectiveSuite,                                  \
                           ::testing::Values(SuiteParam{#prefix, (factory)}),        \
                           SuiteParamName);                                          \
  }                                                                                  \
  static_assert(true, "require a semicolon after the macro")

#endif  // TRIDENT_TESTS_COMM_COLLECTIVE_SUITE_H_

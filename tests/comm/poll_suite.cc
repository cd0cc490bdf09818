// CommHandle::Test (core/comm/communicator.h), as part of the typed collective
// suite: a receive is polled without blocking, and one rank serves several
// senders in the order their messages arrive. Every backend that instantiates
// the suite runs these.

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/comm/communicator.h"
#include "gtest/gtest.h"
#include "tests/comm/collective_suite.h"

namespace trident::comm::suite {
namespace {

// Polls `handle` until Test() says finished, failing after `limit` (a hang
// guard far above any delivery time, not a timing assertion).
bool PollUntilFinished(CommHandle& handle, absl::Duration limit = absl::Seconds(30)) {
  const absl::Time give_up = absl::Now() + limit;
  while (!handle.Test()) {
    if (absl::Now() > give_up) return false;
    handle.Progress();
  }
  return true;
}

// Rank 1 sends only after rank 0 told it to, so rank 0's receive cannot be
// finished before that: Test() must say false there, then true once the
// message is in, and Wait() gives the data.
TEST_P(CollectiveSuite, TestSaysWhetherAReceiveFinishedWithoutBlocking) {
  if (runner().MaxWorldSize() < 2) GTEST_SKIP() << "needs 2 ranks";
  runner().Run(2, [](Communicator& comm) {
    std::vector<int32_t> data(1001, -1);
    int32_t go = 1;
    if (comm.rank() == 0) {
      std::unique_ptr<CommHandle> recv =
          comm.RecvAsync(MakeBuffer<int32_t>(absl::MakeSpan(data)), 1, /*tag=*/3);
      EXPECT_FALSE(recv->Test());
      EXPECT_FALSE(recv->Test());
      ASSERT_TRUE(comm.Send(ConstBuffer(&go, 1, DType::kInt32), 1, /*tag=*/4).ok());
      ASSERT_TRUE(PollUntilFinished(*recv));
      EXPECT_TRUE(recv->Test());  // Stays finished.
      ASSERT_TRUE(recv->Wait().ok());
      for (int32_t i = 0; i < 1001; ++i) ASSERT_EQ(data[i], 7 * i) << i;
    } else {
      ASSERT_TRUE(comm.Recv(Buffer{&go, 1, DType::kInt32}, 0, /*tag=*/4).ok());
      for (int32_t i = 0; i < 1001; ++i) data[i] = 7 * i;
      ASSERT_TRUE(comm.Send(MakeConstBuffer<int32_t>(absl::MakeSpan(data)), 0, 3).ok());
    }
  });
}

// Rank 0 posts one receive per sender and polls them round robin; the senders
// send one after another in reverse rank order (each waits for a token from
// rank 0, which rank 0 hands out as messages come in), so rank 0 must take the
// messages in arrival order, not rank order, as a parameter server does.
TEST_P(CollectiveSuite, OneRankServesSendersInArrivalOrderByPolling) {
  for (int n = 2; n <= std::min(8, runner().MaxWorldSize()); ++n) {
    runner().Run(n, [n](Communicator& comm) {
      int32_t token = 1;
      if (comm.rank() == 0) {
        std::vector<int32_t> got(n, -1);
        std::vector<std::unique_ptr<CommHandle>> recvs(n);
        for (int peer = 1; peer < n; ++peer) {
          recvs[peer] = comm.RecvAsync(Buffer{&got[peer], 1, DType::kInt32}, peer, /*tag=*/5);
        }
        std::vector<int> order;
        ASSERT_TRUE(comm.Send(ConstBuffer(&token, 1, DType::kInt32), n - 1, 6).ok());
        const absl::Time give_up = absl::Now() + absl::Seconds(30);
        while (static_cast<int>(order.size()) < n - 1) {
          ASSERT_LT(absl::Now(), give_up) << "n=" << n << " got " << order.size();
          for (int peer = 1; peer < n; ++peer) {
            if (recvs[peer] == nullptr || !recvs[peer]->Test()) continue;
            ASSERT_TRUE(recvs[peer]->Wait().ok());
            recvs[peer].reset();
            order.push_back(peer);
            if (peer > 1) {
              ASSERT_TRUE(comm.Send(ConstBuffer(&token, 1, DType::kInt32), peer - 1, 6).ok());
            }
          }
        }
        for (int k = 0; k < n - 1; ++k) EXPECT_EQ(order[k], n - 1 - k) << "n=" << n;
        for (int peer = 1; peer < n; ++peer) EXPECT_EQ(got[peer], 100 + peer);
      } else {
        ASSERT_TRUE(comm.Recv(Buffer{&token, 1, DType::kInt32}, 0, /*tag=*/6).ok());
        const int32_t value = 100 + comm.rank();
        ASSERT_TRUE(comm.Send(ConstBuffer(&value, 1, DType::kInt32), 0, /*tag=*/5).ok());
      }
    });
  }
}

}  // namespace
}  // namespace trident::comm::suite

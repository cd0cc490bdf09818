#include "training/stop_signals.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gtest/gtest.h"

namespace trident::training {
namespace {

TEST(StopSignalsTest, TheFirstSignalIsRecordedNotFatal) {
  StopSignals signals;
  EXPECT_EQ(StopSignals::Received(), 0);
  ASSERT_EQ(::raise(SIGTERM), 0);
  EXPECT_EQ(StopSignals::Received(), SIGTERM);
}

TEST(StopSignalsTest, ASecondSignalExitsAtOnceWithItsStatus) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    StopSignals signals;
    ::raise(SIGHUP);
    ::raise(SIGINT);  // exits with 128 + SIGINT
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), SignalExitCode(SIGINT));
  EXPECT_EQ(SignalExitCode(SIGTERM), 143);
}

TEST(StopSignalsTest, SigUsr1StopsToo) {
  StopSignals signals;
  ASSERT_EQ(::raise(SIGUSR1), 0);
  EXPECT_EQ(StopSignals::Received(), SIGUSR1);
  EXPECT_STREQ(SignalName(SIGUSR1), "SIGUSR1");
}

TEST(StopSignalsTest, HandlersAreRestored) {
  struct sigaction before, after;
  sigaction(SIGTERM, nullptr, &before);
  { StopSignals signals; }
  sigaction(SIGTERM, nullptr, &after);
  EXPECT_EQ(before.sa_handler, after.sa_handler);
}

}  // namespace
}  // namespace trident::training

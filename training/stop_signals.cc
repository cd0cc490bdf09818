#include "training/stop_signals.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "core/check.h"

namespace trident::training {
namespace {

// SIGUSR1 because Open MPI's mpirun forwards it to every rank, while it turns
// SIGINT, SIGTERM and SIGHUP into killing the job (and refuses to forward them).
constexpr int kStopSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1};

std::atomic<int> received_signal{0};
std::atomic<bool> installed{false};
// Set at installation (getenv is not async-signal-safe): this process is a
// rank of an Open MPI job, where SIGINT, SIGTERM and SIGHUP come from mpirun
// ending the job, not from a user asking to save.
bool under_open_mpi = false;
struct sigaction previous[sizeof(kStopSignals) / sizeof(kStopSignals[0])];

void WriteStderr(const char* text) {
  // write(2) is async-signal-safe; the result is irrelevant here.
  [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, text, std::strlen(text));
}

void OnStopSignal(int signal_number) {
  int expected = 0;
  if (received_signal.compare_exchange_strong(expected, signal_number)) {
    WriteStderr("\ntrain: ");
    WriteStderr(SignalName(signal_number));
    if (under_open_mpi && signal_number != SIGUSR1) {
      WriteStderr(" received: under mpirun this is the job being ended (mpirun kills the ranks "
                  "a second later); trying to finish this step and save. To stop a job and "
                  "save, send SIGUSR1 to mpirun\n");
      return;
    }
    WriteStderr(" received: finishing this step, then saving a checkpoint (send it again to "
                "stop at once, without saving)\n");
    return;
  }
  WriteStderr("\ntrain: second stop signal: exiting now, without saving\n");
  ::_exit(SignalExitCode(signal_number));
}

}  // namespace

const char* SignalName(int signal_number) {
  switch (signal_number) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    case SIGHUP:
      return "SIGHUP";
    case SIGUSR1:
      return "SIGUSR1";
    default:
      return "a signal";
  }
}

StopSignals::StopSignals() {
  TRIDENT_CHECK(!installed.exchange(true)) << "StopSignals: one instance at a time";
  received_signal.store(0);
  under_open_mpi = std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr;
  struct sigaction action;
  std::memset(&action, 0, sizeof(action));
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  // Blocking system calls resume: a rank in the middle of a write is not cut.
  action.sa_flags = SA_RESTART;
  for (size_t i = 0; i < sizeof(kStopSignals) / sizeof(kStopSignals[0]); ++i) {
    sigaction(kStopSignals[i], &action, &previous[i]);
  }
}

StopSignals::~StopSignals() {
  for (size_t i = 0; i < sizeof(kStopSignals) / sizeof(kStopSignals[0]); ++i) {
    sigaction(kStopSignals[i], &previous[i], nullptr);
  }
  installed.store(false);
}

int StopSignals::Received() { return received_signal.load(std::memory_order_relaxed); }

}  // namespace trident::training

#ifndef TRIDENT_TRAINING_STOP_SIGNALS_H_
#define TRIDENT_TRAINING_STOP_SIGNALS_H_

// SIGINT, SIGTERM, SIGHUP and SIGUSR1 ask a training run to stop without
// losing it (as Megatron's --exit-signal-handler): the trainer finishes the
// current step on every rank, saves a checkpoint, says how to resume and
// returns; the tool then exits with 128 + the signal number, as a shell
// reports a process the signal ended. A second signal ends the process at
// once with that status.
//
// Under Open MPI's mpirun, send SIGUSR1 to mpirun: it forwards SIGUSR1 to
// every rank, but answers SIGINT, SIGTERM and SIGHUP by killing the job
// (SIGTERM to the ranks, SIGKILL a second later) and refuses to forward them
// (ess_base_forward_signals). Slurm's srun forwards SIGTERM itself.
//
// The ranks of a job may see a signal at different steps (threads poll at
// different moments; under MPI each process gets its own copy, or only some
// do), so the trainer agrees on it with one all-reduce per step.

namespace trident::training {

class StopSignals {
 public:
  // Installs the handlers; the previous ones come back on destruction. One
  // instance at a time per process (checked).
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // The first stop signal received while installed, or 0. Async-signal-safe.
  static int Received();
};

// "SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1", or "a signal".
const char* SignalName(int signal_number);

// What a process stopped by `signal_number` exits with: 128 + signal_number.
inline int SignalExitCode(int signal_number) { return 128 + signal_number; }

}  // namespace trident::training

#endif  // TRIDENT_TRAINING_STOP_SIGNALS_H_

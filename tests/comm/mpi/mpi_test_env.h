#ifndef TRIDENT_TESTS_COMM_MPI_MPI_TEST_ENV_H_
#define TRIDENT_TESTS_COMM_MPI_MPI_TEST_ENV_H_

// What a GoogleTest binary run under mpirun gets from mpi_test_main.cc: the MPI
// world, created before the first test and destroyed after the last.
//
// The main() prints GoogleTest's normal output on world rank 0 only; the other
// ranks print only their failures, prefixed with "[world rank r]". Every rank
// exits non-zero when a test failed on any rank, so mpirun (and the sh_test
// around it) fails too.

#include "core/comm/mpi/mpi_communicator.h"

namespace trident::comm::testing {

// The world communicator (options: a 30 s timeout, so that a test that loses
// its peers fails instead of hanging the job).
MpiCommunicator& MpiTestWorld();

}  // namespace trident::comm::testing

#endif  // TRIDENT_TESTS_COMM_MPI_MPI_TEST_ENV_H_

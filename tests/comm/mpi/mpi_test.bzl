"""mpi_test: a GoogleTest binary run under mpirun on given numbers of ranks."""

def mpi_test(name, srcs, deps, num_ranks, size = "medium", args = [], args_by_ranks = {}, tags = []):
    """Defines `<name>_bin` and one sh_test `<name>_np<N>` per entry of `num_ranks`.

    Also a test_suite `<name>` with all of them.

    Args:
      name: base name.
      srcs: the test sources (link with //tests/comm/mpi:mpi_test_main).
      deps: their dependencies.
      num_ranks: list of world sizes to run on.
      size: the sh_tests' size.
      args: extra arguments for the binary.
      args_by_ranks: more arguments for some world sizes, {num_ranks: [args]}.
      tags: extra tags ("exclusive" is always added).
    """
    binary = name + "_bin"
    native.cc_binary(
        name = binary,
        testonly = True,
        srcs = srcs,
        deps = deps,
    )
    tests = []
    for n in num_ranks:
        test_name = "%s_np%d" % (name, n)
        native.sh_test(
            name = test_name,
            size = size,
            srcs = ["//tests/comm/mpi:run_under_mpirun.sh"],
            args = [str(n), "$(location :%s)" % binary] + args + args_by_ranks.get(n, []),
            data = [":" + binary],
            tags = ["exclusive"] + tags,
        )
        tests.append(":" + test_name)
    native.test_suite(
        name = name,
        tests = tests,
    )

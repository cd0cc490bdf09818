"""CUDA in Bazel: nvcc compiles .cu files into position-independent objects that
link like any cc_library. Where no CUDA Toolkit was found (see
//third_party/cuda:cuda_configure.bzl) every CUDA target is tagged `manual`, so
`//...` builds and tests the CPU parts alone.
"""

load("@bazel_tools//tools/cpp:toolchain_utils.bzl", "find_cpp_toolchain")
load("@local_cuda//:defs.bzl", "CUDA_AVAILABLE", "CUDA_NOT_FOUND_REASON", "CUDA_ROOT")

# Hopper (H100/H200) machine code plus PTX so newer GPUs can JIT it.
_GENCODE = [
    "-gencode=arch=compute_90,code=sm_90",
    "-gencode=arch=compute_90,code=compute_90",
]

def _nvcc_objects_impl(ctx):
    cc_toolchain = find_cpp_toolchain(ctx)
    contexts = [d[CcInfo].compilation_context for d in ctx.attr.deps]
    include_dirs = depset(
        ["."],
        transitive = [c.includes for c in contexts] +
                     [c.quote_includes for c in contexts] +
                     [c.system_includes for c in contexts],
    )
    defines = depset(transitive = [c.defines for c in contexts])
    headers = depset(ctx.files.hdrs, transitive = [c.headers for c in contexts])
    objects = []
    for src in ctx.files.srcs:
        stem = src.basename[:-len(src.extension) - 1]
        obj = ctx.actions.declare_file("_nvcc/%s/%s.pic.o" % (ctx.label.name, stem))
        args = ctx.actions.args()
        args.add("-ccbin", cc_toolchain.compiler_executable)
        args.add_all(["-std=c++20", "-O3", "--expt-relaxed-constexpr", "-lineinfo"])
        args.add_all(["-Xcompiler", "-fPIC"])
        args.add_all(_GENCODE)
        args.add_all(include_dirs, format_each = "-I%s")
        args.add_all(defines, format_each = "-D%s")
        args.add_all(ctx.attr.copts)
        args.add_all(["-c", src.path, "-o", obj.path])
        ctx.actions.run(
            executable = CUDA_ROOT + "/bin/nvcc",
            arguments = [args],
            inputs = depset([src], transitive = [headers, cc_toolchain.all_files]),
            outputs = [obj],
            mnemonic = "Nvcc",
            progress_message = "nvcc %s" % src.short_path,
            use_default_shell_env = True,
        )
        objects.append(obj)
    return [DefaultInfo(files = depset(objects))]

_nvcc_objects = rule(
    implementation = _nvcc_objects_impl,
    attrs = {
        "srcs": attr.label_list(allow_files = [".cu"]),
        "hdrs": attr.label_list(allow_files = True),
        "deps": attr.label_list(providers = [CcInfo]),
        "copts": attr.string_list(),
        "_cc_toolchain": attr.label(default = "@bazel_tools//tools/cpp:current_cc_toolchain"),
    },
    fragments = ["cpp"],
    toolchains = ["@bazel_tools//tools/cpp:toolchain_type"],
)

def _cuda_tags(tags):
    return tags if CUDA_AVAILABLE else tags + ["manual"]

def cuda_library(name, srcs = [], hdrs = [], cuda_hdrs = [], deps = [], copts = [],
                 tags = [], **kwargs):
    """A cc_library whose .cu sources are compiled by nvcc.

    hdrs: public C++ headers. cuda_hdrs: .cuh headers shared by the .cu files
    (kept out of the cc_library, which would try to compile them).
    """
    cu_srcs = [s for s in srcs if s.endswith(".cu")]
    cc_srcs = [s for s in srcs if not s.endswith(".cu")]
    all_deps = deps + ["@local_cuda//:cuda_headers", "@local_cuda//:cudart"]
    objects = []
    if cu_srcs and CUDA_AVAILABLE:
        _nvcc_objects(
            name = name + "_nvcc",
            srcs = cu_srcs,
            hdrs = hdrs + cuda_hdrs,
            deps = all_deps,
            copts = copts,
            tags = tags,
        )
        objects = [name + "_nvcc"]
    native.cc_library(
        name = name,
        srcs = cc_srcs + objects,
        hdrs = hdrs,
        deps = all_deps,
        tags = _cuda_tags(tags),
        **kwargs
    )

def cuda_binary(name, tags = [], **kwargs):
    """A cc_binary that needs CUDA: manual (skipped by //...) without a toolkit."""
    native.cc_binary(name = name, tags = _cuda_tags(tags), **kwargs)

def cuda_test(name, tags = [], **kwargs):
    """A cc_test that needs CUDA to build; at run time it must GTEST_SKIP without a GPU."""
    native.cc_test(name = name, tags = _cuda_tags(tags + ["gpu"]), **kwargs)

def if_cuda(if_true, if_false = []):
    """Selects build content by whether a CUDA Toolkit was found."""
    return if_true if CUDA_AVAILABLE else if_false

cuda_status = struct(
    available = CUDA_AVAILABLE,
    reason = CUDA_NOT_FOUND_REASON,
)

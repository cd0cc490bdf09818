"""Repository rule that finds the CUDA Toolkit and describes it to Bazel.

It writes a repository with one cc_library per CUDA library (headers, cudart,
cublasLt, cudnn, nccl) and a defs.bzl stating whether CUDA was found. Without a
toolkit, the targets are empty stand-ins and CUDA_AVAILABLE is False, so the CPU
parts of the project still build and test. `--repo_env=TRIDENT_CUDA=off` (the
`nocuda` config) forces the CPU-only form.
"""

_LIBS = {
    "cudart": "cudart",
    "cublas": "cublas",
    "cublaslt": "cublasLt",
    "cudnn": "cudnn",
    "nccl": "nccl",
}

def _find_cuda(ctx):
    if ctx.os.environ.get("TRIDENT_CUDA", "") == "off":
        return None, "turned off by TRIDENT_CUDA=off"
    root = ctx.os.environ.get("CUDA_PATH", "/usr/local/cuda")
    if not ctx.path(root + "/bin/nvcc").exists:
        return None, "no nvcc at %s/bin/nvcc" % root
    return ctx.path(root).realpath, ""

def _cuda_configure_impl(ctx):
    root, why_not = _find_cuda(ctx)
    lines = ['package(default_visibility = ["//visibility:public"])', ""]
    if root == None:
        ctx.file("defs.bzl", "\n".join([
            "CUDA_AVAILABLE = False",
            'CUDA_ROOT = ""',
            'CUDA_NOT_FOUND_REASON = "%s"' % why_not,
            "",
        ]))
        lines.append('cc_library(name = "cuda_headers")')
        for name in _LIBS:
            lines.append('cc_library(name = "%s")' % name)
        ctx.file("BUILD", "\n".join(lines) + "\n")
        return

    ctx.symlink(str(root) + "/include", "include")
    ctx.file("defs.bzl", "\n".join([
        "CUDA_AVAILABLE = True",
        'CUDA_ROOT = "%s"' % root,
        'CUDA_NOT_FOUND_REASON = ""',
        "",
    ]))
    lines.append("""cc_library(
    name = "cuda_headers",
    # CCCL (libcu++, e.g. <nv/target>, which cuda_fp16.h and so cublasLt.h
    # include) lives under include/cccl with extensionless headers; nvcc adds
    # that directory itself, g++ needs it spelled out.
    hdrs = glob(["include/**/*.h", "include/**/*.hpp", "include/**/*.cuh", "include/**/*.inl",
                 "include/cccl/**"],
                allow_empty = True),
    includes = ["include", "include/cccl"],
)
""")
    lib_dir = str(root) + "/lib64"
    for name, lib in _LIBS.items():
        lines.append("""cc_library(
    name = "{name}",
    linkopts = ["-L{lib_dir}", "-Wl,-rpath,{lib_dir}", "-l{lib}"],
    deps = [":cuda_headers"],
)
""".format(name = name, lib_dir = lib_dir, lib = lib))
    ctx.file("BUILD", "\n".join(lines) + "\n")

cuda_configure = repository_rule(
    implementation = _cuda_configure_impl,
    environ = ["CUDA_PATH", "TRIDENT_CUDA"],
    local = True,
)

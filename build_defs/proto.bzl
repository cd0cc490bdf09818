"""C++ from .proto files with the system protoc (no protobuf sources downloaded).

cc_proto(name, srcs, deps) generates <file>.pb.h/.pb.cc for each source with
/usr/bin/protoc and wraps them in a cc_library called `name`. Imports between
protos use workspace paths ("topology/layout.proto"); list the importing
library's cc_proto deps in `deps` and their .proto files travel along.
"""

def cc_proto(name, srcs, deps = [], visibility = None):
    native.filegroup(
        name = name + "_protos",
        srcs = srcs + [d + "_protos" for d in deps],
        visibility = visibility,
    )
    outs = []
    for src in srcs:
        if not src.endswith(".proto"):
            fail("cc_proto %s: %s is not a .proto file" % (name, src))
        base = src[:-len(".proto")]
        outs += [base + ".pb.h", base + ".pb.cc"]
    package = native.package_name()
    native.genrule(
        name = name + "_protoc",
        srcs = [name + "_protos"],
        outs = outs,
        cmd = "/usr/bin/protoc -I. --cpp_out=$(GENDIR) " +
              " ".join(["%s/%s" % (package, s) if package else s for s in srcs]),
        message = "protoc " + ", ".join(srcs),
    )
    native.cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = [o for o in outs if o.endswith(".h")],
        deps = deps + ["//third_party:protobuf"],
        visibility = visibility,
    )

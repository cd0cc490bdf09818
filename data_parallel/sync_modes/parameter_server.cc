#include "data_parallel/sync_modes/parameter_server.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/comm/communicator.h"
#include "core/dtype.h"
#include "core/exec_context.h"
#include "core/ops/optimizer.h"
#include "core/ops/reduction.h"
#include "core/status_macros.h"
#include "core/tensor.h"

namespace trident::data_parallel {
namespace {

Tensor View(float* data, int64_t length) {
  return Tensor::FromExternal(data, {length}, DType::kFloat32);
}

}  // namespace

absl::Status ValidatePsOptions(const PsOptions& options, int64_t elements, int world_size) {
  const auto bad = [](absl::string_view field, int64_t value, absl::string_view rule) {
    return absl::InvalidArgumentError(
        absl::StrCat("dp_sync=ps: ", field, "=", value, " ", rule));
  };
  if (options.workers < 1) return bad("workers", options.workers, "must be >= 1");
  if (options.servers < 1) {
    return bad("ps_servers", options.servers, "must be >= 1 (the ranks that hold the parameters)");
  }
  if (options.staleness < 0) {
    return bad("ps_staleness", options.staleness,
               "must be >= 0 (the clocks a worker may run ahead of the slowest)");
  }
  if (options.steps < 1) return bad("steps", options.steps, "must be >= 1");
  if (!(options.grad_clip >= 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dp_sync=ps: grad_clip=", options.grad_clip, " must be >= 0 (0: no clipping)"));
  }
  if (options.servers > elements) {
    return bad("ps_servers", options.servers,
               absl::StrCat("must be <= the ", elements,
                            " parameter elements (every server owns a non-empty window)"));
  }
  if (world_size != options.workers + options.servers) {
    return bad("world size", world_size,
               absl::StrCat("must be workers + ps_servers = ", options.workers, " + ",
                            options.servers));
  }
  return absl::OkStatus();
}

PsWindow PsWindowOf(int64_t elements, int servers, int server) {
  const int64_t base = elements / servers;
  const int64_t extra = elements % servers;
  return {.offset = server * base + std::min<int64_t>(server, extra),
          .length = base + (server < extra ? 1 : 0)};
}

absl::StatusOr<PsServer> PsServer::Create(const PsOptions& options, int server,
                                          absl::Span<const float> initial,
                                          std::vector<PsSegment> segments,
                                          const ops::AdamWOptions& adamw,
                                          std::function<double(int64_t)> learning_rate) {
  const int64_t elements = static_cast<int64_t>(initial.size());
  RETURN_IF_ERROR(ValidatePsOptions(options, elements, options.workers + options.servers));
  if (server < 0 || server >= options.servers) {
    return absl::InvalidArgumentError(absl::StrCat("server ", server, " is not in [0, ps_servers=",
                                                   options.servers, ")"));
  }
  int64_t covered = 0;
  for (const PsSegment& s : segments) covered += s.length;
  if (covered != elements) {
    return absl::InvalidArgumentError(absl::StrCat("the parameter segments cover ", covered,
                                                   " elements, not the vector's ", elements));
  }
  const PsWindow window = PsWindowOf(elements, options.servers, server);
  PsStart start;
  start.steps = options.steps;
  start.segments = std::move(segments);
  start.values.assign(initial.begin() + window.offset,
                      initial.begin() + window.offset + window.length);
  start.exp_avg.assign(window.length, 0.0f);
  start.exp_avg_sq.assign(window.length, 0.0f);
  return CreateFromStart(options, server, std::move(start), adamw, std::move(learning_rate));
}

absl::StatusOr<PsServer> PsServer::CreateFromStart(const PsOptions& options_in, int server,
                                                   PsStart start, const ops::AdamWOptions& adamw,
                                                   std::function<double(int64_t)> learning_rate) {
  PsOptions options = options_in;
  options.steps = start.steps;
  int64_t elements = 0;
  for (const PsSegment& s : start.segments) {
    if (s.length < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("dp_sync=ps: a parameter segment of ", s.length, " elements"));
    }
    elements += s.length;
  }
  RETURN_IF_ERROR(ValidatePsOptions(options, elements, options.workers + options.servers));
  if (server < 0 || server >= options.servers) {
    return absl::InvalidArgumentError(absl::StrCat("server ", server, " is not in [0, ps_servers=",
                                                   options.servers, ")"));
  }
  PsServer ps;
  ps.options_ = options;
  ps.window_ = PsWindowOf(elements, options.servers, server);
  const int64_t length = ps.window_.length;
  if (static_cast<int64_t>(start.values.size()) != length ||
      static_cast<int64_t>(start.exp_avg.size()) != length ||
      static_cast<int64_t>(start.exp_avg_sq.size()) != length) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dp_sync=ps: server ", server, "'s start holds ", start.values.size(), ", ",
        start.exp_avg.size(), " and ", start.exp_avg_sq.size(),
        " values and moments, not its window's ", length));
  }
  if (start.first_step < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("dp_sync=ps: first step ", start.first_step, " must be >= 0"));
  }
  std::sort(start.snapshot_versions.begin(), start.snapshot_versions.end());
  for (int64_t v : start.snapshot_versions) {
    if (v < 1 || v > options.steps) {
      return absl::InvalidArgumentError(absl::StrCat("dp_sync=ps: snapshot version ", v,
                                                     " is not in [1, ", options.steps, "]"));
    }
  }
  // The segments' parts inside the window, in order.
  int64_t begin = 0;
  const int64_t end_of_window = ps.window_.offset + length;
  for (const PsSegment& s : start.segments) {
    const int64_t lo = std::max(begin, ps.window_.offset);
    const int64_t hi = std::min(begin + s.length, end_of_window);
    if (lo < hi) ps.segments_.push_back({.length = hi - lo, .weight_decay = s.weight_decay});
    begin += s.length;
  }
  ps.adamw_ = adamw;
  ps.learning_rate_ = std::move(learning_rate);
  ps.values_ = std::move(start.values);
  ps.exp_avg_ = std::move(start.exp_avg);
  ps.exp_avg_sq_ = std::move(start.exp_avg_sq);
  ps.sum_.assign(length, 0.0f);
  ps.first_step_ = start.first_step;
  ps.snapshot_versions_ = std::move(start.snapshot_versions);
  return ps;
}

absl::StatusOr<double> PsServer::GlobalNorm(comm::Communicator* servers) {
  // Segment by segment, as the trainer's AdamW::GradientNorm sums its
  // parameters: with one server the segments are the parameters and the
  // norm is that of synchronous training bit for bit.
  const ExecContext ctx = ExecContext::Cpu();
  double squares = 0;
  int64_t offset = 0;
  for (const PsSegment& s : segments_) {
    squares += ops::SumOfSquares(ctx, View(sum_.data() + offset, s.length));
    offset += s.length;
  }
  if (options_.servers > 1) {
    if (servers == nullptr || servers->size() != options_.servers) {
      return absl::InvalidArgumentError(absl::StrCat(
          "dp_sync=ps: clipping with ps_servers=", options_.servers,
          " needs the servers' communicator of ", options_.servers, " ranks"));
    }
    // Doubles travel as their bits: every server adds the same values in
    // the same order, so all agree on the norm to the last bit.
    int64_t bits = std::bit_cast<int64_t>(squares);
    std::vector<int64_t> all(options_.servers);
    RETURN_IF_ERROR(servers->AllGather(comm::ConstBuffer(&bits, 1, DType::kInt64),
                                       comm::Buffer{all.data(), options_.servers, DType::kInt64}));
    squares = 0;
    for (int64_t b : all) squares += std::bit_cast<double>(b);
  }
  return std::sqrt(squares);
}

absl::Status PsServer::ApplyClock(const std::vector<std::vector<float>>& gradients,
                                  comm::Communicator* servers) {
  // In worker-rank order, one fp32 rounding per addition: the sum a
  // rank-ordered all-reduce of the same gradients gives.
  // Each push leads with its header: the window starts at element 1.
  std::copy(gradients[0].begin() + 1, gradients[0].end(), sum_.begin());
  for (size_t w = 1; w < gradients.size(); ++w) {
    const float* gradient = gradients[w].data() + 1;
    for (int64_t i = 0; i < window_.length; ++i) sum_[i] += gradient[i];
  }
  ops::AdamWOptions options = adamw_;
  options.step = first_step_ + version_ + 1;
  options.learning_rate = learning_rate_(first_step_ + version_);
  if (options_.grad_clip > 0) {
    ASSIGN_OR_RETURN(const double norm, GlobalNorm(servers));
    if (!std::isfinite(norm)) {
      return absl::InternalError(absl::StrCat("dp_sync=ps: clock ", version_ + 1,
                                              ": the gradient norm is ", norm,
                                              "; stopping rather than stepping"));
    }
    norms_.push_back(norm);
    options.grad_scale = ops::ClipCoefficient(norm, static_cast<float>(options_.grad_clip));
  }
  const ExecContext ctx = ExecContext::Cpu();
  int64_t offset = 0;
  for (const PsSegment& s : segments_) {
    ops::AdamWStep(ctx, View(values_.data() + offset, s.length), View(sum_.data() + offset, s.length),
                   View(exp_avg_.data() + offset, s.length),
                   View(exp_avg_sq_.data() + offset, s.length), options,
                   s.weight_decay ? ops::WeightDecay::kApply : ops::WeightDecay::kSkip);
    offset += s.length;
  }
  ++version_;
  return absl::OkStatus();
}

absl::Status PsServer::Serve(comm::Communicator& world, comm::Communicator* servers) {
  if (world.size() != options_.workers + options_.servers) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dp_sync=ps: world size=", world.size(), " must be workers + ps_servers = ",
        options_.workers, " + ", options_.servers));
  }
  const int workers = options_.workers;
  const int64_t steps = options_.steps;
  const int64_t length = window_.length + 1;  // A push: header, then window.
  std::vector<std::vector<float>> inbox(workers, std::vector<float>(length));
  std::vector<std::unique_ptr<comm::CommHandle>> recvs(workers);
  std::vector<int64_t> pushed(workers, 0);  // Gradients received from each worker.
  std::vector<int64_t> pulled(workers, 0);  // Parameter replies sent to each.
  // The clocks after which each worker stopped (-1: not stopped).
  std::vector<int64_t> stopped_after(workers, -1);
  int stopped = 0;
  int64_t stop_clock = 0;  // The clock every worker stopped after.
  bool stop_state_sent = false;
  // read_version[w][c]: the version worker w computed clock c on.
  std::vector<std::vector<int64_t>> read_version(workers, std::vector<int64_t>{0});
  std::map<int64_t, std::vector<std::vector<float>>> pending;  // By clock, by worker.
  std::map<int64_t, int> arrived;
  struct Reply {
    std::vector<float> snapshot;  // Owned until the send completes.
    std::unique_ptr<comm::CommHandle> send;
  };
  std::list<Reply> replies;
  // This version's state, to every worker (PsWorker::PullState).
  const auto send_state = [&] {
    for (int w = 0; w < workers; ++w) {
      for (const std::vector<float>* state : {&values_, &exp_avg_, &exp_avg_sq_}) {
        Reply& reply = replies.emplace_back();
        reply.snapshot = *state;
        reply.send = world.SendAsync(comm::MakeConstBuffer(absl::MakeConstSpan(reply.snapshot)),
                                     w, kPsStateTag);
      }
    }
  };
  const auto is_snapshot = [&](int64_t version) {
    return std::binary_search(snapshot_versions_.begin(), snapshot_versions_.end(), version);
  };
  const auto post = [&](int w) {
    recvs[w] = world.RecvAsync(comm::MakeBuffer(absl::MakeSpan(inbox[w])), w, kPsGradientTag);
  };
  for (int w = 0; w < workers; ++w) post(w);
  absl::Time last_progress = absl::Now();
  while (true) {
    bool progressed = false;
    // Gradients, in whatever order the workers are ready.
    for (int w = 0; w < workers; ++w) {
      if (recvs[w] == nullptr || !recvs[w]->Test()) continue;
      RETURN_IF_ERROR(recvs[w]->Wait());
      recvs[w].reset();
      progressed = true;
      if (inbox[w][0] == kPsPushStop) {
        // No receive is posted again: this worker pushes nothing more.
        stopped_after[w] = pushed[w];
        stop_clock = pushed[w];
        ++stopped;
        for (int v = 0; v < workers; ++v) {
          if (stopped_after[v] >= 0 ? stopped_after[v] != pushed[w] : pushed[v] > pushed[w]) {
            return absl::InternalError(absl::StrCat(
                "parameter server (", comm::DescribeGroup(world), "): worker ", w,
                " stopped after clock ", pushed[w], " but worker ", v, " pushed ", pushed[v],
                stopped_after[v] >= 0 ? " and stopped" : "",
                " (every worker must stop after the same clock)"));
          }
        }
        continue;
      }
      if (inbox[w][0] != kPsPushGradient) {
        return absl::InternalError(absl::StrCat("parameter server: worker ", w,
                                                "'s push has header ", inbox[w][0]));
      }
      if (stopped > 0 && pushed[w] >= stop_clock) {
        return absl::InternalError(absl::StrCat(
            "parameter server (", comm::DescribeGroup(world), "): worker ", w, " pushed clock ",
            pushed[w], " after another worker stopped after clock ", stop_clock,
            " (every worker must stop after the same clock)"));
      }
      const int64_t clock = pushed[w]++;
      std::vector<std::vector<float>>& slot = pending[clock];
      if (slot.empty()) slot.resize(workers);
      slot[w].swap(inbox[w]);
      inbox[w].resize(length);
      ++arrived[clock];
      if (pushed[w] < steps) post(w);
    }
    // Updates, clock by clock, once every worker's gradient is in.
    while (arrived.count(version_) > 0 && arrived[version_] == workers) {
      const int64_t clock = version_;
      RETURN_IF_ERROR(ApplyClock(pending[clock], servers));
      for (int w = 0; w < workers; ++w) {
        applied_.push_back({.worker = w, .clock = clock, .read_version = read_version[w][clock]});
      }
      if (is_snapshot(version_)) send_state();
      pending.erase(clock);
      arrived.erase(clock);
      progressed = true;
    }
    // Pulls: worker w waits for the parameters of its clock pushed[w].
    for (int w = 0; w < workers; ++w) {
      if (pulled[w] == pushed[w]) continue;
      const int64_t next = pushed[w];
      const bool allowed = next < steps ? version_ >= next - options_.staleness : version_ == steps;
      if (!allowed) continue;
      Reply& reply = replies.emplace_back();
      reply.snapshot = values_;
      reply.send = world.SendAsync(comm::MakeConstBuffer(absl::MakeConstSpan(reply.snapshot)), w,
                                   kPsValuesTag);
      read_version[w].push_back(version_);
      ++pulled[w];
      progressed = true;
    }
    for (auto it = replies.begin(); it != replies.end();) {
      if (!it->send->Test()) {
        ++it;
        continue;
      }
      RETURN_IF_ERROR(it->send->Wait());
      it = replies.erase(it);
    }
    // Every worker stopped after clock k: once version k is reached its
    // state goes out (unless it went out as a snapshot already).
    const bool all_stopped = stopped == workers;
    if (all_stopped && !stop_state_sent && version_ == stop_clock) {
      if (!is_snapshot(version_)) send_state();
      stop_state_sent = true;
      progressed = true;
    }
    bool done = replies.empty();
    if (all_stopped) {
      done = done && stop_state_sent;
    } else {
      for (int w = 0; w < workers; ++w) done = done && pulled[w] == steps;
    }
    if (done) return absl::OkStatus();
    if (progressed) {
      last_progress = absl::Now();
      continue;
    }
    if (absl::Now() - last_progress > world.timeout()) {
      std::vector<int> owing;
      for (int w = 0; w < workers; ++w) {
        if (pushed[w] < steps && stopped_after[w] < 0) owing.push_back(world.world_ranks()[w]);
      }
      return absl::DeadlineExceededError(absl::StrCat(
          "parameter server (", comm::DescribeGroup(world), ") heard nothing for ",
          absl::FormatDuration(world.timeout()), " at version ", version_,
          "; workers owing gradients, by world rank: ", absl::StrJoin(owing, ", ")));
    }
    for (auto& r : recvs) {
      if (r != nullptr) r->Progress();
    }
    absl::SleepFor(absl::Microseconds(20));
  }
}

namespace {

// PsStart's header: first_step, steps, snapshot count, segment count.
constexpr int kPsStartHeader = 4;

}  // namespace

absl::Status SendPsStart(comm::Communicator& world, const PsOptions& options,
                         const PsStart& start) {
  const int64_t elements = static_cast<int64_t>(start.values.size());
  int64_t covered = 0;
  for (const PsSegment& s : start.segments) covered += s.length;
  if (covered != elements || static_cast<int64_t>(start.exp_avg.size()) != elements ||
      static_cast<int64_t>(start.exp_avg_sq.size()) != elements) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SendPsStart: segments cover ", covered, " elements; values, moments hold ", elements,
        ", ", start.exp_avg.size(), ", ", start.exp_avg_sq.size()));
  }
  RETURN_IF_ERROR(ValidatePsOptions(options, elements, world.size()));
  const int64_t header[kPsStartHeader] = {start.first_step, start.steps,
                                          static_cast<int64_t>(start.snapshot_versions.size()),
                                          static_cast<int64_t>(start.segments.size())};
  std::vector<int64_t> lists(start.snapshot_versions.begin(), start.snapshot_versions.end());
  for (const PsSegment& s : start.segments) {
    lists.push_back(s.length);
    lists.push_back(s.weight_decay ? 1 : 0);
  }
  std::vector<comm::P2POp> ops;
  for (int j = 0; j < options.servers; ++j) {
    const PsWindow w = PsWindowOf(elements, options.servers, j);
    const int server_rank = options.workers + j;
    ops.push_back(comm::P2POp::Send(comm::ConstBuffer(header, kPsStartHeader, DType::kInt64),
                                    server_rank, kPsStartTag));
    ops.push_back(comm::P2POp::Send(
        comm::ConstBuffer(lists.data(), static_cast<int64_t>(lists.size()), DType::kInt64),
        server_rank, kPsStartTag));
    for (const std::vector<float>* v : {&start.values, &start.exp_avg, &start.exp_avg_sq}) {
      ops.push_back(comm::P2POp::Send(
          comm::MakeConstBuffer(absl::MakeConstSpan(*v).subspan(w.offset, w.length)), server_rank,
          kPsStartTag));
    }
  }
  return world.BatchSendRecv(ops);
}

absl::StatusOr<PsStart> ReceivePsStart(comm::Communicator& world, const PsOptions& options,
                                       int server) {
  int64_t header[kPsStartHeader] = {};
  RETURN_IF_ERROR(world.Recv(comm::Buffer{header, kPsStartHeader, DType::kInt64}, 0, kPsStartTag));
  PsStart start;
  start.first_step = header[0];
  start.steps = header[1];
  const int64_t snapshots = header[2];
  const int64_t segments = header[3];
  if (snapshots < 0 || segments < 1 || segments > (int64_t{1} << 30) ||
      snapshots > (int64_t{1} << 30)) {
    return absl::InvalidArgumentError(absl::StrCat("ReceivePsStart: a header of ", snapshots,
                                                   " snapshots and ", segments, " segments"));
  }
  std::vector<int64_t> lists(snapshots + 2 * segments);
  RETURN_IF_ERROR(world.Recv(
      comm::Buffer{lists.data(), static_cast<int64_t>(lists.size()), DType::kInt64}, 0,
      kPsStartTag));
  start.snapshot_versions.assign(lists.begin(), lists.begin() + snapshots);
  int64_t elements = 0;
  for (int64_t k = 0; k < segments; ++k) {
    const int64_t length = lists[snapshots + 2 * k];
    start.segments.push_back({.length = length, .weight_decay = lists[snapshots + 2 * k + 1] != 0});
    elements += length;
  }
  if (options.servers < 1 || server < 0 || server >= options.servers || elements < options.servers) {
    return absl::InvalidArgumentError(absl::StrCat("ReceivePsStart: server ", server, " of ",
                                                   options.servers, " over ", elements,
                                                   " elements"));
  }
  const PsWindow w = PsWindowOf(elements, options.servers, server);
  for (std::vector<float>* v : {&start.values, &start.exp_avg, &start.exp_avg_sq}) {
    v->resize(w.length);
    RETURN_IF_ERROR(world.Recv(comm::MakeBuffer(absl::MakeSpan(*v)), 0, kPsStartTag));
  }
  return start;
}

absl::Status PsWorker::PullState(comm::Communicator& world, absl::Span<float> values,
                                 absl::Span<float> exp_avg, absl::Span<float> exp_avg_sq) {
  if (static_cast<int64_t>(values.size()) != elements_ ||
      static_cast<int64_t>(exp_avg.size()) != elements_ ||
      static_cast<int64_t>(exp_avg_sq.size()) != elements_) {
    return absl::InvalidArgumentError(
        absl::StrCat("PullState: values and moments must hold ", elements_, " elements"));
  }
  std::vector<comm::P2POp> ops;
  for (int j = 0; j < options_.servers; ++j) {
    const PsWindow w = PsWindowOf(elements_, options_.servers, j);
    for (absl::Span<float> v : {values, exp_avg, exp_avg_sq}) {
      ops.push_back(comm::P2POp::Recv(comm::MakeBuffer(v.subspan(w.offset, w.length)),
                                      options_.workers + j, kPsStateTag));
    }
  }
  return world.BatchSendRecv(ops);
}

absl::StatusOr<PsWorker> PsWorker::Create(const PsOptions& options, int64_t elements) {
  RETURN_IF_ERROR(ValidatePsOptions(options, elements, options.workers + options.servers));
  PsWorker worker;
  worker.options_ = options;
  worker.elements_ = elements;
  worker.pushes_.resize(elements + options.servers);
  return worker;
}

absl::Status PsWorker::PushAndPull(comm::Communicator& world, absl::Span<const float> gradient,
                                   absl::Span<float> values) {
  if (static_cast<int64_t>(gradient.size()) != elements_ ||
      static_cast<int64_t>(values.size()) != elements_) {
    return absl::InvalidArgumentError(absl::StrCat("PushAndPull: gradient and values must hold ",
                                                   elements_, " elements, got ", gradient.size(),
                                                   " and ", values.size()));
  }
  if (stopped_) return absl::FailedPreconditionError("PushAndPull: this worker stopped");
  if (clock_ >= options_.steps) {
    return absl::FailedPreconditionError(
        absl::StrCat("PushAndPull: all ", options_.steps, " clocks already ran"));
  }
  RETURN_IF_ERROR(Push(world, kPsPushGradient, gradient, values));
  ++clock_;
  return absl::OkStatus();
}

absl::Status PsWorker::Stop(comm::Communicator& world) {
  if (stopped_) return absl::FailedPreconditionError("PsWorker::Stop: this worker stopped already");
  if (clock_ >= options_.steps) {
    return absl::FailedPreconditionError(absl::StrCat(
        "PsWorker::Stop: all ", options_.steps, " clocks ran; the servers are done"));
  }
  RETURN_IF_ERROR(Push(world, kPsPushStop, {}, {}));
  stopped_ = true;
  return absl::OkStatus();
}

absl::Status PsWorker::Push(comm::Communicator& world, float header,
                            absl::Span<const float> gradient, absl::Span<float> values) {
  std::vector<comm::P2POp> ops;
  for (int j = 0; j < options_.servers; ++j) {
    const PsWindow w = PsWindowOf(elements_, options_.servers, j);
    const int server_rank = options_.workers + j;
    // The header sits just before the window: pushes_ holds one more
    // element per server before it.
    const absl::Span<float> push = absl::MakeSpan(pushes_).subspan(w.offset + j, w.length + 1);
    push[0] = header;
    if (gradient.empty()) {
      std::fill(push.begin() + 1, push.end(), 0.0f);
    } else {
      std::copy_n(gradient.begin() + w.offset, w.length, push.begin() + 1);
    }
    ops.push_back(comm::P2POp::Send(comm::MakeConstBuffer(absl::Span<const float>(push)),
                                    server_rank, kPsGradientTag));
    if (!values.empty()) {
      ops.push_back(comm::P2POp::Recv(comm::MakeBuffer(values.subspan(w.offset, w.length)),
                                      server_rank, kPsValuesTag));
    }
  }
  return world.BatchSendRecv(ops);
}

}  // namespace trident::data_parallel

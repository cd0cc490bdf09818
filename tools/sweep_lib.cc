#include "tools/sweep_lib.h"

#include <algorithm>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/io/atomic_file.h"
#include "core/io/json_parse.h"
#include "core/status_macros.h"
#include "planning/planner.h"
#include "topology/layout_names.h"
#include "topology/layout_validation.h"
#include "training/pipeline_profile.h"
#include "training/train_config.h"
#include "training/trainer.h"

namespace trident::tools {
namespace {

using topology::ParallelLayout;
using topology::PipelineSchedule;
using topology::Recompute;
using training::TrainConfig;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::vector<int> Divisors(int n) {
  std::vector<int> out;
  for (int d = 1; d <= n; ++d) {
    if (n % d == 0) out.push_back(d);
  }
  return out;
}

std::string CandidateName(const ParallelLayout& l) {
  std::string name = absl::StrCat("tp", l.tensor_parallel(), "-pp", l.pipeline_parallel(), "-dp",
                                  l.data_parallel(), "-mbs", l.micro_batch_size(), "-",
                                  topology::ScheduleName(l.schedule()));
  if (l.schedule() == topology::INTERLEAVED_1F1B) {
    absl::StrAppend(&name, "-v", l.virtual_pipeline_stages());
  }
  if (l.sequence_parallel()) absl::StrAppend(&name, "-sp");
  absl::StrAppend(&name, "-z", l.zero_stage(), "-r", topology::RecomputeName(l.recompute()));
  if (l.gradient_compression() != topology::GradientCompression::NONE) {
    absl::StrAppend(&name, "-c", topology::CompressionName(l.gradient_compression()));
  }
  return name;
}

// The trainer's checks, in its order (training::Train); only the layout's
// when the candidate is planned, not run.
absl::Status CheckCandidate(TrainConfig* config, bool runnable) {
  RETURN_IF_ERROR(topology::DeriveMicroBatches(config->mutable_layout()));
  if (!runnable) {
    const ParallelLayout& l = config->layout();
    const absl::Status status = topology::ValidateLayout(
        l, l.tensor_parallel() * l.pipeline_parallel() * l.data_parallel(),
        training::ModelDimensionsFor(config->model(), config->data().seq_length()));
    // As training::ValidateTrainConfig words it.
    if (status.ok()) return status;
    return absl::Status(status.code(), absl::StrCat("layout: ", status.message()));
  }
  RETURN_IF_ERROR(training::ValidateTrainConfig(*config));
  training::TrainOptions options;
  options.config = *config;
  options.backend = "local";
  options.device = "cpu";
  return training::CheckSupported(options);
}

SweepRow RowFor(const Candidate& c) {
  SweepRow row;
  const ParallelLayout& l = c.config.layout();
  row.layout = c.name;
  row.tp = l.tensor_parallel();
  row.pp = l.pipeline_parallel();
  row.dp = l.data_parallel();
  row.micro_batch_size = l.micro_batch_size();
  row.num_micro_batches = c.status.ok() ? l.num_micro_batches() : 0;
  row.schedule = std::string(topology::ScheduleName(l.schedule()));
  row.virtual_stages = l.virtual_pipeline_stages();
  row.sequence_parallel = l.sequence_parallel();
  row.zero_stage = l.zero_stage();
  row.recompute = std::string(topology::RecomputeName(l.recompute()));
  return row;
}

// --- CSV -------------------------------------------------------------------

constexpr const char* kColumns[] = {
    "layout", "tp", "pp", "dp", "micro_batch_size", "num_micro_batches", "schedule",
    "virtual_stages", "sequence_parallel", "zero_stage", "recompute", "status", "reason",
    "predicted_step_s", "predicted_tokens_per_s", "predicted_memory_bytes", "measured_step_s",
    "measured_tokens_per_s", "measured_peak_memory_bytes", "predicted_makespan_s",
    "measured_makespan_s", "predicted_bubble", "measured_bubble",
    "predicted_comm_bytes", "measured_comm_bytes",
    "predicted_cpu_s", "measured_cpu_s"};
constexpr int kNumColumns = sizeof(kColumns) / sizeof(kColumns[0]);

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += "\"\"";
    else if (c == '\n') out += ' ';
    else out += c;
  }
  return out + "\"";
}

std::string Num(double v) { return std::isnan(v) ? "" : absl::StrFormat("%.6g", v); }

std::vector<std::string> SplitCsvLine(const std::string& line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  return fields;
}

absl::Status ParseInt(const std::string& s, int* out, int line) {
  if (!absl::SimpleAtoi(s, out)) {
    return absl::InvalidArgumentError(absl::StrCat("results.csv line ", line, ": '", s,
                                                   "' is not an integer"));
  }
  return absl::OkStatus();
}

absl::Status ParseNum(const std::string& s, double* out, int line) {
  if (s.empty()) {
    *out = kNaN;
    return absl::OkStatus();
  }
  if (!absl::SimpleAtod(s, out)) {
    return absl::InvalidArgumentError(absl::StrCat("results.csv line ", line, ": '", s,
                                                   "' is not a number"));
  }
  return absl::OkStatus();
}

// --- Measurement -----------------------------------------------------------

struct Measurement {
  double step_s = kNaN;
  double tokens_per_s = kNaN;
  double peak_memory_bytes = kNaN;
  double comm_bytes = kNaN;  // all ranks, the first step
  double cpu_s = kNaN;       // median cpu_time_ms after the first step, seconds
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t k = v.size();
  return k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
}

// The run's metrics JSONL (training/metrics.h); tokens/s is the global
// batch's tokens over the median step time.
absl::StatusOr<Measurement> ReadMetrics(const std::string& path, double tokens_per_step) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read metrics ", path));
  std::vector<double> step_ms, cpu_ms;
  double peak = kNaN, comm_bytes = kNaN;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    ASSIGN_OR_RETURN(nlohmann::ordered_json j, io::ParseJsonDocument(line));
    if (j.contains("loss") && j.contains("step_time_ms") && j["step_time_ms"].is_number()) {
      step_ms.push_back(j["step_time_ms"].get<double>());
      if (j.contains("cpu_time_ms") && j["cpu_time_ms"].is_number()) {
        cpu_ms.push_back(j["cpu_time_ms"].get<double>());
      }
    } else if (j.contains("rank") && j.contains("activation_peak_bytes")) {
      double total = 0;
      for (const char* key :
           {"param_bytes", "grad_bytes", "optimizer_state_bytes", "activation_peak_bytes"}) {
        if (j.contains(key) && j[key].is_number()) total += j[key].get<double>();
      }
      peak = std::isnan(peak) ? total : std::max(peak, total);
      if (j.contains("comm_bytes") && j["comm_bytes"].is_number()) {
        comm_bytes = (std::isnan(comm_bytes) ? 0 : comm_bytes) + j["comm_bytes"].get<double>();
      }
    }
  }
  if (step_ms.empty()) return absl::DataLossError(absl::StrCat(path, " has no step lines"));
  // The median over the steps after the first (the first pays for warm-up;
  // the median, not the mean, because this machine's cores are shared and a
  // step that lost its cores to another process says nothing of the layout).
  const size_t first = step_ms.size() > 1 ? 1 : 0;
  Measurement m;
  m.step_s = Median(std::vector<double>(step_ms.begin() + first, step_ms.end())) / 1000.0;
  m.tokens_per_s = tokens_per_step / m.step_s;
  m.peak_memory_bytes = peak;
  m.comm_bytes = comm_bytes;
  if (cpu_ms.size() == step_ms.size()) {
    m.cpu_s = Median(std::vector<double>(cpu_ms.begin() + first, cpu_ms.end())) / 1000.0;
  }
  return m;
}

// --- Runs ------------------------------------------------------------------

// training::Train on the local backend: the ranks are threads of this process.
absl::Status TrainInProcess(const TrainConfig& config, const std::string& run_prefix,
                            const SweepOptions& o) {
  training::TrainOptions options;
  options.config = config;
  options.backend = "local";
  options.metrics_out = run_prefix + ".jsonl";
  options.overwrite = true;
  options.threads = o.threads;
  std::ostringstream train_log;
  options.log = &train_log;
  return training::Train(options).status();
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// The last `max_chars` characters of the file's text, on one line.
std::string Tail(const std::string& path, size_t max_chars) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::string s = text.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  if (s.size() > max_chars) s = s.substr(s.size() - max_chars);
  for (char& c : s) {
    if (c == '\n') c = ' ';
  }
  return s;
}

// //tools:train under mpirun: one process per rank on this machine (as
// BUILD_NOTES.md runs MPI jobs: as root, oversubscribed, unbound), the
// candidate's config written to <run_prefix>.textproto, its output to
// <run_prefix>.log.
absl::Status TrainUnderMpirun(const TrainConfig& config, const std::string& run_prefix,
                              const SweepOptions& o) {
  const auto& l = config.layout();
  const int world = l.tensor_parallel() * l.pipeline_parallel() * l.data_parallel();
  RETURN_IF_ERROR(io::WriteFileAtomically(run_prefix + ".textproto",
                                          training::TrainConfigToText(config)));
  const std::string command = absl::StrCat(
      ShellQuote(o.mpirun), " --allow-run-as-root --oversubscribe --bind-to none -np ", world,
      " ", ShellQuote(o.train_binary), " --backend=mpi --config=",
      ShellQuote(run_prefix + ".textproto"), " --metrics_out=", ShellQuote(run_prefix + ".jsonl"),
      " --save= --overwrite", o.threads > 0 ? absl::StrCat(" --threads=", o.threads) : "",
      " > ", ShellQuote(run_prefix + ".log"), " 2>&1");
  const int rc = std::system(command.c_str());
  if (rc == 0) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat("mpirun exited with status ", WIFEXITED(rc) ? WEXITSTATUS(rc) : rc, ": ",
                   Tail(run_prefix + ".log", 300)));
}

struct Replay {
  double makespan_s = kNaN;
  double bubble = kNaN;  // the worst stage's
};

// The schedule replayed with its actions' measured durations
// (training::ProfilePipeline: one warm-up step, two profiled, the median
// makespan's; on the local backend whatever the sweep's backend: the replay is
// a property of the schedule and the actions' times).
absl::StatusOr<Replay> MeasuredReplay(const TrainConfig& config) {
  training::PipelineProfileOptions options;
  options.config = config;
  options.warmup_steps = 1;
  options.profile_steps = 2;
  ASSIGN_OR_RETURN(const training::PipelineProfile profile, training::ProfilePipeline(options));
  Replay replay;
  replay.makespan_s = profile.report.replay_makespan_s;
  replay.bubble = 0;
  for (const pipeline::StageBubble& stage : profile.report.replay) {
    replay.bubble = std::max(replay.bubble, stage.bubble_fraction);
  }
  return replay;
}

// The 1-minute load average; NaN when /proc/loadavg cannot be read.
double LoadAverage() {
  std::ifstream in("/proc/loadavg");
  double load = kNaN;
  if (!(in >> load)) return kNaN;
  return load;
}

int StatusGroup(const std::string& status) {
  if (status == "ok") return 0;
  if (status == "predicted" || status == "not_run") return 1;
  if (status == "over_budget") return 2;
  if (status == "failed") return 3;
  return 4;
}

double RankValue(const SweepRow& r) {
  const double v = r.status == "ok" ? r.measured_tokens_per_s : r.predicted_tokens_per_s;
  return std::isnan(v) ? -1 : v;
}

std::string XmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string Fmt(double v, const char* format = "%.4g") {
  return std::isnan(v) ? "-" : absl::StrFormat(format, v);
}

std::string MarkdownReport(const std::vector<SweepRow>& rows, const SweepSummary& s,
                           const SweepOptions& o) {
  std::string md = absl::StrCat("# Layout sweep: world ", o.space.world_size, ", global batch ",
                                o.space.global_batch_size, o.predict ? " (predicted only)" : "",
                                "\n\n");
  absl::StrAppend(&md, "| rank | layout | status | predicted tokens/s | measured tokens/s | "
                       "predicted step ms | measured step ms | predicted MB/rank | measured "
                       "peak MB/rank | predicted makespan ms | replayed makespan ms | "
                       "predicted bubble | replayed bubble | predicted MB sent/step | measured "
                       "MB sent/step | predicted CPU ms/step | measured CPU ms/step | reason |\n"
                       "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
                       "\n");
  int rank = 0;
  for (const SweepRow& r : rows) {
    std::string reason = r.reason;
    for (char& c : reason) {
      if (c == '|') c = '/';
    }
    absl::StrAppend(&md, "| ", ++rank, " | ", r.layout, " | ", r.status, " | ",
                    Fmt(r.predicted_tokens_per_s, "%.0f"), " | ",
                    Fmt(r.measured_tokens_per_s, "%.0f"), " | ",
                    Fmt(r.predicted_step_s * 1e3, "%.1f"), " | ",
                    Fmt(r.measured_step_s * 1e3, "%.1f"), " | ",
                    Fmt(r.predicted_memory_bytes / 1e6, "%.2f"), " | ",
                    Fmt(r.measured_peak_memory_bytes / 1e6, "%.2f"), " | ",
                    Fmt(r.predicted_makespan_s * 1e3, "%.1f"), " | ",
                    Fmt(r.measured_makespan_s * 1e3, "%.1f"), " | ",
                    Fmt(r.predicted_bubble, "%.3f"), " | ", Fmt(r.measured_bubble, "%.3f"), " | ",
                    Fmt(r.predicted_comm_bytes / 1e6, "%.3f"), " | ",
                    Fmt(r.measured_comm_bytes / 1e6, "%.3f"), " | ",
                    Fmt(r.predicted_cpu_s * 1e3, "%.1f"), " | ",
                    Fmt(r.measured_cpu_s * 1e3, "%.1f"), " | ", reason, " |\n");
  }
  absl::StrAppend(&md, "\nMeasured: the median step of ", o.steps,
                  " (the first excluded), ", o.backend, " backend; peak memory per rank after "
                  "step 1 (parameters, gradients, optimizer state, activation peak); the makespan "
                  "and the worst stage's bubble of the schedule replayed on its actions' "
                  "measured times (thread CPU time with one thread per rank: as if each rank "
                  "had a core of its own, unaffected by other load); "
                  "bytes sent: communication payload of one step, all ranks.\n");
  const auto percent = [](double v) {
    return std::isnan(v) ? std::string("-") : absl::StrFormat("%.1f%%", 100 * v);
  };
  if (!std::isnan(s.load_before)) {
    absl::StrAppend(&md, "\nThis machine's 1-minute load average: ", Fmt(s.load_before, "%.1f"),
                    " before the first run, ", Fmt(s.load_after, "%.1f"),
                    " after the last (", std::thread::hardware_concurrency(),
                    " cores): wall-clock steps include the time other processes took the "
                    "cores; the replayed makespans do not.\n");
  }
  absl::StrAppend(&md, "\nPrediction vs measurement over ", s.measured_pairs,
                  " measured layouts: Spearman rank correlation of tokens/s ",
                  Fmt(s.spearman, "%.3f"), ", median relative error of step time ",
                  percent(s.median_step_error),
                  "; of the replayed makespan (each rank on a device of its own): Spearman ",
                  Fmt(s.makespan_spearman, "%.3f"), ", median relative error ",
                  percent(s.median_makespan_error), "; of the CPU core-seconds per step: Spearman ",
                  Fmt(s.cpu_spearman, "%.3f"), ", median relative error ",
                  percent(s.median_cpu_error), ".\n");
  if (!s.best_layout.empty()) absl::StrAppend(&md, "\nBest layout: `", s.best_layout, "`.\n");
  return md;
}

std::string ChartSvg(const std::vector<SweepRow>& rows) {
  const int label_w = 330, bar_w = 520, row_h = 22, top = 40;
  double max_v = 1;
  for (const SweepRow& r : rows) {
    for (double v : {r.predicted_tokens_per_s, r.measured_tokens_per_s}) {
      if (!std::isnan(v)) max_v = std::max(max_v, v);
    }
  }
  const int height = top + row_h * static_cast<int>(rows.size()) + 20;
  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
      "font-family=\"monospace\" font-size=\"11\">\n<rect width=\"100%%\" height=\"100%%\" "
      "fill=\"white\"/>\n<text x=\"4\" y=\"16\" font-size=\"13\">Layouts ranked by tokens/s: "
      "<tspan fill=\"#3366cc\">measured</tspan>, <tspan fill=\"#aaaaaa\">predicted</tspan>, "
      "<tspan fill=\"#cc2222\">invalid / failed / over budget</tspan></text>\n",
      label_w + bar_w + 420, height);
  int i = 0;
  for (const SweepRow& r : rows) {
    const int y = top + row_h * i++;
    const bool bad = r.status == "invalid" || r.status == "failed" || r.status == "over_budget";
    absl::StrAppend(&svg, absl::StrFormat("<text x=\"4\" y=\"%d\"%s>%s</text>\n", y + 14,
                                          bad ? " fill=\"#cc2222\"" : "", XmlEscape(r.layout)));
    int x_end = label_w;
    if (!std::isnan(r.predicted_tokens_per_s)) {
      const int w = std::max(1, static_cast<int>(bar_w * r.predicted_tokens_per_s / max_v));
      absl::StrAppend(&svg, absl::StrFormat("<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"8\" "
                                            "fill=\"#aaaaaa\"%s/>\n",
                                            label_w, y + 2, w,
                                            bad ? " stroke=\"#cc2222\"" : ""));
      x_end = std::max(x_end, label_w + w);
    }
    if (!std::isnan(r.measured_tokens_per_s)) {
      const int w = std::max(1, static_cast<int>(bar_w * r.measured_tokens_per_s / max_v));
      absl::StrAppend(&svg, absl::StrFormat("<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"9\" "
                                            "fill=\"%s\"/>\n",
                                            label_w, y + 11, w, bad ? "#cc2222" : "#3366cc"));
      x_end = std::max(x_end, label_w + w);
    }
    std::string note = absl::StrCat(
        std::isnan(r.measured_tokens_per_s) ? Fmt(r.predicted_tokens_per_s, "%.0f")
                                            : Fmt(r.measured_tokens_per_s, "%.0f"));
    if (!std::isnan(r.measured_makespan_s)) {
      absl::StrAppend(&note, absl::StrFormat("  (makespan %.1f ms predicted, %.1f replayed)",
                                             1e3 * r.predicted_makespan_s,
                                             1e3 * r.measured_makespan_s));
    }
    if (bad) note = absl::StrCat(r.status, ": ", r.reason.substr(0, 90));
    absl::StrAppend(&svg, absl::StrFormat("<text x=\"%d\" y=\"%d\"%s>%s</text>\n", x_end + 4,
                                          y + 14, bad ? " fill=\"#cc2222\"" : "",
                                          XmlEscape(note)));
  }
  return svg + "</svg>\n";
}

}  // namespace

SweepRow::SweepRow()
    : predicted_step_s(kNaN),
      predicted_tokens_per_s(kNaN),
      predicted_memory_bytes(kNaN),
      measured_step_s(kNaN),
      measured_tokens_per_s(kNaN),
      measured_peak_memory_bytes(kNaN),
      predicted_makespan_s(kNaN),
      measured_makespan_s(kNaN),
      predicted_bubble(kNaN),
      measured_bubble(kNaN),
      predicted_comm_bytes(kNaN),
      measured_comm_bytes(kNaN),
      predicted_cpu_s(kNaN),
      measured_cpu_s(kNaN) {}

absl::StatusOr<std::vector<Candidate>> EnumerateLayouts(const TrainConfig& base,
                                                        const SweepSpace& space) {
  const int n = space.world_size, batch = space.global_batch_size;
  if (n < 1) return absl::InvalidArgumentError(absl::StrCat("--world_size=", n, " must be >= 1"));
  if (batch < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--global_batch_size=", batch, " must be >= 1"));
  }
  std::vector<int> zero = space.zero_stages;
  if (zero.empty()) zero.push_back(base.layout().zero_stage());
  for (int z : zero) {
    if (z < 0 || z > 3) {
      return absl::InvalidArgumentError(absl::StrCat("zero stage ", z, " is not in 0..3"));
    }
  }
  std::vector<Recompute::Policy> recompute = space.recompute;
  if (recompute.empty()) recompute.push_back(base.layout().recompute());
  std::vector<topology::GradientCompression::Method> compressions = space.compressions;
  if (compressions.empty()) compressions.push_back(base.layout().gradient_compression());
  const int layers = std::max(1, base.model().num_layers());
  for (auto [name, limit] : {std::pair<const char*, int>{"--max_tp", space.max_tp},
                             {"--max_pp", space.max_pp},
                             {"--max_dp", space.max_dp},
                             {"--max_micro_batch_size", space.max_micro_batch_size}}) {
    if (limit < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, "=", limit, " must be >= 0 (0: no limit)"));
    }
  }
  const auto within = [](int value, int limit) { return limit == 0 || value <= limit; };
  const auto schedule_wanted = [&space](PipelineSchedule schedule) {
    return space.schedules.empty() ||
           std::find(space.schedules.begin(), space.schedules.end(), schedule) !=
               space.schedules.end();
  };

  std::vector<Candidate> out;
  for (int tp : Divisors(n)) {
    if (!within(tp, space.max_tp)) continue;
    for (int pp : Divisors(n / tp)) {
      const int dp = n / tp / pp;
      if (!within(pp, space.max_pp) || !within(dp, space.max_dp)) continue;
      const std::vector<int> mbs_choices =
          batch % dp == 0 ? Divisors(batch / dp) : std::vector<int>{1};
      for (int mbs : mbs_choices) {
        if (!within(mbs, space.max_micro_batch_size)) continue;
        // One stage has no pipeline: every schedule runs it the same way.
        std::vector<std::pair<PipelineSchedule, int>> schedules;
        if (pp == 1) {
          schedules.push_back({topology::ONE_F_ONE_B, 1});
        } else {
          if (schedule_wanted(topology::GPIPE)) schedules.push_back({topology::GPIPE, 1});
          if (schedule_wanted(topology::ONE_F_ONE_B)) {
            schedules.push_back({topology::ONE_F_ONE_B, 1});
          }
          if (schedule_wanted(topology::INTERLEAVED_1F1B)) {
            for (int v = 2; v <= layers / pp; ++v) {
              schedules.push_back({topology::INTERLEAVED_1F1B, v});
            }
          }
          if (schedule_wanted(topology::ZERO_BUBBLE_H1)) {
            schedules.push_back({topology::ZERO_BUBBLE_H1, 1});
          }
        }
        for (const auto& [schedule, v] : schedules) {
          for (bool sp : tp > 1 ? std::vector<bool>{false, true} : std::vector<bool>{false}) {
            for (int z : zero) {
              for (Recompute::Policy r : recompute) {
                for (topology::GradientCompression::Method compression : compressions) {
                  Candidate c;
                  c.config = base;
                  ParallelLayout* l = c.config.mutable_layout();
                  l->set_tensor_parallel(tp);
                  l->set_pipeline_parallel(pp);
                  l->set_data_parallel(dp);
                  l->set_micro_batch_size(mbs);
                  l->clear_num_micro_batches();
                  l->set_global_batch_size(batch);
                  l->set_schedule(schedule);
                  l->set_virtual_pipeline_stages(v);
                  l->clear_layers_per_stage();
                  l->set_sequence_parallel(sp);
                  l->set_zero_stage(z);
                  l->set_recompute(r);
                  l->set_gradient_compression(compression);
                  c.name = CandidateName(*l);
                  c.status = CheckCandidate(&c.config, space.check_runnable);
                  out.push_back(std::move(c));
                }
              }
            }
          }
        }
      }
    }
  }
  return out;
}

void RankRows(std::vector<SweepRow>* rows) {
  std::stable_sort(rows->begin(), rows->end(), [](const SweepRow& a, const SweepRow& b) {
    const int ga = StatusGroup(a.status), gb = StatusGroup(b.status);
    if (ga != gb) return ga < gb;
    return RankValue(a) > RankValue(b);
  });
}

double SpearmanCorrelation(const std::vector<double>& x, const std::vector<double>& y) {
  const size_t n = x.size();
  if (n < 2 || y.size() != n) return kNaN;
  const auto ranks = [n](const std::vector<double>& v) {
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
    std::vector<double> r(n);
    for (size_t i = 0; i < n;) {
      size_t j = i;
      while (j + 1 < n && v[order[j + 1]] == v[order[i]]) ++j;
      for (size_t k = i; k <= j; ++k) r[order[k]] = (i + j) / 2.0 + 1;
      i = j + 1;
    }
    return r;
  };
  const std::vector<double> rx = ranks(x), ry = ranks(y);
  const double mx = std::accumulate(rx.begin(), rx.end(), 0.0) / n;
  const double my = std::accumulate(ry.begin(), ry.end(), 0.0) / n;
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < n; ++i) {
    sxy += (rx[i] - mx) * (ry[i] - my);
    sxx += (rx[i] - mx) * (rx[i] - mx);
    syy += (ry[i] - my) * (ry[i] - my);
  }
  if (sxx == 0 || syy == 0) return kNaN;
  return sxy / std::sqrt(sxx * syy);
}

std::string RowsToCsv(const std::vector<SweepRow>& rows) {
  std::string out = absl::StrJoin(kColumns, ",") + "\n";
  for (const SweepRow& r : rows) {
    const std::vector<std::string> f = {
        CsvField(r.layout), absl::StrCat(r.tp), absl::StrCat(r.pp), absl::StrCat(r.dp),
        absl::StrCat(r.micro_batch_size), absl::StrCat(r.num_micro_batches), r.schedule,
        absl::StrCat(r.virtual_stages), r.sequence_parallel ? "1" : "0",
        absl::StrCat(r.zero_stage), r.recompute, r.status, CsvField(r.reason),
        Num(r.predicted_step_s), Num(r.predicted_tokens_per_s), Num(r.predicted_memory_bytes),
        Num(r.measured_step_s), Num(r.measured_tokens_per_s),
        Num(r.measured_peak_memory_bytes), Num(r.predicted_makespan_s),
        Num(r.measured_makespan_s), Num(r.predicted_bubble), Num(r.measured_bubble),
        Num(r.predicted_comm_bytes), Num(r.measured_comm_bytes), Num(r.predicted_cpu_s),
        Num(r.measured_cpu_s)};
    absl::StrAppend(&out, absl::StrJoin(f, ","), "\n");
  }
  return out;
}

absl::StatusOr<std::vector<SweepRow>> RowsFromCsv(const std::string& text) {
  std::vector<SweepRow> rows;
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  if (lines.empty()) return rows;
  if (lines[0] != absl::StrJoin(kColumns, ",")) {
    return absl::InvalidArgumentError(
        "results.csv has another header than this sweep writes: use another --out_dir");
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    const int ln = static_cast<int>(i) + 1;
    const std::vector<std::string> f = SplitCsvLine(lines[i]);
    if (static_cast<int>(f.size()) != kNumColumns) {
      return absl::InvalidArgumentError(absl::StrCat("results.csv line ", ln, " has ", f.size(),
                                                     " fields, expected ", kNumColumns));
    }
    SweepRow r;
    r.layout = f[0];
    RETURN_IF_ERROR(ParseInt(f[1], &r.tp, ln));
    RETURN_IF_ERROR(ParseInt(f[2], &r.pp, ln));
    RETURN_IF_ERROR(ParseInt(f[3], &r.dp, ln));
    RETURN_IF_ERROR(ParseInt(f[4], &r.micro_batch_size, ln));
    RETURN_IF_ERROR(ParseInt(f[5], &r.num_micro_batches, ln));
    r.schedule = f[6];
    RETURN_IF_ERROR(ParseInt(f[7], &r.virtual_stages, ln));
    r.sequence_parallel = f[8] == "1";
    RETURN_IF_ERROR(ParseInt(f[9], &r.zero_stage, ln));
    r.recompute = f[10];
    r.status = f[11];
    r.reason = f[12];
    RETURN_IF_ERROR(ParseNum(f[13], &r.predicted_step_s, ln));
    RETURN_IF_ERROR(ParseNum(f[14], &r.predicted_tokens_per_s, ln));
    RETURN_IF_ERROR(ParseNum(f[15], &r.predicted_memory_bytes, ln));
    RETURN_IF_ERROR(ParseNum(f[16], &r.measured_step_s, ln));
    RETURN_IF_ERROR(ParseNum(f[17], &r.measured_tokens_per_s, ln));
    RETURN_IF_ERROR(ParseNum(f[18], &r.measured_peak_memory_bytes, ln));
    RETURN_IF_ERROR(ParseNum(f[19], &r.predicted_makespan_s, ln));
    RETURN_IF_ERROR(ParseNum(f[20], &r.measured_makespan_s, ln));
    RETURN_IF_ERROR(ParseNum(f[21], &r.predicted_bubble, ln));
    RETURN_IF_ERROR(ParseNum(f[22], &r.measured_bubble, ln));
    RETURN_IF_ERROR(ParseNum(f[23], &r.predicted_comm_bytes, ln));
    RETURN_IF_ERROR(ParseNum(f[24], &r.measured_comm_bytes, ln));
    RETURN_IF_ERROR(ParseNum(f[25], &r.predicted_cpu_s, ln));
    RETURN_IF_ERROR(ParseNum(f[26], &r.measured_cpu_s, ln));
    rows.push_back(std::move(r));
  }
  return rows;
}

absl::StatusOr<SweepSummary> RunSweep(const TrainConfig& base, const SweepOptions& o) {
  std::ostream& log = o.log != nullptr ? *o.log : std::cout;
  if (o.steps < 1) return absl::InvalidArgumentError(absl::StrCat("--steps=", o.steps, " must be >= 1"));
  if (o.out_dir.empty()) return absl::InvalidArgumentError("--out_dir must not be empty");
  if (o.backend != "local" && o.backend != "mpi") {
    return absl::InvalidArgumentError(
        absl::StrCat("--backend=", o.backend, " is not a sweep backend: use local or mpi"));
  }
  if (o.backend == "mpi" && !o.predict && o.train_binary.empty()) {
    return absl::InvalidArgumentError(
        "--backend=mpi needs --train_binary (the //tools:train binary mpirun starts)");
  }
  SweepSpace space = o.space;
  space.check_runnable = !o.predict;
  ASSIGN_OR_RETURN(std::vector<Candidate> candidates, EnumerateLayouts(base, space));
  std::error_code ec;
  std::filesystem::create_directories(o.out_dir + "/runs", ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("--out_dir=", o.out_dir, ": cannot create: ", ec.message()));
  }
  const std::string csv_path = o.out_dir + "/results.csv";

  // Resume: rows already in the CSV, by layout name.
  std::map<std::string, SweepRow> done;
  if (std::filesystem::exists(csv_path)) {
    std::ifstream in(csv_path);
    std::stringstream text;
    text << in.rdbuf();
    ASSIGN_OR_RETURN(std::vector<SweepRow> old, RowsFromCsv(text.str()));
    for (SweepRow& r : old) done[r.layout] = std::move(r);
  }
  std::set<std::string> names;
  for (const Candidate& c : candidates) names.insert(c.name);

  SweepSummary summary;
  std::map<std::string, SweepRow> rows;  // this sweep's layouts
  std::vector<const Candidate*> pending;
  for (const Candidate& c : candidates) {
    auto it = done.find(c.name);
    if (it != done.end() && (o.predict || it->second.status != "predicted")) {
      rows[c.name] = it->second;
      ++summary.skipped;
      continue;
    }
    pending.push_back(&c);
  }
  const auto write_csv = [&]() -> absl::Status {
    std::vector<SweepRow> all;
    for (const auto& [name, row] : rows) all.push_back(row);
    // Rows of other sweeps in the same file are kept.
    for (const auto& [name, row] : done) {
      if (!names.count(name)) all.push_back(row);
    }
    RankRows(&all);
    return io::WriteFileAtomically(csv_path, RowsToCsv(all));
  };

  // Validity and prediction for every layout still to do.
  std::vector<std::pair<const Candidate*, SweepRow>> runnable;
  for (const Candidate* c : pending) {
    SweepRow row = RowFor(*c);
    if (!c->status.ok()) {
      row.status = "invalid";
      row.reason = std::string(c->status.message());
      rows[c->name] = row;
      ++summary.evaluated;
      continue;
    }
    absl::StatusOr<planning::Plan> plan =
        planning::PlanStep(c->config, o.hardware, o.precision, o.threads);
    if (plan.ok()) {
      row.predicted_step_s = plan->step_time_s;
      row.predicted_tokens_per_s = plan->tokens_per_s;
      row.predicted_memory_bytes = plan->memory.total();
      row.predicted_bubble = plan->bubble_fraction;
      row.predicted_makespan_s = plan->pipeline_makespan_s;
      if (plan->busy_core_seconds > 0) row.predicted_cpu_s = plan->busy_core_seconds;
      row.predicted_comm_bytes = plan->comm_bytes_per_step;
      row.status = "predicted";
    } else {
      row.status = "failed";
      row.reason = absl::StrCat("planner: ", plan.status().message());
    }
    if (row.status == "predicted" && o.memory_budget_bytes > 0 &&
        row.predicted_memory_bytes > o.memory_budget_bytes) {
      row.status = "over_budget";
      row.reason = absl::StrFormat("predicted %.4g GB per rank exceeds the budget of %.4g GB",
                                   row.predicted_memory_bytes / 1e9, o.memory_budget_bytes / 1e9);
    }
    if (row.status == "predicted") {
      runnable.push_back({c, row});
    } else {
      rows[c->name] = row;
      ++summary.evaluated;
    }
  }
  std::stable_sort(runnable.begin(), runnable.end(), [](const auto& a, const auto& b) {
    return a.second.predicted_tokens_per_s > b.second.predicted_tokens_per_s;
  });
  // Layouts already measured count towards --top_n.
  int measured_before = 0;
  for (const auto& [name, row] : rows) {
    if (row.status == "ok" || row.status == "failed" ||
        (row.status == "over_budget" && !std::isnan(row.measured_step_s))) {
      ++measured_before;
    }
  }
  RETURN_IF_ERROR(write_csv());

  const int to_run = o.predict ? 0
                     : o.top_n > 0
                         ? std::max(0, std::min<int>(runnable.size(), o.top_n - measured_before))
                         : static_cast<int>(runnable.size());
  summary.load_before = to_run > 0 ? LoadAverage() : kNaN;
  const auto start = std::chrono::steady_clock::now();
  int ran = 0;
  for (auto& [c, row] : runnable) {
    ++summary.evaluated;
    if (o.predict || ran >= to_run) {
      if (!o.predict) {
        row.status = "not_run";
        row.reason = absl::StrCat("outside --top_n=", o.top_n, " of the prediction");
      }
      rows[c->name] = row;
      continue;
    }
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    log << absl::StrFormat("[%d/%d] %s%s\n", ran + 1, to_run, c->name,
                           ran > 0 ? absl::StrFormat("  (ETA %.0f s)",
                                                     elapsed / ran * (to_run - ran))
                                   : "");
    log.flush();
    ++ran;
    TrainConfig config = c->config;
    config.set_steps(o.steps);
    config.set_eval_interval(0);
    config.set_checkpoint_interval(0);
    const std::string run_prefix = absl::StrCat(o.out_dir, "/runs/", c->name);
    const absl::Status trained = o.backend == "mpi" ? TrainUnderMpirun(config, run_prefix, o)
                                                    : TrainInProcess(config, run_prefix, o);
    const double tokens_per_step =
        static_cast<double>(config.layout().global_batch_size()) * config.data().seq_length();
    absl::StatusOr<Measurement> m = trained.ok()
                                        ? ReadMetrics(run_prefix + ".jsonl", tokens_per_step)
                                        : absl::StatusOr<Measurement>(trained);
    if (m.ok()) {
      absl::StatusOr<Replay> replay = MeasuredReplay(config);
      if (replay.ok()) {
        row.measured_bubble = replay->bubble;
        row.measured_makespan_s = replay->makespan_s;
      } else {
        m = absl::Status(replay.status().code(),
                         absl::StrCat("pipeline profile: ", replay.status().message()));
      }
    }
    if (!m.ok()) {
      row.status = "failed";
      row.reason = std::string(m.status().message());
      log << "  failed: " << row.reason << "\n";
    } else {
      row.measured_step_s = m->step_s;
      row.measured_tokens_per_s = m->tokens_per_s;
      row.measured_peak_memory_bytes = m->peak_memory_bytes;
      row.measured_comm_bytes = m->comm_bytes;
      // Under MPI a process is one rank: its CPU time is not the job's.
      if (o.backend == "local") row.measured_cpu_s = m->cpu_s;
      row.status = "ok";
      row.reason.clear();
      if (o.memory_budget_bytes > 0 && m->peak_memory_bytes > o.memory_budget_bytes) {
        row.status = "over_budget";
        row.reason = absl::StrFormat("measured peak %.4g GB per rank exceeds the budget of %.4g GB",
                                     m->peak_memory_bytes / 1e9, o.memory_budget_bytes / 1e9);
      }
      log << absl::StrFormat("  %.0f tokens/s measured (%.0f predicted), step %.1f ms (%.1f "
                             "predicted), bubble %.3f (%.3f), %.4g MB communicated (%.4g)\n",
                             row.measured_tokens_per_s, row.predicted_tokens_per_s,
                             1e3 * row.measured_step_s, 1e3 * row.predicted_step_s,
                             row.measured_bubble, row.predicted_bubble,
                             row.measured_comm_bytes / 1e6, row.predicted_comm_bytes / 1e6);
    }
    rows[c->name] = row;
    RETURN_IF_ERROR(write_csv());
  }
  RETURN_IF_ERROR(write_csv());
  summary.load_after = to_run > 0 ? LoadAverage() : kNaN;

  // This sweep's rows, ranked; the statistics over the measured ones.
  for (const auto& [name, row] : rows) summary.rows.push_back(row);
  RankRows(&summary.rows);
  // Rank correlation (of the rates: 1 / time) and median relative error of
  // the times, over the rows where both sides are known.
  const auto compare = [&summary](double SweepRow::*predicted, double SweepRow::*measured,
                                  double* spearman, double* median_error) {
    std::vector<double> pred, meas, errors;
    for (const SweepRow& r : summary.rows) {
      if (std::isnan(r.*measured) || std::isnan(r.*predicted) || !(r.*measured > 0)) continue;
      pred.push_back(1 / r.*predicted);
      meas.push_back(1 / r.*measured);
      errors.push_back(std::abs(r.*predicted - r.*measured) / r.*measured);
    }
    *spearman = SpearmanCorrelation(pred, meas);
    *median_error = errors.empty() ? kNaN : Median(errors);
    return static_cast<int>(pred.size());
  };
  summary.measured_pairs = compare(&SweepRow::predicted_step_s, &SweepRow::measured_step_s,
                                   &summary.spearman, &summary.median_step_error);
  compare(&SweepRow::predicted_makespan_s, &SweepRow::measured_makespan_s,
          &summary.makespan_spearman, &summary.median_makespan_error);
  compare(&SweepRow::predicted_cpu_s, &SweepRow::measured_cpu_s, &summary.cpu_spearman,
          &summary.median_cpu_error);
  const std::string best_status = o.predict ? "predicted" : "ok";
  for (const SweepRow& r : summary.rows) {
    if (r.status == best_status) {
      summary.best_layout = r.layout;
      break;
    }
  }
  const std::string best_path = o.out_dir + "/best_layout.textproto";
  if (!summary.best_layout.empty()) {
    for (const Candidate& c : candidates) {
      if (c.name != summary.best_layout) continue;
      RETURN_IF_ERROR(io::WriteFileAtomically(
          best_path,
          absl::StrCat("# proto-file: training/train_config.proto\n"
                       "# proto-message: trident.training.TrainConfig\n"
                       "# The best layout of //tools:sweep (world ",
                       o.space.world_size, ", global batch ", o.space.global_batch_size, "): ",
                       c.name, "\n", training::TrainConfigToText(c.config))));
    }
  }
  RETURN_IF_ERROR(io::WriteFileAtomically(o.out_dir + "/results.md",
                                          MarkdownReport(summary.rows, summary, o)));
  RETURN_IF_ERROR(io::WriteFileAtomically(o.out_dir + "/chart.svg", ChartSvg(summary.rows)));
  return summary;
}

}  // namespace trident::tools

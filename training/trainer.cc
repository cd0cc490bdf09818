#include "training/trainer.h"

#include <time.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "core/exec_context.h"
#include "core/io/user_path.h"
#include "core/status_macros.h"
#include "core/tensor.h"
#include "core/comm/allreduce_algorithms.h"
#include "topology/grid_communicators.h"
#include "topology/layout_io.h"
#include "topology/layout_names.h"
#include "topology/layout_validation.h"
#include "topology/process_grid.h"
#include "training/accelerator.h"
#include "training/batch_geometry.h"
#include "training/checkpoint/checkpoint.h"
#include "training/checkpoint/checkpoint_series.h"
#include "training/compression_checkpoint.h"
#include "training/data/loader.h"
#include "training/data/prepare_data.h"
#include "training/data/token_file.h"
#include "training/deferred_step_reductions.h"
#include "training/device_peak.h"
#include "training/export.h"
#include "training/flops.h"
#include "training/launch.h"
#include "training/memory_estimate.h"
#include "training/metrics.h"
#include "training/parameter_server_ranks.h"
#include "training/run_files.h"
#include "training/run_reporter.h"
#include "training/loss_scaler.h"
#include "training/precision.h"
#include "training/reshard.h"
#include "training/step_runner.h"
#include "training/stop_signals.h"
#include "training/train_config.h"

namespace trident::training {
namespace {

using topology::ParallelLayout;

absl::Status Unsupported(absl::string_view field, absl::string_view value,
                         absl::string_view what) {
  return absl::UnimplementedError(
      absl::StrCat(field, "=", value, " is not supported yet: ", what));
}

// Where the token files are (after preparing them when allowed).
struct DataPaths {
  std::string train;
  std::string val;
};

std::string ParentDir(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

// Whether anything (a file, a directory, even a dangling link) is at `path`.
bool PathExists(const std::string& path) {
  std::error_code error;
  return std::filesystem::exists(std::filesystem::symlink_status(path, error));
}

// A missing token file: which one, why the trainer does not make it, and how
// to make it.
absl::Status MissingDataError(const TrainConfig& config, const DataPaths& paths,
                              bool train_exists, bool val_exists) {
  std::string missing;
  if (!train_exists) absl::StrAppend(&missing, "data.train_path ", paths.train);
  if (!train_exists && !val_exists) absl::StrAppend(&missing, " and ");
  if (!val_exists) absl::StrAppend(&missing, "data.val_path ", paths.val);
  const std::string prepare = absl::StrCat(
      "prepare both with //tools:prepare_data --input=TEXT --output_dir=",
      ParentDir(paths.train), " --tokenizer=", config.data().tokenizer());
  std::string why;
  if (train_exists || val_exists) {
    why = absl::StrCat("the other token file exists, and preparing from raw text would "
                       "overwrite it: restore the missing one, or ", prepare,
                       " into a new directory");
  } else if (!config.data().has_raw_text()) {
    why = absl::StrCat(prepare, ", or name data.raw_text in the config to have the trainer "
                                "prepare them when both are missing");
  } else {
    why = absl::StrCat("data.raw_text prepares only DIR/train.bin and DIR/val.bin of one "
                       "directory: ", prepare);
  }
  return absl::NotFoundError(absl::StrCat(missing, (train_exists || val_exists) ? " does" : " do",
                                          " not exist; ", why));
}

// Finds the token files. The trainer prepares them from the raw text only when
// the config names data.raw_text (the embedded default does) and neither file
// exists, so it never overwrites a token file nor fills a mistyped directory
// from the default text; otherwise a missing file is an error naming it.
absl::StatusOr<DataPaths> ResolveData(const TrainConfig& config, std::ostream& log) {
  const auto& data_config = config.data();
  DataPaths paths{io::ResolveUserPath(data_config.train_path()),
                  io::ResolveUserPath(data_config.val_path())};
  const bool train_exists = PathExists(paths.train);
  const bool val_exists = PathExists(paths.val);
  if (train_exists && val_exists) return paths;
  const bool one_directory = data::TrainTokenPath(ParentDir(paths.train)) == paths.train &&
                             data::ValTokenPath(ParentDir(paths.train)) == paths.val;
  if (train_exists || val_exists || !data_config.has_raw_text() || !one_directory) {
    return MissingDataError(config, paths, train_exists, val_exists);
  }
  data::PrepareDataOptions prepare;
  prepare.input = io::ResolveUserPath(data_config.raw_text());
  prepare.output_dir = ParentDir(paths.train);
  prepare.tokenizer = data_config.tokenizer();
  prepare.gpt2_dir = io::ResolveUserPath(data_config.gpt2_dir());
  prepare.val_fraction = data_config.val_fraction();
  log << "preparing " << prepare.output_dir << " from " << prepare.input << " ("
      << prepare.tokenizer << " tokenizer)\n";
  RETURN_IF_ERROR(data::PrepareData(prepare).status());
  return paths;
}

// Splits rows [n, seq + 1] of tokens into inputs [n, seq] and targets [n, seq].
void SplitRows(const std::vector<int32_t>& rows, int64_t n, int64_t seq, Tensor* inputs,
               Tensor* targets) {
  std::vector<int32_t> in(n * seq), out(n * seq);
  for (int64_t r = 0; r < n; ++r) {
    const int32_t* row = rows.data() + r * (seq + 1);
    std::copy(row, row + seq, in.begin() + r * seq);
    std::copy(row + 1, row + seq + 1, out.begin() + r * seq);
  }
  *inputs = Tensor::FromVector(in, {n, seq});
  *targets = Tensor::FromVector(out, {n, seq});
}

// What every rank of a job reads (fixed before the ranks start), and what
// global rank 0 hands back.
struct JobState {
  const TrainOptions* options = nullptr;
  int world_size = 1;  // The grid's: tp x pp x dp (under ps: the workers).
  int threads_per_rank = 1;
  MemoryEstimate memory;
  // --device=cuda: the GPU the (single) rank runs on, and how the header names
  // it; null on the CPU.
  std::unique_ptr<AcceleratorRank> device;
  std::string device_description;

  absl::Mutex mu;
  TrainResult result;
};

// The files of a run as every rank uses them: rank 0 resolves and checks
// them (training/run_files.h) before anything is trained and hands them to
// the others, with the verdict, so every rank fails alike and at once.
struct JobPaths {
  DataPaths data;
  std::string metrics;
  std::string save;         // where checkpoints go; empty: none
  std::string signal_save;  // where a stop signal saves: save, or the default
  std::string export_path;
  std::string resume;       // the checkpoint directory resumed from; empty: none
};

// An estimate of one checkpoint's bytes: fp32 parameters and AdamW's two
// moments (the tensor files add a few hundred bytes per tensor).
int64_t CheckpointBytes(const TrainConfig& config) {
  return 3 * 4 * GptParameterCount(config.model()) + (1 << 20);
}

// Rank 0: finds (or prepares) the token files, expands {run}, and checks
// every path of the run.
absl::StatusOr<JobPaths> PrepareJobPaths(const TrainOptions& options, std::ostream& log) {
  JobPaths paths;
  if (!options.convert_to.empty()) {
    // A conversion reads the checkpoint and writes one directory; the caller
    // (//tools:convert_checkpoint) has checked both.
    ASSIGN_OR_RETURN(paths.resume, checkpoint::ResolveResumeCheckpoint(options.resume_dir));
    paths.save = options.convert_to;
    return paths;
  }
  ASSIGN_OR_RETURN(paths.data, ResolveData(options.config, log));
  paths.metrics = options.metrics_out;
  paths.save = options.save_dir;
  paths.signal_save = options.save_dir.empty() ? options.signal_save_dir : options.save_dir;
  paths.export_path = options.export_path;
  if (!options.resume_dir.empty()) {
    ASSIGN_OR_RETURN(paths.resume, checkpoint::ResolveResumeCheckpoint(options.resume_dir));
  }
  ASSIGN_OR_RETURN(const std::string run_directory,
                   ExpandRunDirectory({&paths.metrics, &paths.save, &paths.signal_save,
                                       &paths.export_path}));
  if (!run_directory.empty()) log << "run directory " << run_directory << "\n";
  RunFiles files;
  files.inputs = {paths.data.train, paths.data.val};
  if (!options.config_path.empty()) files.inputs.push_back(options.config_path);
  files.metrics = paths.metrics;
  files.save = paths.signal_save;
  files.export_path = paths.export_path;
  files.resume = paths.resume;
  files.overwrite = options.overwrite;
  files.checkpoint_bytes = CheckpointBytes(options.config);
  files.export_bytes = paths.export_path.empty() ? 0 : 4 * GptParameterCount(options.config.model());
  RETURN_IF_ERROR(CheckRunFiles(files));
  return paths;
}

// Rank 0's JobPaths, or its error, on every rank.
absl::StatusOr<JobPaths> ShareJobPaths(comm::Communicator& world,
                                       const absl::StatusOr<JobPaths>& mine) {
  std::vector<std::string> fields;
  if (world.rank() == 0) {
    const JobPaths& p = mine.ok() ? *mine : JobPaths();
    fields = {absl::StrCat(static_cast<int>(mine.status().code())),
              std::string(mine.status().message()),
              p.data.train, p.data.val, p.metrics, p.save, p.signal_save, p.export_path,
              p.resume};
  }
  RETURN_IF_ERROR(BroadcastStrings(world, &fields));
  if (fields.size() != 9) return absl::InternalError("job paths: malformed broadcast");
  const auto code = static_cast<absl::StatusCode>(std::stoi(fields[0]));
  if (code != absl::StatusCode::kOk) return absl::Status(code, fields[1]);
  JobPaths paths;
  paths.data = {fields[2], fields[3]};
  paths.metrics = fields[4];
  paths.save = fields[5];
  paths.signal_save = fields[6];
  paths.export_path = fields[7];
  paths.resume = fields[8];
  return paths;
}

// One rank's part of the job.
class RankTrainer {
 public:
  // `world` is the grid's world: under dp_sync=ps the workers' communicator,
  // and `ps_world` the job's (workers and servers).
  RankTrainer(JobState& job, JobPaths paths, int rank, comm::Communicator& world,
              comm::Communicator* ps_world = nullptr)
      : job_(job),
        options_(*job.options),
        config_(options_.config),
        batch_(BatchGeometry::Of(config_)),
        paths_(std::move(paths)),
        data_(paths_.data),
        rank_(rank),
        world_(world),
        ps_world_(ps_world),
        ctx_(job.device != nullptr ? job.device->exec()
                                   : ExecContext::Cpu(job.threads_per_rank)) {}

  // The whole run, as the user sees it: set up, then train, evaluate and
  // save on schedule, and export at the end. A stop signal ends the loop
  // after the step it arrived in, with a checkpoint (under dp_sync=ps with
  // staleness S the workers agree on it S steps later; ps first ends the
  // servers' run there: StopParameterServers).
  absl::Status Run() {
    if (!options_.convert_to.empty()) return Convert();
    RETURN_IF_ERROR(Setup());
    for (int64_t step = first_step_; step < last_step_; ++step) {
      RETURN_IF_ERROR(TrainStep(step));
      // Under ps with staleness the step's reductions complete S steps
      // later; all of them before an evaluation or a checkpoint (where the
      // workers meet anyway) and at the end, so every line and note comes
      // in step order.
      int deferred_signal = 0;
      if (deferred_.has_value()) {
        ASSIGN_OR_RETURN(deferred_signal,
                         CompleteDeferredSteps(step, /*all=*/EvaluationDue(step) ||
                                                             CheckpointDue(step) ||
                                                             step + 1 == last_step_));
      }
      if (options_.after_step_for_testing) options_.after_step_for_testing(rank_, step);
      if (EvaluationDue(step)) RETURN_IF_ERROR(Evaluate(step + 1));
      if (CheckpointDue(step)) RETURN_IF_ERROR(SaveCheckpoint(paths_.save, step + 1));
      int signal_number = deferred_signal;
      if (!deferred_.has_value()) {
        ASSIGN_OR_RETURN(signal_number, AgreedStopSignal());
      }
      if (signal_number != 0 && ps_world_ != nullptr) RETURN_IF_ERROR(StopParameterServers(step));
      if (signal_number != 0) return StopForSignal(signal_number, step + 1);
    }
    // Under ps the servers sent their final state (a snapshot version): the
    // workers take it unless a checkpoint at the last step took it already.
    if (ps_world_ != nullptr && last_step_ > first_step_ && !CheckpointDue(last_step_ - 1)) {
      RETURN_IF_ERROR(runner_->PullParameterServerState(last_step_));
    }
    if (!paths_.export_path.empty()) RETURN_IF_ERROR(ExportModel());
    reporter_->Finish(last_checkpoint_, paths_.export_path);
    return Publish();
  }

 private:
  absl::Status Setup();
  absl::Status SetupModel();
  // TrainOptions::convert_to: load under this layout, write at once.
  absl::Status Convert();
  // Every rank: this job's state as the checkpoint directory `dir`
  // (BeginCheckpoint .. FinalizeCheckpoint, the manifest gathered to rank 0).
  absl::Status WriteCheckpoint(const std::string& dir, int64_t next_step,
                               const checkpoint::DataPosition& data_position,
                               const checkpoint::DataSet* data_set);
  absl::Status OpenData();
  // --device=cuda: the step's host tensor (inputs, targets) uploaded to the
  // rank's GPU on its stream; nothing on the CPU.
  absl::Status MoveToRankDevice(Tensor* tensor) const;
  std::string Header() const;
  absl::Status TrainStep(int64_t step);
  // Under ps with staleness: completes the deferred reductions due after
  // `step` (all pending ones when `all`), reports those steps, and returns
  // the largest stop signal any of them agreed on (0: none).
  absl::StatusOr<int> CompleteDeferredSteps(int64_t step, bool all);
  absl::Status ReportMemory();
  // The payload counters of this rank's grid communicators (comm::CommStats):
  // reset before the first step, read after it.
  void ResetCommStats();
  int64_t CommBytesSinceReset() const;
  absl::Status Evaluate(int64_t after_step);
  absl::Status SaveCheckpoint(const std::string& dir, int64_t next_step);
  absl::StatusOr<int> AgreedStopSignal();
  // dp_sync=ps, at a stop signal agreed after `step`: completes the deferred
  // steps (their lines come first) and, before the run's last step, ends the
  // servers' run after `step`, so that StopForSignal's checkpoint pulls
  // their state (after the last step they sent it as planned).
  absl::Status StopParameterServers(int64_t step);
  absl::Status StopForSignal(int signal_number, int64_t next_step);
  absl::Status LoadCheckpoint();
  // FP16: the loss scaler state a checkpoint carries (its meta).
  absl::Status RestoreLossScaler(const std::string& dir, const checkpoint::CheckpointMeta& meta);
  // The gradient compressors' state, restored or dropped as
  // PlanCompressionResume decides (with a logged line).
  absl::Status RestoreCompressionState(const std::string& dir,
                                       const checkpoint::CheckpointMeta& meta,
                                       const checkpoint::CheckpointMeta& current);
  // Every rank's manifest, in rank order (a collective over the world).
  absl::StatusOr<std::vector<std::vector<checkpoint::ParameterManifest>>> GatherManifests(
      const std::vector<checkpoint::ParameterManifest>& mine);
  absl::Status ExportModel();
  absl::Status Publish();

  bool EvaluationDue(int64_t step) const {
    return val_windows_.has_value() &&
           ((step + 1) % config_.eval_interval() == 0 || step + 1 == last_step_);
  }
  bool CheckpointDue(int64_t step) const {
    const int interval = config_.checkpoint_interval();
    return !paths_.save.empty() &&
           (step + 1 == last_step_ || (interval > 0 && (step + 1) % interval == 0));
  }
  bool reporting() const { return rank_ == 0; }
  std::ostream& log() const { return options_.log != nullptr ? *options_.log : std::cout; }

  JobState& job_;
  const TrainOptions& options_;
  const TrainConfig& config_;
  const BatchGeometry batch_;
  const JobPaths paths_;
  const DataPaths& data_;
  const int rank_;
  comm::Communicator& world_;
  comm::Communicator* const ps_world_;  // dp_sync=ps only
  const ExecContext ctx_;

  std::optional<topology::ProcessGrid> grid_;
  topology::GridCommunicators comms_;
  std::unique_ptr<StepRunner> runner_;
  std::optional<data::TrainBatches> batches_;
  std::optional<data::ValidationWindows> val_windows_;
  std::unique_ptr<RunReporter> reporter_;
  int64_t first_step_ = 0;
  int64_t last_step_ = 0;
  std::string last_checkpoint_;  // the newest checkpoint this run wrote
  // dp_sync=ps with staleness S > 0: the steps' loss sums and stop-signal
  // agreements, completed S steps after their step; and what those steps'
  // progress lines need besides the loss, in step order.
  std::optional<DeferredStepReductions> deferred_;
  struct UnreportedStep {
    int64_t step = 0;
    double seconds = 0;
    double lr = 0;
    double cpu_seconds = 0;
    RunReporter::GradientSyncFigures sync;
  };
  std::deque<UnreportedStep> unreported_;
  int dp_rank_ = 0;
};

absl::Status RankTrainer::SetupModel() {
  ASSIGN_OR_RETURN(topology::ProcessGrid grid,
                   topology::ProcessGrid::Create(config_.layout(), job_.world_size));
  grid_.emplace(std::move(grid));
  ASSIGN_OR_RETURN(comms_, topology::BuildGridCommunicators(*grid_, world_));
  dp_rank_ = grid_->CoordinatesOf(rank_).dp;
  ASSIGN_OR_RETURN(runner_, StepRunner::Create(config_, *grid_, rank_, comms_, ctx_, ps_world_));
  // The initial values went up with the allocator's synchronous copies, on
  // the device's default stream: done before the rank's stream reads them.
  if (job_.device != nullptr) RETURN_IF_ERROR(job_.device->WaitForDevice());
  return absl::OkStatus();
}

absl::Status RankTrainer::MoveToRankDevice(Tensor* tensor) const {
  if (job_.device == nullptr) return absl::OkStatus();
  ASSIGN_OR_RETURN(*tensor, job_.device->Upload(*tensor));
  return absl::OkStatus();
}

absl::Status RankTrainer::Convert() {
  RETURN_IF_ERROR(SetupModel());
  RETURN_IF_ERROR(LoadCheckpoint());
  ASSIGN_OR_RETURN(const checkpoint::CheckpointMeta source,
                   checkpoint::ReadCheckpointMeta(paths_.resume));
  RETURN_IF_ERROR(WriteCheckpoint(paths_.save, source.step(), source.data_position(),
                                  source.has_data_set() ? &source.data_set() : nullptr));
  if (!reporting()) return absl::OkStatus();
  absl::MutexLock lock(&job_.mu);
  job_.result.first_step = first_step_;
  job_.result.checkpoint = paths_.save;
  return absl::OkStatus();
}

absl::Status RankTrainer::Setup() {
  RETURN_IF_ERROR(SetupModel());
  RETURN_IF_ERROR(OpenData());
  if (!paths_.resume.empty()) RETURN_IF_ERROR(LoadCheckpoint());
  last_step_ = options_.stop_at_step > 0
                   ? std::min<int64_t>(options_.stop_at_step, config_.steps())
                   : config_.steps();
  if (ps_world_ != nullptr) {
    // The servers take their state from worker 0 (fresh or resumed) and send
    // it back after every step that writes a checkpoint, and after the last
    // step (a stop signal there saves it; otherwise the run's end pulls it).
    std::vector<int64_t> snapshot_versions;
    for (int64_t step = first_step_; step < last_step_; ++step) {
      if (CheckpointDue(step) || step + 1 == last_step_) {
        snapshot_versions.push_back(step + 1 - first_step_);
      }
    }
    RETURN_IF_ERROR(runner_->StartParameterServers(first_step_, last_step_ - first_step_,
                                                   std::move(snapshot_versions)));
    // With staleness the workers must not meet every step: the loss sum
    // and the stop-signal agreement are deferred by S steps.
    if (const int staleness = config_.layout().ps_staleness(); staleness > 0) {
      RETURN_IF_ERROR(runner_->SkipLossShare());
      deferred_.emplace(*comms_.dp, world_, staleness);
    }
  }

  RunReporterOptions report;
  if (reporting()) {
    report.log = &log();
    report.metrics_path = paths_.metrics;
  }
  report.resumed = first_step_ > 0;
  report.total_steps = config_.steps();
  report.log_interval = config_.log_interval();
  report.tokens_per_step = batch_.tokens_per_step();
  report.precision = std::string(PrecisionName(config_.precision()));
  report.flops_per_token = GptFlopsPerToken(config_.model(), batch_.seq_length);
  report.peak_flops = options_.peak_flops;
  ASSIGN_OR_RETURN(reporter_, RunReporter::Create(std::move(report)));
  reporter_->Note(Header());
  return absl::OkStatus();
}

// CPU time of this process so far, all threads (what the step's ranks used
// of the cores, however many other processes share them).
double ProcessCpuSeconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// What a checkpoint records of the training data.
checkpoint::DataSet DataSetOf(const data::TokenFile& file) {
  checkpoint::DataSet data_set;
  data_set.set_train_path(file.path());
  data_set.set_train_tokens(file.size());
  data_set.set_train_crc32c(file.payload_crc32c());
  return data_set;
}

// A token file whose ids the model's embedding cannot hold.
absl::Status CheckVocabulary(const data::TokenFile& file, const transformer::GptConfig& model) {
  if (file.vocab_size() <= model.vocab_size()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("data file ", file.path(), " has vocabulary ",
                                                 file.vocab_size(),
                                                 ", larger than model.vocab_size=",
                                                 model.vocab_size()));
}

absl::Status RankTrainer::OpenData() {
  const auto& model = config_.model();
  ASSIGN_OR_RETURN(data::TokenFile train_file, data::TokenFile::Open(data_.train));
  RETURN_IF_ERROR(CheckVocabulary(train_file, model));
  ASSIGN_OR_RETURN(data::TrainBatches batches,
                   data::TrainBatches::Create(std::move(train_file), batch_.global_rows(),
                                              batch_.seq_length,
                                              static_cast<uint64_t>(config_.seed())));
  batches_.emplace(std::move(batches));
  if (config_.eval_interval() > 0) {
    // Everything the first evaluation needs is checked here, before step 1.
    ASSIGN_OR_RETURN(data::TokenFile val_file, data::TokenFile::Open(data_.val));
    RETURN_IF_ERROR(CheckVocabulary(val_file, model));
    const int64_t rows = batch_.global_rows();
    const int64_t fit = data::ValidationWindows::WindowsThatFit(val_file.size(), batch_.seq_length);
    if (fit < rows) {
      return absl::InvalidArgumentError(absl::StrCat(
          "validation data ", data_.val, " has ", val_file.size(), " tokens: ", fit,
          " windows of seq_length+1=", batch_.seq_length + 1, " tokens, fewer than one global "
          "batch of ", rows, " windows (needs at least ", rows * batch_.seq_length + 1,
          " tokens; or set eval_interval=0 to turn validation off)"));
    }
    // Whole global batches of windows, up to eval_batches of them.
    const int64_t windows = std::min<int64_t>(fit / rows, config_.eval_batches()) * rows;
    ASSIGN_OR_RETURN(data::ValidationWindows validation,
                     data::ValidationWindows::Create(std::move(val_file), batch_.seq_length,
                                                     windows));
    val_windows_.emplace(std::move(validation));
  }
  return absl::OkStatus();
}

std::string RankTrainer::Header() const {
  const auto& model = config_.model();
  std::string header = absl::StrCat(
      grid_->Describe(), "\nmodel: ", GptParameterCount(model), " parameters, ",
      model.num_layers(), " layers, hidden ", model.hidden_size(), ", ", model.num_heads(),
      " heads, vocabulary ", model.vocab_size(), " (padded to ",
      topology::PaddedVocabSize(model.vocab_size(), config_.layout().tensor_parallel()),
      "); global batch ", batch_.global_rows(), " x ", batch_.seq_length, " tokens");
  absl::StrAppendFormat(&header,
                        "\nmemory: about %.1f MB per rank (parameters %.1f, gradients %.1f, "
                        "optimizer state %.1f, activations %.1f; estimated)",
                        job_.memory.total() / 1e6, job_.memory.parameter_bytes / 1e6,
                        job_.memory.gradient_bytes / 1e6, job_.memory.optimizer_state_bytes / 1e6,
                        job_.memory.activation_bytes / 1e6);
  const topology::ParallelLayout& layout = config_.layout();
  if (ps_world_ != nullptr) {
    absl::StrAppend(&header, "\nparameter servers: ", layout.ps_servers(), " (ranks ",
                    job_.world_size, "-", job_.world_size + layout.ps_servers() - 1,
                    "), staleness ", layout.ps_staleness(), "; the ", job_.world_size,
                    " ranks above are the workers");
    if (layout.ps_staleness() > 0) {
      absl::StrAppend(&header, "; with no barrier among them, a step's line follows up to ",
                      layout.ps_staleness(), " steps later");
    }
  }
  absl::StrAppend(&header, "\nthreads: ", job_.threads_per_rank, " per rank (", AvailableCores(),
                  " cores available to this process; ", options_.backend, " backend, ",
                  JobWorldSize(layout), " ranks)");
  if (!job_.device_description.empty()) {
    absl::StrAppend(&header, "\ndevice: ", job_.device_description);
  }
  if (options_.peak_flops > 0) {
    absl::StrAppendFormat(&header, "\nmfu: model FLOPs over %.3g TFLOP/s (%s)",
                          options_.peak_flops / 1e12, options_.peak_source);
  }
  if (first_step_ > 0) {
    absl::StrAppend(&header, "\nresumed from ", paths_.resume, " at step ", first_step_);
  }
  return header;
}

absl::Status RankTrainer::TrainStep(int64_t step) {
  // This replica's rows of the global batch; the stage model cuts them into
  // micro-batches.
  ASSIGN_OR_RETURN(const std::vector<int32_t> tokens,
                   batches_->Rows(step, batch_.ReplicaRows(dp_rank_)));
  Tensor inputs, targets;
  SplitRows(tokens, batch_.replica_rows(), batch_.seq_length, &inputs, &targets);
  RETURN_IF_ERROR(MoveToRankDevice(&inputs));
  RETURN_IF_ERROR(MoveToRankDevice(&targets));
  comm::Communicator& dp = *comms_.dp;
  if (step == first_step_) ResetCommStats();
  dp.ResetStats();
  if (ps_world_ != nullptr) ps_world_->ResetStats();
  const double cpu_before = ProcessCpuSeconds();
  Stopwatch watch;
  ASSIGN_OR_RETURN(const StepResult result,
                   runner_->TrainStep(step, inputs, targets, batch_.tokens_per_step()));
  // On a GPU the step's last kernels (AdamW) may still run: the step's time
  // includes them.
  if (job_.device != nullptr) RETURN_IF_ERROR(job_.device->WaitForDevice());
  const double seconds = watch.ElapsedSeconds();
  const double cpu_seconds = ProcessCpuSeconds() - cpu_before;
  if (step == first_step_) RETURN_IF_ERROR(ReportMemory());
  // Started before the payload is read, so the loss all-gather counts in
  // dp_bytes_sent as the blocking one does.
  if (deferred_.has_value()) {
    deferred_->Start(step, result.replica_loss_sum, StopSignals::Received());
  }
  RunReporter::GradientSyncFigures sync;
  if (dp.size() > 1 || ps_world_ != nullptr) {
    // Under ps a worker's gradient goes to the servers (point to point on
    // the job's world); the loss all-gather still runs over dp.
    sync.dp_bytes_sent = comm::RingEquivalentBytesSent(dp.stats(), dp.size());
    if (ps_world_ != nullptr) *sync.dp_bytes_sent += ps_world_->stats().bytes_of(comm::CommOp::kSend);
  }
  const auto& topk_k = runner_->gradient_reducer().gradient_sync().topk_k();
  if (!topk_k.empty()) {
    sync.topk_k = 0;
    for (const auto& [bucket, k] : topk_k) *sync.topk_k += k;
  }
  std::optional<LossScaleReport> loss_scale;
  if (runner_->loss_scaler() != nullptr) {
    loss_scale = LossScaleReport{.scale = result.loss_scale,
                                 .skipped = result.skipped,
                                 .skipped_steps = result.skipped_steps};
  }
  if (deferred_.has_value()) {
    unreported_.push_back({.step = step,
                           .seconds = seconds,
                           .lr = result.lr,
                           .cpu_seconds = cpu_seconds,
                           .sync = sync});
    return absl::OkStatus();
  }
  // Under ps the norm is the servers' (they clip); the workers do not know it.
  const std::optional<double> grad_norm =
      ps_world_ != nullptr ? std::nullopt : std::optional<double>(result.grad_norm);
  return reporter_->Step(step, seconds, result.loss, result.lr, grad_norm, cpu_seconds,
                         sync, loss_scale);
}

absl::StatusOr<int> RankTrainer::CompleteDeferredSteps(int64_t step, bool all) {
  ASSIGN_OR_RETURN(const std::vector<DeferredStepReductions::Completed> completed,
                   all ? deferred_->CompleteAll() : deferred_->CompleteDue(step));
  int signal_number = 0;
  for (const DeferredStepReductions::Completed& c : completed) {
    if (unreported_.empty() || unreported_.front().step != c.step) {
      return absl::InternalError(absl::StrCat("step ", c.step + 1,
                                              "'s reductions completed out of order"));
    }
    const UnreportedStep s = unreported_.front();
    unreported_.pop_front();
    // Under ps the norm is the servers' (they clip); the workers do not know it.
    RETURN_IF_ERROR(reporter_->Step(s.step, s.seconds, c.loss_sum / batch_.tokens_per_step(),
                                    s.lr, std::nullopt, s.cpu_seconds, s.sync));
    signal_number = std::max(signal_number, c.stop_signal);
  }
  return signal_number;
}

void RankTrainer::ResetCommStats() {
  for (comm::Communicator* c : {comms_.tp.get(), comms_.pp.get(), comms_.dp.get(),
                                comms_.model_parallel.get(), comms_.embedding.get(), ps_world_}) {
    if (c != nullptr) c->ResetStats();
  }
}

int64_t RankTrainer::CommBytesSinceReset() const {
  int64_t bytes = 0;
  for (const comm::Communicator* c : {comms_.tp.get(), comms_.pp.get(), comms_.dp.get(),
                                      comms_.model_parallel.get(), comms_.embedding.get(),
                                      ps_world_}) {
    if (c == nullptr) continue;
    for (int64_t b : c->stats().bytes) bytes += b;
  }
  return bytes;
}

absl::Status RankTrainer::ReportMemory() {
  // Every rank's measured memory and the first step's communication payload,
  // gathered to all (five int64 per rank).
  const RankMemory mine = runner_->MemoryInUse();
  constexpr int kFields = 5;
  const int64_t fields[kFields] = {mine.param_bytes, mine.grad_bytes,
                                   mine.optimizer_state_bytes, mine.activation_peak_bytes,
                                   CommBytesSinceReset()};
  std::vector<int64_t> all(kFields * world_.size());
  RETURN_IF_ERROR(world_.AllGather(comm::ConstBuffer(fields, kFields, DType::kInt64),
                                   comm::Buffer{all.data(), static_cast<int64_t>(all.size()),
                                                DType::kInt64}));
  std::vector<MemoryMetrics> ranks(world_.size());
  for (int r = 0; r < world_.size(); ++r) {
    const int64_t* f = &all[kFields * r];
    ranks[r] = {r, f[0], f[1], f[2], f[3], f[4]};
  }
  return reporter_->Memory(ranks, job_.memory.total());
}

absl::Status RankTrainer::Evaluate(int64_t after_step) {
  // OpenData made the windows whole global batches, at least one.
  const int64_t batches = val_windows_->num_windows() / batch_.global_rows();
  double loss_sum = 0;
  for (int64_t b = 0; b < batches; ++b) {
    std::vector<int32_t> tokens(batch_.replica_rows() * (batch_.seq_length + 1));
    RETURN_IF_ERROR(val_windows_->FillWindows(batch_.ReplicaRows(dp_rank_, b),
                                              absl::MakeSpan(tokens)));
    Tensor inputs, targets;
    SplitRows(tokens, batch_.replica_rows(), batch_.seq_length, &inputs, &targets);
    RETURN_IF_ERROR(MoveToRankDevice(&inputs));
    RETURN_IF_ERROR(MoveToRankDevice(&targets));
    ASSIGN_OR_RETURN(const double batch_loss, runner_->EvaluateLossSum(inputs, targets));
    loss_sum += batch_loss;
  }
  return reporter_->Validation(
      after_step, loss_sum / static_cast<double>(batches * batch_.tokens_per_step()));
}

absl::Status RankTrainer::SaveCheckpoint(const std::string& root, int64_t next_step) {
  // One checkpoint per save under the save directory; `latest` names the
  // newest complete one (training/checkpoint/checkpoint_series.h).
  const std::string dir = checkpoint::StepCheckpointDir(root, next_step);
  if (reporting()) RETURN_IF_ERROR(checkpoint::CreateSaveDirectory(root));
  const data::DataPosition position = batches_->Position(next_step);
  checkpoint::DataPosition data_position;
  data_position.set_seed(position.seed);
  data_position.set_step(position.step);
  const checkpoint::DataSet data_set = DataSetOf(batches_->file());
  // Under ps the values and moments are the servers': every worker pulls
  // them into its optimizer, which then writes as a sync rank's does.
  if (ps_world_ != nullptr) RETURN_IF_ERROR(runner_->PullParameterServerState(next_step));
  RETURN_IF_ERROR(WriteCheckpoint(dir, next_step, data_position, &data_set));
  if (reporting()) {
    RETURN_IF_ERROR(checkpoint::SetLatestCheckpoint(root, next_step));
    RETURN_IF_ERROR(checkpoint::PruneCheckpoints(root, options_.keep_last));
    reporter_->Note(absl::StrCat("saved checkpoint ", dir, " (step ", next_step, ")"));
  }
  last_checkpoint_ = dir;
  return world_.Barrier();
}

absl::Status RankTrainer::WriteCheckpoint(const std::string& dir, int64_t next_step,
                                          const checkpoint::DataPosition& data_position,
                                          const checkpoint::DataSet* data_set) {
  if (reporting()) RETURN_IF_ERROR(checkpoint::BeginCheckpoint(dir).status());
  RETURN_IF_ERROR(world_.Barrier());
  std::vector<checkpoint::TensorBlob> blobs;
  runner_->optimizer().AppendStateBlobs(blobs);
  // The manifest: which global windows this rank's tensors hold, gathered to
  // rank 0 for the meta file (format version 3, training/reshard.h).
  ASSIGN_OR_RETURN(std::vector<checkpoint::ParameterManifest> manifest,
                   LocalManifest(runner_->optimizer().params(), blobs,
                                 checkpoint::RankFileName(rank_)));
  ASSIGN_OR_RETURN(std::vector<std::vector<checkpoint::ParameterManifest>> manifests,
                   GatherManifests(manifest));
  // Outside the manifest, this rank's own: the gradient compressors' state.
  const CompressionStateBlobs compression(runner_->gradient_reducer().ExportSyncState());
  compression.AppendTo(blobs);
  RETURN_IF_ERROR(checkpoint::WriteRankShard(checkpoint::PartialCheckpointDir(dir), rank_, blobs));
  RETURN_IF_ERROR(world_.Barrier());
  if (reporting()) {
    checkpoint::CheckpointMeta meta =
        checkpoint::MakeCheckpointMeta(config_, job_.world_size, next_step, data_position);
    if (data_set != nullptr) *meta.mutable_data_set() = *data_set;
    RETURN_IF_ERROR(MergeManifests(manifests, &meta));
    meta.set_optimizer_step(runner_->optimizer().step());
    if (KeepsCompressionState(config_.layout()) && !compression.empty()) {
      meta.set_holds_compression_state(true);
      meta.set_tp_replicated_buckets_apart(true);
    }
    if (const LossScaler* scaler = runner_->loss_scaler(); scaler != nullptr) {
      const LossScaler::State state = scaler->state();
      checkpoint::LossScalerState* saved = meta.mutable_loss_scaler();
      saved->set_scale(state.scale);
      saved->set_clean_steps(state.clean_steps);
      saved->set_hysteresis_left(state.hysteresis_left);
      saved->set_skipped_steps(state.skipped_steps);
    }
    RETURN_IF_ERROR(checkpoint::FinalizeCheckpoint(dir, meta));
  }
  return world_.Barrier();
}

absl::StatusOr<std::vector<std::vector<checkpoint::ParameterManifest>>>
RankTrainer::GatherManifests(const std::vector<checkpoint::ParameterManifest>& mine) {
  checkpoint::CheckpointMeta wrapper;
  for (const checkpoint::ParameterManifest& p : mine) *wrapper.add_parameters() = p;
  const std::string bytes = wrapper.SerializeAsString();
  const int n = world_.size();
  const int64_t length = static_cast<int64_t>(bytes.size());
  std::vector<int64_t> lengths(n);
  RETURN_IF_ERROR(world_.AllGather(comm::ConstBuffer(&length, 1, DType::kInt64),
                                   comm::Buffer{lengths.data(), n, DType::kInt64}));
  const int64_t words = (*std::max_element(lengths.begin(), lengths.end()) + 3) / 4;
  std::vector<int32_t> padded(words, 0);
  std::memcpy(padded.data(), bytes.data(), bytes.size());
  std::vector<int32_t> all(words * n);
  RETURN_IF_ERROR(world_.AllGather(comm::ConstBuffer(padded.data(), words, DType::kInt32),
                                   comm::Buffer{all.data(), words * n, DType::kInt32}));
  std::vector<std::vector<checkpoint::ParameterManifest>> result(n);
  for (int r = 0; r < n; ++r) {
    checkpoint::CheckpointMeta parsed;
    if (!parsed.ParseFromArray(reinterpret_cast<const char*>(all.data() + r * words),
                               static_cast<int>(lengths[r]))) {
      return absl::InternalError(absl::StrCat("rank ", r, "'s checkpoint manifest is garbled"));
    }
    result[r].assign(parsed.parameters().begin(), parsed.parameters().end());
  }
  return result;
}

absl::Status RankTrainer::LoadCheckpoint() {
  const std::string& dir = paths_.resume;
  if (reporting()) RETURN_IF_ERROR(checkpoint::RecoverCheckpoint(dir));
  RETURN_IF_ERROR(world_.Barrier());
  ASSIGN_OR_RETURN(checkpoint::CheckpointMeta meta, checkpoint::ReadCheckpointMeta(dir));
  // Format version 3 carries the manifest: any layout of the same model,
  // sequence length and global batch resumes it, each rank reading the windows
  // it needs. Version 2 holds per-rank shards only: the same layout and world
  // size are needed.
  const checkpoint::CheckpointMeta current =
      checkpoint::MakeCheckpointMeta(config_, job_.world_size, 0, {});
  const bool manifest = meta.format_version() >= 3;
  if (manifest) {
    RETURN_IF_ERROR(checkpoint::CheckReshardCompatible(dir, meta, current));
  } else {
    RETURN_IF_ERROR(checkpoint::CheckResumeCompatible(dir, meta, current));
  }
  if (meta.seed() != static_cast<uint64_t>(config_.seed())) {
    return absl::InvalidArgumentError(absl::StrCat("checkpoint ", dir, " was trained with seed ",
                                                   meta.seed(), ", this job has seed ",
                                                   config_.seed()));
  }
  if (meta.step() > config_.steps()) {
    return absl::InvalidArgumentError(absl::StrCat("checkpoint ", dir, " is at step ",
                                                   meta.step(), ", beyond steps=",
                                                   config_.steps()));
  }
  // A conversion (no token file opened) keeps the checkpoint's data set.
  if (batches_.has_value()) {
    RETURN_IF_ERROR(checkpoint::CheckSameData(dir, meta, DataSetOf(batches_->file()),
                                              options_.allow_different_data));
  }
  if (batches_.has_value() && options_.allow_different_data && reporting() && meta.has_data_set() &&
      !checkpoint::CheckSameData(dir, meta, DataSetOf(batches_->file()), false).ok()) {
    log() << "resuming on other data than " << meta.data_set().train_path()
          << " (--allow_different_data)\n";
  }
  // Copies that may differ per rank (local SGD, gossip, lossy compression
  // under tp) come from each rank's own file.
  ASSIGN_OR_RETURN(const bool own_files, ResumeFromOwnRankFiles(dir, meta, current));
  if (!manifest || own_files) {
    ASSIGN_OR_RETURN(checkpoint::TensorSet tensors, checkpoint::ReadRankShard(dir, rank_));
    RETURN_IF_ERROR(checkpoint::CheckStoredStep(dir, meta, tensors, AdamW::kStepName));
    RETURN_IF_ERROR(runner_->optimizer().LoadState(tensors));
    RETURN_IF_ERROR(runner_->ShareRestoredValues());
    RETURN_IF_ERROR(RestoreLossScaler(dir, meta));
    RETURN_IF_ERROR(RestoreCompressionState(dir, meta, current));
    first_step_ = meta.step();
    return absl::OkStatus();
  }
  const std::string from = DescribeLayout(meta);
  const std::string to = DescribeLayout(current);
  if (reporting() && (from != to || meta.world_size() != job_.world_size)) {
    log() << "resharding checkpoint " << dir << " from " << meta.world_size() << " ranks ("
          << from << ") to " << job_.world_size << " ranks (" << to << ")\n";
  }
  // What this rank's optimizer would write is what it must read.
  std::vector<checkpoint::TensorBlob> wanted;
  runner_->optimizer().AppendStateBlobs(wanted);
  absl::StatusOr<checkpoint::TensorSet> tensors =
      ReadWindows(dir, meta, runner_->optimizer().params(), wanted,
                  config_.model().vocab_size(), rank_, job_.world_size);
  // A rank that refuses returns its error, which aborts the world (the
  // other ranks' collectives fail at once); no rank loads before every rank
  // has checked its part.
  if (!tensors.ok()) return tensors.status();
  RETURN_IF_ERROR(world_.Barrier());
  RETURN_IF_ERROR(runner_->optimizer().LoadState(*tensors));
  RETURN_IF_ERROR(runner_->ShareRestoredValues());
  RETURN_IF_ERROR(RestoreLossScaler(dir, meta));
  RETURN_IF_ERROR(RestoreCompressionState(dir, meta, current));
  first_step_ = meta.step();
  return absl::OkStatus();
}

absl::Status RankTrainer::RestoreCompressionState(const std::string& dir,
                                                  const checkpoint::CheckpointMeta& meta,
                                                  const checkpoint::CheckpointMeta& current) {
  const CompressionResumePlan plan = PlanCompressionResume(dir, meta, current);
  if (reporting() && !plan.note.empty()) log() << plan.note << "\n";
  if (!plan.restore) return absl::OkStatus();
  ASSIGN_OR_RETURN(const std::vector<data_parallel::BucketSyncState> state,
                   ReadCompressionState(dir, meta, rank_));
  const absl::Status restored = runner_->gradient_reducer().RestoreSyncState(state);
  if (restored.ok()) return restored;
  return absl::Status(restored.code(),
                      absl::StrCat("checkpoint ", dir, " rank ", rank_, ": ", restored.message()));
}

absl::Status RankTrainer::RestoreLossScaler(const std::string& dir,
                                            const checkpoint::CheckpointMeta& meta) {
  LossScaler* scaler = runner_->loss_scaler();
  // A checkpoint of an fp32 or bf16 run starts fp16's scaler afresh.
  if (scaler == nullptr || !meta.has_loss_scaler()) return absl::OkStatus();
  const checkpoint::LossScalerState& saved = meta.loss_scaler();
  absl::Status status = scaler->Restore({.scale = saved.scale(),
                                         .clean_steps = saved.clean_steps(),
                                         .hysteresis_left = saved.hysteresis_left(),
                                         .skipped_steps = saved.skipped_steps()});
  if (status.ok()) return status;
  return absl::InvalidArgumentError(absl::StrCat("checkpoint ", dir, ": ", status.message()));
}

absl::Status RankTrainer::ExportModel() {
  // Replica 0's stages gather the serial tensors over tp and pp; global rank 0
  // (stage 0, tp rank 0 of replica 0) writes them.
  ASSIGN_OR_RETURN(std::vector<NamedTensor> tensors, runner_->GatherSerial(/*gradients=*/false));
  if (!reporting()) return absl::OkStatus();
  RETURN_IF_ERROR(WriteGpt2Export(paths_.export_path, tensors, config_.model()));
  reporter_->Note(absl::StrCat("exported ", paths_.export_path, " (Hugging Face GPT-2 names) and ",
                               Gpt2ConfigJsonPath(paths_.export_path)));
  return absl::OkStatus();
}

absl::StatusOr<int> RankTrainer::AgreedStopSignal() {
  // Ranks may notice a signal at different steps: the largest signal number
  // any rank saw decides, after the same step on every rank.
  int32_t signal_number = StopSignals::Received();
  RETURN_IF_ERROR(world_.AllReduce(comm::Buffer{&signal_number, 1, DType::kInt32},
                                   comm::ReduceOp::kMax));
  return signal_number;
}

absl::Status RankTrainer::StopParameterServers(int64_t step) {
  if (deferred_.has_value()) RETURN_IF_ERROR(CompleteDeferredSteps(step, /*all=*/true).status());
  if (step + 1 == last_step_) return absl::OkStatus();
  return runner_->StopParameterServers();
}

absl::Status RankTrainer::StopForSignal(int signal_number, int64_t next_step) {
  const bool saved_already = CheckpointDue(next_step - 1);
  if (!saved_already) RETURN_IF_ERROR(SaveCheckpoint(paths_.signal_save, next_step));
  reporter_->Note(absl::StrCat("stopped by ", SignalName(signal_number), " after step ", next_step,
                               " of ", config_.steps(), "; checkpoint ", paths_.signal_save,
                               "; continue with --resume=", paths_.signal_save));
  RETURN_IF_ERROR(Publish());
  if (reporting()) {
    absl::MutexLock lock(&job_.mu);
    job_.result.stop_signal = signal_number;
    job_.result.checkpoint = paths_.signal_save;
  }
  return absl::OkStatus();
}

absl::Status RankTrainer::Publish() {
  if (!reporting()) return absl::OkStatus();
  const RunTotals& totals = reporter_->totals();
  absl::MutexLock lock(&job_.mu);
  job_.result.first_step = first_step_;
  job_.result.losses = totals.losses;
  job_.result.val_losses = totals.val_losses;
  job_.result.tokens_per_second = totals.seconds > 0 ? totals.tokens / totals.seconds : 0;
  job_.result.checkpoint = paths_.save;
  return absl::OkStatus();
}

// --device=cuda: one GPU running the serial layout's one rank, in this
// process; refused by name before anything is built otherwise.
absl::Status CheckCudaSupported(const TrainOptions& options) {
  const ParallelLayout& layout = options.config.layout();
  if (layout.tensor_parallel() * layout.pipeline_parallel() * layout.data_parallel() != 1) {
    return Unsupported(
        "--device", "cuda",
        absl::StrCat("with tensor_parallel=", layout.tensor_parallel(), ", pipeline_parallel=",
                     layout.pipeline_parallel(), ", data_parallel=", layout.data_parallel(),
                     ": a GPU runs the serial layout (1 x 1 x 1) only; NCCL communicators are "
                     "not built yet"));
  }
  if (options.backend != "local") {
    return Unsupported("--backend", options.backend,
                       "with --device=cuda: the one GPU rank runs in this process "
                       "(--backend=local)");
  }
  if (layout.dp_sync() == topology::DpSync::PS) {
    return Unsupported("layout.dp_sync", "ps",
                       "with --device=cuda: its server ranks are ranks beyond the one GPU rank");
  }
  const Accelerator* cuda = FindAccelerator("cuda");
  if (cuda == nullptr) {
    return Unsupported("--device", "cuda",
                       "this binary was built without CUDA (no CUDA Toolkit at build time)");
  }
  if (absl::StatusOr<std::vector<AcceleratorDevice>> devices = cuda->VisibleDevices();
      !devices.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("--device=cuda: no GPU is visible: ", devices.status().message()));
  }
  return absl::OkStatus();
}

// --device=cuda (checked by CheckCudaSupported): GPU 0 for the one rank, its
// free memory against the job's estimate, and MFU's peak from its datasheet
// unless --peak_tflops named one.
absl::Status OpenCudaDevice(JobState& job, TrainOptions& options, std::ostream& log) {
  const Accelerator* cuda = FindAccelerator("cuda");
  ASSIGN_OR_RETURN(const std::vector<AcceleratorDevice> devices, cuda->VisibleDevices());
  const AcceleratorDevice& gpu = devices.front();
  const double needed = static_cast<double>(job.memory.total());
  if (gpu.free_memory_bytes > 0 && needed > static_cast<double>(gpu.free_memory_bytes)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "--device=cuda: this job needs about %.3g GB (estimated), more than the %.3g GB free on "
        "GPU %d (%s); use a smaller model or micro-batch",
        needed / 1e9, gpu.free_memory_bytes / 1e9, gpu.index, gpu.name));
  }
  ASSIGN_OR_RETURN(job.device, cuda->Open(gpu.index));
  job.device_description = absl::StrCat("cuda:", gpu.index, " (", gpu.name, ")");
  options.peak_flops_per_core = 0;  // A CPU figure; the job computes on the GPU.
  if (options.peak_flops > 0) return absl::OkStatus();
  if (std::optional<DevicePeak> peak = DatasheetPeak(gpu.name, options.config.precision())) {
    options.peak_flops = peak->flops_per_second;
    options.peak_source = peak->source;
  } else {
    log << "unknown GPU: no MFU (" << gpu.name << " has no datasheet peak here; --peak_tflops "
        << "names one)\n";
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckSupported(const TrainOptions& options) {
  RETURN_IF_ERROR(ValidateBackend(options.backend));
  if (options.device != "cpu" && options.device != "cuda") {
    return absl::InvalidArgumentError(
        absl::StrCat("--device=", options.device, " is unknown: use cpu or cuda"));
  }
  if (options.device == "cuda") RETURN_IF_ERROR(CheckCudaSupported(options));
  if (options.config.layout().dp_sync() == topology::DpSync::PS) {
    // A conversion trains nothing, so the servers would have nothing to serve.
    if (!options.convert_to.empty()) {
      return Unsupported("--convert_to", options.convert_to,
                         "a dp_sync=ps job converts no checkpoint (convert with the layout's "
                         "dp_sync=sync twin: a ps checkpoint is a sync one)");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<TrainResult> Train(const TrainOptions& options_in) {
  TrainOptions options = options_in;
  RETURN_IF_ERROR(topology::DeriveMicroBatches(options.config.mutable_layout()));
  RETURN_IF_ERROR(ValidateTrainConfig(options.config));
  RETURN_IF_ERROR(CheckSupported(options));
  std::ostream& log = options.log != nullptr ? *options.log : std::cout;
  const ParallelLayout& layout = options.config.layout();

  JobState job;
  job.options = &options;
  job.world_size = layout.tensor_parallel() * layout.pipeline_parallel() * layout.data_parallel();
  // Under dp_sync=ps the job launches the server ranks too.
  const int launched = JobWorldSize(layout);
  const bool ps = layout.dp_sync() == topology::DpSync::PS;
  // Refused before anything is allocated when it cannot fit.
  ASSIGN_OR_RETURN(job.memory, EstimateRankMemory(options.config));
  if (options.device == "cuda") {
    RETURN_IF_ERROR(OpenCudaDevice(job, options, log));
  } else {
    RETURN_IF_ERROR(CheckMemoryFits(job.memory, RanksOnThisMachine(options.backend, launched),
                                    AvailableMemoryBytes()));
  }
  job.threads_per_rank = options.threads > 0
                             ? options.threads
                             : CpuThreadsPerRank(RanksSharingCores(options.backend, launched));
  if (options.peak_flops <= 0 && options.peak_flops_per_core > 0) {
    // The cores the job computes on: its threads, at most the cores its
    // processes may use (every rank on `local` shares this process's).
    const int sharing = RanksSharingCores(options.backend, job.world_size);
    const int64_t threads = int64_t{job.threads_per_rank} * job.world_size;
    const int64_t cores = int64_t{AvailableCores()} * job.world_size / sharing;
    const int64_t job_cores = std::min(threads, cores);
    options.peak_flops = options.peak_flops_per_core * job_cores;
    options.peak_source = absl::StrCat(job_cores, " x ", options.peak_source);
  }
  comm::CommOptions comm_options;
  comm_options.timeout = options.comm_timeout;
  RETURN_IF_ERROR(LaunchRanks(options.backend, launched,
                              [&](int rank, comm::Communicator& world) -> absl::Status {
    if (IsParameterServerRank(layout, rank)) {
      return ServeParameters(options.config, world);
    }
    // Under ps everything the trainer does over its world runs over the
    // workers; the servers answer point to point only.
    std::unique_ptr<comm::Communicator> workers;
    if (ps) {
      ASSIGN_OR_RETURN(workers, CreateWorkerGroup(layout, world));
    }
    comm::Communicator& grid_world = ps ? *workers : world;
    // Rank 0 prepares missing token files and checks every path while the
    // others wait (a shared filesystem under MPI), then hands out the result.
    absl::StatusOr<JobPaths> mine =
        rank == 0 ? PrepareJobPaths(options, log) : absl::StatusOr<JobPaths>(JobPaths());
    ASSIGN_OR_RETURN(JobPaths paths, ShareJobPaths(grid_world, mine));
    RankTrainer trainer(job, std::move(paths), rank, grid_world, ps ? &world : nullptr);
    return trainer.Run();
  }, comm_options, JobWorldRule(layout)));
  return std::move(job.result);
}

}  // namespace trident::training

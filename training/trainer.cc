#include "training/trainer.h"

#include <algorithm>
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
#include "topology/grid_communicators.h"
#include "topology/layout_io.h"
#include "topology/layout_names.h"
#include "topology/layout_validation.h"
#include "topology/process_grid.h"
#include "training/batch_geometry.h"
#include "training/checkpoint/checkpoint.h"
#include "training/data/loader.h"
#include "training/data/prepare_data.h"
#include "training/data/token_file.h"
#include "training/export.h"
#include "training/flops.h"
#include "training/launch.h"
#include "training/metrics.h"
#include "training/run_reporter.h"
#include "training/step_runner.h"
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
  int world_size = 1;

  absl::Mutex mu;
  TrainResult result;
};

// One rank's part of the job.
class RankTrainer {
 public:
  RankTrainer(JobState& job, DataPaths data, int rank, comm::Communicator& world)
      : job_(job),
        options_(*job.options),
        config_(options_.config),
        batch_(BatchGeometry::Of(config_)),
        data_(std::move(data)),
        rank_(rank),
        world_(world),
        ctx_(ExecContext::Cpu(CpuThreadsPerRank(job.world_size))) {}

  // The whole run, as the user sees it: set up, then train, evaluate and
  // save on schedule, and export at the end.
  absl::Status Run() {
    RETURN_IF_ERROR(Setup());
    for (int64_t step = first_step_; step < last_step_; ++step) {
      RETURN_IF_ERROR(TrainStep(step));
      if (EvaluationDue(step)) RETURN_IF_ERROR(Evaluate(step + 1));
      if (CheckpointDue(step)) RETURN_IF_ERROR(SaveCheckpoint(step + 1));
    }
    if (!options_.export_path.empty()) RETURN_IF_ERROR(ExportModel());
    reporter_->Finish();
    return Publish();
  }

 private:
  absl::Status Setup();
  absl::Status OpenData();
  std::string Header() const;
  absl::Status TrainStep(int64_t step);
  absl::Status Evaluate(int64_t after_step);
  absl::Status SaveCheckpoint(int64_t next_step);
  absl::Status LoadCheckpoint();
  absl::Status ExportModel();
  std::string CheckpointLayoutText() const;
  absl::Status Publish();

  bool EvaluationDue(int64_t step) const {
    return val_windows_.has_value() &&
           ((step + 1) % config_.eval_interval() == 0 || step + 1 == last_step_);
  }
  bool CheckpointDue(int64_t step) const {
    const int interval = config_.checkpoint_interval();
    return !options_.save_dir.empty() &&
           (step + 1 == last_step_ || (interval > 0 && (step + 1) % interval == 0));
  }
  bool reporting() const { return rank_ == 0; }
  std::ostream& log() const { return options_.log != nullptr ? *options_.log : std::cout; }

  JobState& job_;
  const TrainOptions& options_;
  const TrainConfig& config_;
  const BatchGeometry batch_;
  const DataPaths data_;
  const int rank_;
  comm::Communicator& world_;
  const ExecContext ctx_;

  std::optional<topology::ProcessGrid> grid_;
  topology::GridCommunicators comms_;
  std::unique_ptr<StepRunner> runner_;
  std::optional<data::TrainBatches> batches_;
  std::optional<data::ValidationWindows> val_windows_;
  std::unique_ptr<RunReporter> reporter_;
  int64_t first_step_ = 0;
  int64_t last_step_ = 0;
  int dp_rank_ = 0;
};

absl::Status RankTrainer::Setup() {
  ASSIGN_OR_RETURN(topology::ProcessGrid grid,
                   topology::ProcessGrid::Create(config_.layout(), job_.world_size));
  grid_.emplace(std::move(grid));
  ASSIGN_OR_RETURN(comms_, topology::BuildGridCommunicators(*grid_, world_));
  dp_rank_ = grid_->CoordinatesOf(rank_).dp;
  ASSIGN_OR_RETURN(runner_, StepRunner::Create(config_, *grid_, rank_, comms_, ctx_));
  RETURN_IF_ERROR(OpenData());
  if (!options_.resume_dir.empty()) RETURN_IF_ERROR(LoadCheckpoint());
  last_step_ = options_.stop_at_step > 0
                   ? std::min<int64_t>(options_.stop_at_step, config_.steps())
                   : config_.steps();

  RunReporterOptions report;
  if (reporting()) {
    report.log = &log();
    report.metrics_path = options_.metrics_out;
  }
  report.resumed = first_step_ > 0;
  report.total_steps = config_.steps();
  report.log_interval = config_.log_interval();
  report.tokens_per_step = batch_.tokens_per_step();
  report.flops_per_token = GptFlopsPerToken(config_.model(), batch_.seq_length);
  report.peak_flops = options_.peak_flops;
  ASSIGN_OR_RETURN(reporter_, RunReporter::Create(std::move(report)));
  reporter_->Note(Header());
  return absl::OkStatus();
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
  if (options_.peak_flops > 0) {
    absl::StrAppendFormat(&header, "\nmfu: model FLOPs over %.3g TFLOP/s (%s)",
                          options_.peak_flops / 1e12, options_.peak_source);
  }
  if (first_step_ > 0) {
    absl::StrAppend(&header, "\nresumed from ", options_.resume_dir, " at step ", first_step_);
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
  Stopwatch watch;
  ASSIGN_OR_RETURN(const StepResult result,
                   runner_->TrainStep(step, inputs, targets, batch_.tokens_per_step()));
  return reporter_->Step(step, watch.ElapsedSeconds(), result.loss, result.lr, result.grad_norm);
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
    ASSIGN_OR_RETURN(const double batch_loss, runner_->EvaluateLossSum(inputs, targets));
    loss_sum += batch_loss;
  }
  return reporter_->Validation(
      after_step, loss_sum / static_cast<double>(batches * batch_.tokens_per_step()));
}

std::string RankTrainer::CheckpointLayoutText() const {
  // A checkpoint holds per-rank shards: resuming needs the same layout and model.
  return absl::StrCat("model {\n", config_.model().DebugString(), "}\nlayout {\n",
                      topology::LayoutToText(config_.layout()), "}\nseq_length: ",
                      config_.data().seq_length(), "\n");
}

absl::Status RankTrainer::SaveCheckpoint(int64_t next_step) {
  const std::string& dir = options_.save_dir;
  if (reporting()) RETURN_IF_ERROR(checkpoint::BeginCheckpoint(dir).status());
  RETURN_IF_ERROR(world_.Barrier());
  std::vector<checkpoint::TensorBlob> blobs;
  runner_->optimizer().AppendStateBlobs(blobs);
  RETURN_IF_ERROR(checkpoint::WriteRankShard(checkpoint::PartialCheckpointDir(dir), rank_, blobs));
  RETURN_IF_ERROR(world_.Barrier());
  if (reporting()) {
    checkpoint::CheckpointMeta meta;
    meta.step = next_step;
    meta.seed = static_cast<uint64_t>(config_.seed());
    const data::DataPosition position = batches_->Position(next_step);
    meta.data_position = {static_cast<int64_t>(position.seed), position.step};
    meta.layout = CheckpointLayoutText();
    meta.world_size = job_.world_size;
    RETURN_IF_ERROR(checkpoint::FinalizeCheckpoint(dir, meta));
    reporter_->Note(absl::StrCat("saved checkpoint ", dir, " (step ", next_step, ")"));
  }
  return world_.Barrier();
}

absl::Status RankTrainer::LoadCheckpoint() {
  const std::string& dir = options_.resume_dir;
  if (reporting()) RETURN_IF_ERROR(checkpoint::RecoverCheckpoint(dir));
  RETURN_IF_ERROR(world_.Barrier());
  ASSIGN_OR_RETURN(checkpoint::CheckpointMeta meta, checkpoint::ReadCheckpointMeta(dir));
  RETURN_IF_ERROR(checkpoint::CheckResumeCompatible(dir, meta, job_.world_size,
                                                    CheckpointLayoutText()));
  if (meta.seed != static_cast<uint64_t>(config_.seed())) {
    return absl::InvalidArgumentError(absl::StrCat("checkpoint ", dir, " was trained with seed ",
                                                   meta.seed, ", this job has seed ",
                                                   config_.seed()));
  }
  if (meta.step > config_.steps()) {
    return absl::InvalidArgumentError(absl::StrCat("checkpoint ", dir, " is at step ", meta.step,
                                                   ", beyond steps=", config_.steps()));
  }
  ASSIGN_OR_RETURN(checkpoint::TensorSet tensors, checkpoint::ReadRankShard(dir, rank_));
  RETURN_IF_ERROR(runner_->optimizer().LoadState(tensors));
  first_step_ = meta.step;
  return absl::OkStatus();
}

absl::Status RankTrainer::ExportModel() {
  // Replica 0's stages gather the serial tensors over tp and pp; global rank 0
  // (stage 0, tp rank 0 of replica 0) writes them.
  ASSIGN_OR_RETURN(std::vector<NamedTensor> tensors, runner_->GatherSerial(/*gradients=*/false));
  if (!reporting()) return absl::OkStatus();
  RETURN_IF_ERROR(WriteGpt2Safetensors(options_.export_path, tensors, config_.model()));
  reporter_->Note(absl::StrCat("exported ", options_.export_path, " (Hugging Face GPT-2 names)"));
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
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckSupported(const TrainOptions& options) {
  const ParallelLayout& layout = options.config.layout();
  RETURN_IF_ERROR(ValidateBackend(options.backend));
  if (options.device != "cpu" && options.device != "cuda") {
    return absl::InvalidArgumentError(
        absl::StrCat("--device=", options.device, " is unknown: use cpu or cuda"));
  }
  if (options.device == "cuda") {
    return Unsupported("--device", "cuda", "the ops have CPU kernels only so far");
  }
  if (layout.zero_stage() > 0) {
    return Unsupported("layout.zero_stage", absl::StrCat(layout.zero_stage()),
                       "ZeRO sharding is not built yet");
  }
  if (layout.gradient_compression() != topology::GradientCompression::NONE) {
    return Unsupported("layout.gradient_compression",
                       topology::CompressionName(layout.gradient_compression()),
                       "gradient compression is not built yet");
  }
  if (layout.overlap_grad_reduce()) {
    return Unsupported("layout.overlap_grad_reduce", "true",
                       "bucketed gradient reduction overlapped with the backward is not built "
                       "yet (gradients are all-reduced after the backward)");
  }
  if (layout.recompute() != topology::Recompute::NONE) {
    return Unsupported("layout.recompute", topology::RecomputeName(layout.recompute()),
                       "activation recomputation is not built yet");
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
  RETURN_IF_ERROR(LaunchRanks(options.backend, job.world_size,
                              [&](int rank, comm::Communicator& world) -> absl::Status {
    // Rank 0 prepares missing token files while the others wait (a shared
    // filesystem under MPI); then every rank finds them.
    absl::StatusOr<DataPaths> data =
        rank == 0 ? ResolveData(options.config, log) : absl::StatusOr<DataPaths>();
    RETURN_IF_ERROR(world.Barrier());
    if (rank != 0) data = ResolveData(options.config, log);
    RETURN_IF_ERROR(data.status());
    RankTrainer trainer(job, *std::move(data), rank, world);
    return trainer.Run();
  }));
  return std::move(job.result);
}

}  // namespace trident::training

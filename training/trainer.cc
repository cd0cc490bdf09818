#include "training/trainer.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <thread>
#include <iostream>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/comm/local/local_world.h"
#include "core/comm/mpi/mpi_communicator.h"
#include "core/comm/mpi/mpi_runtime.h"
#include "core/exec_context.h"
#include "core/io/user_path.h"
#include "core/status_macros.h"
#include "core/tensor.h"
#include "topology/grid_communicators.h"
#include "topology/layout_io.h"
#include "topology/layout_names.h"
#include "topology/layout_validation.h"
#include "topology/process_grid.h"
#include "training/checkpoint/checkpoint.h"
#include "training/data/loader.h"
#include "training/data/prepare_data.h"
#include "training/data/token_file.h"
#include "training/export.h"
#include "training/flops.h"
#include "training/lr_schedule.h"
#include "training/metrics.h"
#include "training/optimizer.h"
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

// Everything the ranks of one job share (read-only while they run), plus the
// results that global rank 0 reports back.
struct JobState {
  const TrainOptions* options = nullptr;
  std::string train_path;
  std::string val_path;
  double peak_flops = 0;  // Whole machine's fp32 GEMM rate, for MFU.
  int world_size = 1;

  absl::Mutex mu;
  TrainResult result;
};

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

// One rank's part of the job.
class RankTrainer {
 public:
  RankTrainer(JobState& job, int rank, comm::Communicator& world)
      : job_(job),
        options_(*job.options),
        config_(options_.config),
        layout_(config_.layout()),
        rank_(rank),
        world_(world),
        ctx_(ExecContext::Cpu(CpuThreadsPerRank(job.world_size))) {}

  absl::Status Run();

 private:
  absl::Status Setup();
  absl::StatusOr<double> TrainStep(int64_t step, double* grad_norm);
  absl::StatusOr<double> Evaluate();
  absl::Status SaveCheckpoint(int64_t next_step);
  absl::Status LoadCheckpoint();
  absl::Status ExportModel();
  std::ostream& log() const { return options_.log != nullptr ? *options_.log : std::cout; }
  bool reporter() const { return rank_ == 0; }

  JobState& job_;
  const TrainOptions& options_;
  const TrainConfig& config_;
  const ParallelLayout& layout_;
  const int rank_;
  comm::Communicator& world_;
  const ExecContext ctx_;

  std::optional<topology::ProcessGrid> grid_;
  topology::GridCommunicators comms_;
  std::unique_ptr<StepRunner> runner_;
  std::optional<data::TrainBatches> batches_;
  std::optional<data::ValidationWindows> val_windows_;
  std::unique_ptr<MetricsWriter> metrics_;
  int64_t first_step_ = 0;
  int dp_rank_ = 0;
};

absl::Status RankTrainer::Setup() {
  ASSIGN_OR_RETURN(topology::ProcessGrid grid,
                   topology::ProcessGrid::Create(layout_, job_.world_size));
  grid_.emplace(std::move(grid));
  ASSIGN_OR_RETURN(comms_, topology::BuildGridCommunicators(*grid_, world_));
  dp_rank_ = grid_->CoordinatesOf(rank_).dp;

  const auto& model = config_.model();
  const int64_t padded_vocab =
      topology::PaddedVocabSize(model.vocab_size(), layout_.tensor_parallel());
  ASSIGN_OR_RETURN(runner_, StepRunner::Create(config_, *grid_, rank_, comms_, ctx_));

  const int64_t global_batch = static_cast<int64_t>(layout_.micro_batch_size()) *
                               layout_.num_micro_batches() * layout_.data_parallel();
  const int64_t seq = config_.data().seq_length();
  ASSIGN_OR_RETURN(data::TokenFile train_file, data::TokenFile::Open(job_.train_path));
  if (train_file.vocab_size() > model.vocab_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "data file ", job_.train_path, " has vocabulary ", train_file.vocab_size(),
        ", larger than model.vocab_size=", model.vocab_size()));
  }
  ASSIGN_OR_RETURN(data::TrainBatches batches,
                   data::TrainBatches::Create(std::move(train_file), global_batch, seq,
                                              static_cast<uint64_t>(config_.seed())));
  batches_.emplace(std::move(batches));
  if (config_.eval_interval() > 0) {
    ASSIGN_OR_RETURN(data::TokenFile val_file, data::TokenFile::Open(job_.val_path));
    ASSIGN_OR_RETURN(data::ValidationWindows windows,
                     data::ValidationWindows::Create(std::move(val_file), seq,
                                                     global_batch * config_.eval_batches()));
    val_windows_.emplace(std::move(windows));
  }

  if (!options_.resume_dir.empty()) RETURN_IF_ERROR(LoadCheckpoint());
  if (reporter()) {
    log() << grid_->Describe() << "\n";
    log() << "model: " << GptParameterCount(model) << " parameters, " << model.num_layers()
          << " layers, hidden " << model.hidden_size() << ", " << model.num_heads()
          << " heads, vocabulary " << model.vocab_size() << " (padded to " << padded_vocab
          << "); global batch " << global_batch << " x " << seq << " tokens\n";
    if (first_step_ > 0) log() << "resumed from " << options_.resume_dir << " at step " << first_step_ << "\n";
    if (!options_.metrics_out.empty()) {
      ASSIGN_OR_RETURN(metrics_, MetricsWriter::Open(options_.metrics_out,
                                                     first_step_ > 0 ? MetricsWriter::Mode::kAppend
                                                                     : MetricsWriter::Mode::kTruncate));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<double> RankTrainer::TrainStep(int64_t step, double* grad_norm) {
  const int64_t mbs = layout_.micro_batch_size();
  const int m = layout_.num_micro_batches();
  const int64_t seq = batches_->seq_len();
  // This replica's rows of the global batch; the stage model cuts them into
  // micro-batches.
  const data::RowRange rows{dp_rank_ * mbs * m, mbs * m};
  ASSIGN_OR_RETURN(std::vector<int32_t> tokens, batches_->Rows(step, rows));
  Tensor inputs, targets;
  SplitRows(tokens, mbs * m, seq, &inputs, &targets);
  // Every target of the data counts (no ignored positions), so the global batch
  // has global_batch * seq loss tokens whatever the layout.
  const double global_tokens = static_cast<double>(mbs) * m * layout_.data_parallel() * seq;
  ASSIGN_OR_RETURN(const StepResult result, runner_->TrainStep(step, inputs, targets, global_tokens));
  *grad_norm = result.grad_norm;
  return result.loss;
}

absl::StatusOr<double> RankTrainer::Evaluate() {
  const int64_t mbs = layout_.micro_batch_size();
  const int64_t per_replica = mbs * layout_.num_micro_batches();
  const int64_t seq = val_windows_->seq_len();
  const int64_t global_batch = per_replica * layout_.data_parallel();
  double loss_sum = 0;
  int64_t batches = 0;
  for (int64_t b = 0; (b + 1) * global_batch <= val_windows_->num_windows() &&
                      b < config_.eval_batches();
       ++b, ++batches) {
    std::vector<int32_t> tokens(per_replica * (seq + 1));
    RETURN_IF_ERROR(val_windows_->FillWindows(
        data::RowRange{b * global_batch + dp_rank_ * per_replica, per_replica},
        absl::MakeSpan(tokens)));
    Tensor inputs, targets;
    SplitRows(tokens, per_replica, seq, &inputs, &targets);
    ASSIGN_OR_RETURN(const double batch_loss, runner_->EvaluateLossSum(inputs, targets));
    loss_sum += batch_loss;
  }
  if (batches == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "validation data ", job_.val_path, " has ", val_windows_->num_windows(),
        " windows, fewer than one global batch of ", global_batch));
  }
  return loss_sum / static_cast<double>(batches * global_batch * seq);
}

absl::Status RankTrainer::SaveCheckpoint(int64_t next_step) {
  const std::string& dir = options_.save_dir;
  if (reporter()) RETURN_IF_ERROR(checkpoint::BeginCheckpoint(dir).status());
  RETURN_IF_ERROR(world_.Barrier());
  std::vector<checkpoint::TensorBlob> blobs;
  runner_->optimizer().AppendStateBlobs(blobs);
  RETURN_IF_ERROR(checkpoint::WriteRankShard(checkpoint::PartialCheckpointDir(dir), rank_, blobs));
  RETURN_IF_ERROR(world_.Barrier());
  if (reporter()) {
    const data::DataPosition position = batches_->Position(next_step);
    checkpoint::DataPosition data_position;
    data_position.set_seed(position.seed);
    data_position.set_step(position.step);
    RETURN_IF_ERROR(checkpoint::FinalizeCheckpoint(
        dir, checkpoint::MakeCheckpointMeta(config_, job_.world_size, next_step, data_position)));
    log() << "saved checkpoint " << dir << " (step " << next_step << ")\n";
  }
  return world_.Barrier();
}

absl::Status RankTrainer::LoadCheckpoint() {
  const std::string& dir = options_.resume_dir;
  if (reporter()) RETURN_IF_ERROR(checkpoint::RecoverCheckpoint(dir));
  RETURN_IF_ERROR(world_.Barrier());
  ASSIGN_OR_RETURN(checkpoint::CheckpointMeta meta, checkpoint::ReadCheckpointMeta(dir));
  // A checkpoint holds per-rank shards: resuming needs the same model, layout,
  // sequence length and world size.
  RETURN_IF_ERROR(checkpoint::CheckResumeCompatible(
      dir, meta, checkpoint::MakeCheckpointMeta(config_, job_.world_size, 0, {})));
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
  ASSIGN_OR_RETURN(checkpoint::TensorSet tensors, checkpoint::ReadRankShard(dir, rank_));
  RETURN_IF_ERROR(checkpoint::CheckStoredStep(dir, meta, tensors, AdamW::kStepName));
  RETURN_IF_ERROR(runner_->optimizer().LoadState(tensors));
  first_step_ = meta.step();
  return absl::OkStatus();
}

absl::Status RankTrainer::ExportModel() {
  // Replica 0's stages gather the serial tensors over tp and pp; global rank 0
  // (stage 0, tp rank 0 of replica 0) writes them.
  ASSIGN_OR_RETURN(std::vector<NamedTensor> tensors, runner_->GatherSerial(/*gradients=*/false));
  if (!reporter()) return absl::OkStatus();
  RETURN_IF_ERROR(WriteGpt2Safetensors(options_.export_path, tensors, config_.model()));
  log() << "exported " << options_.export_path << " (Hugging Face GPT-2 names)\n";
  return absl::OkStatus();
}

absl::Status RankTrainer::Run() {
  RETURN_IF_ERROR(Setup());
  const int64_t steps = config_.steps();
  const int64_t tokens_per_step = static_cast<int64_t>(layout_.micro_batch_size()) *
                                  layout_.num_micro_batches() * layout_.data_parallel() *
                                  config_.data().seq_length();
  const double flops_per_token = GptFlopsPerToken(config_.model(), config_.data().seq_length());
  ThroughputTracker throughput;
  std::vector<double> losses;
  std::vector<std::pair<int64_t, double>> val_losses;
  const int64_t last_step =
      options_.stop_at_step > 0 ? std::min<int64_t>(options_.stop_at_step, steps) : steps;
  for (int64_t step = first_step_; step < last_step; ++step) {
    Stopwatch watch;
    double grad_norm = 0;
    ASSIGN_OR_RETURN(const double loss, TrainStep(step, &grad_norm));
    const double seconds = watch.ElapsedSeconds();
    throughput.AddStep(seconds, tokens_per_step);
    losses.push_back(loss);
    if (reporter()) {
      const double lr = LearningRate(step, config_.optimizer(), steps);
      const double tokens_per_s = tokens_per_step / seconds;
      std::optional<double> mfu;
      if (job_.peak_flops > 0) {
        mfu = ModelFlopsUtilization(flops_per_token, tokens_per_s, job_.peak_flops);
      }
      if (metrics_ != nullptr) {
        TrainMetrics line;
        line.step = step + 1;
        line.loss = loss;
        line.lr = lr;
        line.grad_norm = grad_norm;
        line.tokens_per_s = tokens_per_s;
        line.step_time_ms = seconds * 1e3;
        line.mfu = mfu;
        line.tokens = (step + 1) * tokens_per_step;
        RETURN_IF_ERROR(metrics_->WriteTrain(line));
      }
      if (config_.log_interval() > 0 &&
          ((step + 1) % config_.log_interval() == 0 || step + 1 == steps)) {
        ProgressInfo info;
        info.step = step + 1;
        info.total_steps = steps;
        info.loss = loss;
        info.lr = lr;
        info.grad_norm = grad_norm;
        info.tokens_per_s = throughput.smoothed_tokens_per_second();
        info.mfu = mfu;
        info.step_time_ms = seconds * 1e3;
        info.eta_seconds = throughput.smoothed_step_seconds() * (steps - step - 1);
        log() << FormatProgressLine(info) << std::endl;
      }
    }
    const bool last = step + 1 == last_step;
    if (val_windows_.has_value() && ((step + 1) % config_.eval_interval() == 0 || last)) {
      ASSIGN_OR_RETURN(const double val_loss, Evaluate());
      val_losses.emplace_back(step + 1, val_loss);
      if (reporter()) {
        log() << FormatValidationLine(step + 1, steps, val_loss) << std::endl;
        if (metrics_ != nullptr) {
          RETURN_IF_ERROR(metrics_->WriteValidation(ValidationMetrics{step + 1, val_loss}));
        }
      }
    }
    if (!options_.save_dir.empty() &&
        (last || (config_.checkpoint_interval() > 0 &&
                  (step + 1) % config_.checkpoint_interval() == 0))) {
      RETURN_IF_ERROR(SaveCheckpoint(step + 1));
    }
  }
  if (!options_.export_path.empty()) RETURN_IF_ERROR(ExportModel());
  if (reporter()) {
    absl::MutexLock lock(&job_.mu);
    job_.result.first_step = first_step_;
    job_.result.losses = std::move(losses);
    job_.result.val_losses = std::move(val_losses);
    job_.result.tokens_per_second =
        throughput.total_seconds() > 0 ? throughput.total_tokens() / throughput.total_seconds() : 0;
  }
  return absl::OkStatus();
}

std::string ParentDir(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

// Finds the token files, preparing them from the raw text when both are missing.
absl::Status ResolveData(const TrainConfig& config, JobState& job, std::ostream& log) {
  const auto& data_config = config.data();
  job.train_path = io::ResolveUserPath(data_config.train_path());
  job.val_path = io::ResolveUserPath(data_config.val_path());
  const auto exists = [](const std::string& path) { return std::ifstream(path).good(); };
  if (exists(job.train_path) && exists(job.val_path)) return absl::OkStatus();
  if (data::TrainTokenPath(ParentDir(job.train_path)) != job.train_path ||
      data::ValTokenPath(ParentDir(job.train_path)) != job.val_path) {
    return absl::NotFoundError(absl::StrCat("data.train_path ", job.train_path, " or data.val_path ",
                                            job.val_path, " does not exist; prepare them with "
                                            "//tools:prepare_data"));
  }
  data::PrepareDataOptions prepare;
  prepare.input = io::ResolveUserPath(data_config.raw_text());
  prepare.output_dir = ParentDir(job.train_path);
  prepare.tokenizer = data_config.tokenizer();
  prepare.gpt2_dir = io::ResolveUserPath(data_config.gpt2_dir());
  prepare.val_fraction = data_config.val_fraction();
  log << "preparing " << prepare.output_dir << " from " << prepare.input << " ("
      << prepare.tokenizer << " tokenizer)\n";
  return data::PrepareData(prepare).status();
}

}  // namespace

absl::Status CheckSupported(const TrainOptions& options) {
  const ParallelLayout& layout = options.config.layout();
  if (options.backend != "local" && options.backend != "mpi") {
    return absl::InvalidArgumentError(
        absl::StrCat("--backend=", options.backend, " is unknown: use local or mpi"));
  }
  if (options.device != "cpu" && options.device != "cuda") {
    return absl::InvalidArgumentError(
        absl::StrCat("--device=", options.device, " is unknown: use cpu or cuda"));
  }
  if (options.device == "cuda") {
    return Unsupported("--device", "cuda", "the ops have CPU kernels only so far");
  }
  if (layout.sequence_parallel() && layout.pipeline_parallel() > 1) {
    return Unsupported("layout.sequence_parallel", "true",
                       absl::StrCat("with pipeline_parallel=", layout.pipeline_parallel(),
                                    " (sequence parallelism works within one stage so far)"));
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

absl::StatusOr<TrainResult> Train(const TrainOptions& options) {
  RETURN_IF_ERROR(ValidateTrainConfig(options.config));
  RETURN_IF_ERROR(CheckSupported(options));
  std::ostream& log = options.log != nullptr ? *options.log : std::cout;
  const ParallelLayout& layout = options.config.layout();

  JobState job;
  job.options = &options;
  job.world_size = layout.tensor_parallel() * layout.pipeline_parallel() * layout.data_parallel();
  // MFU is measured against this machine's best fp32 GEMM rate on all cores:
  // large GEMMs, best of 0.3 s, since a short or small measurement
  // underestimates the peak (and overstates MFU) when anything else runs.
  const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  PeakFlopsOptions peak;
  peak.size = 1024;
  peak.min_time = absl::Milliseconds(300);

  if (options.backend == "local") {
    RETURN_IF_ERROR(ResolveData(options.config, job, log));
    job.peak_flops = MeasureCpuPeakFlops(ExecContext::Cpu(cores), peak);
    RETURN_IF_ERROR(comm::RunLocalRanks(job.world_size, [&job](int rank, comm::Communicator& world) {
      RankTrainer trainer(job, rank, world);
      return trainer.Run();
    }));
    return std::move(job.result);
  }

  // MPI: this process is one rank of a job started by mpirun/srun.
  ASSIGN_OR_RETURN(std::unique_ptr<comm::MpiRuntime> runtime, comm::MpiRuntime::Initialize());
  if (runtime->world_size() != job.world_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the launcher started ", runtime->world_size(), " processes, but the layout needs tp x pp "
        "x dp = ", job.world_size, " ranks (run mpirun -np ", job.world_size, ")"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<comm::MpiCommunicator> world,
                   comm::MpiCommunicator::CreateWorld(comm::CommOptions{}));
  // Rank 0 prepares missing data files; the others wait for it (shared filesystem).
  absl::Status data_status = world->rank() == 0 ? ResolveData(options.config, job, log)
                                                : absl::OkStatus();
  RETURN_IF_ERROR(world->Barrier());
  RETURN_IF_ERROR(data_status);
  if (world->rank() != 0) RETURN_IF_ERROR(ResolveData(options.config, job, log));
  job.peak_flops = MeasureCpuPeakFlops(ExecContext::Cpu(cores), peak);
  RankTrainer trainer(job, world->rank(), *world);
  RETURN_IF_ERROR(trainer.Run());
  return std::move(job.result);
}

}  // namespace trident::training

#include "training/trainer_testing.h"

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "core/check.h"
#include "training/data/token_file.h"
#include "training/default_config.h"

namespace trident::training::testing {

TrainOptions TinyOptions(const std::string& data_dir) {
  TrainOptions options;
  TrainConfig& c = options.config;
  auto* m = c.mutable_model();
  m->set_vocab_size(256);
  m->set_context_length(32);
  m->set_num_layers(2);
  m->set_num_heads(4);
  m->set_hidden_size(32);
  auto* layout = c.mutable_layout();
  layout->set_micro_batch_size(4);
  layout->set_num_micro_batches(1);
  auto* o = c.mutable_optimizer();
  o->set_learning_rate(3e-3);
  o->set_min_learning_rate(3e-4);
  o->set_warmup_steps(2);
  c.mutable_data()->set_train_path(data_dir + "/train.bin");
  c.mutable_data()->set_val_path(data_dir + "/val.bin");
  c.mutable_data()->set_seq_length(32);
  c.set_steps(8);
  c.set_eval_interval(4);
  c.set_eval_batches(2);
  c.set_log_interval(1000);
  return options;
}

TrainOptions DefaultJob(const std::string& data_dir, int steps, bool serial) {
  absl::StatusOr<TrainConfig> config = DefaultTrainConfig();
  TRIDENT_CHECK_OK(config.status());
  TrainOptions options;
  options.config = *std::move(config);
  options.config.set_steps(steps);
  options.config.set_eval_interval(0);
  options.config.clear_data();
  options.config.mutable_data()->set_train_path(data_dir + "/train.bin");
  options.config.mutable_data()->set_val_path(data_dir + "/val.bin");
  if (serial) {
    auto* layout = options.config.mutable_layout();
    layout->set_tensor_parallel(1);
    layout->set_pipeline_parallel(1);
    layout->set_data_parallel(1);
    layout->set_micro_batch_size(8);
    layout->set_num_micro_batches(1);
    layout->clear_global_batch_size();
  }
  return options;
}

std::ostringstream& Sink() {
  static std::ostringstream sink;
  return sink;
}

TrainResult MustTrain(TrainOptions options) {
  options.log = &Sink();
  absl::StatusOr<TrainResult> result = Train(options);
  TRIDENT_CHECK_OK(result.status());
  return *std::move(result);
}

}  // namespace trident::training::testing

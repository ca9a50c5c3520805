// Each subcommand registers itself on the app and runs from its callback.
#pragma once

#include <CLI/CLI.hpp>

namespace tiller::cli {

void register_inspect(CLI::App& app);
void register_version(CLI::App& app);
void register_tokenize(CLI::App& app);
void register_template(CLI::App& app);
void register_logits(CLI::App& app);
void register_eval(CLI::App& app);  // cmd_eval.cpp: measuring a steering (tiller/evaluate.h)
void register_dump(CLI::App& app);
void register_run(CLI::App& app);
void register_vector(CLI::App& app);
void register_vector_train(CLI::App* vector);  // `vector train`, from cmd_vector_train.cpp
void register_vector_distill(CLI::App* vector);  // `vector distill`, from cmd_vector_distill.cpp
void register_bench(CLI::App& app);
void register_sweep(CLI::App& app);  // cmd_sweep.cpp: tiller sweep (tiller/sweep.h)
void register_serve(CLI::App& app);  // cmd_serve.cpp: the HTTP server (src/server)

}  // namespace tiller::cli

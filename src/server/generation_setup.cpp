#include "server/generation_setup.h"

#include <filesystem>

#include "server/api_error.h"
#include "tiller/error.h"
#include "tiller/steering_spec.h"

namespace tiller::server {

Prompt request_prompt(const ServerState& state, const CompletionRequest& request) {
  const Model& model = *state.model;
  if (request.endpoint == Endpoint::Completions) return build_prompt(model, PromptFormat::plain(), {request.prompt, ""});
  if (!state.chat_format) throw bad_request("this model has no chat format Tiller knows: " + state.chat_format_error);
  const std::vector<ChatMessage>& messages = request.messages;
  const bool single = messages.size() == 1 && messages[0].role == "user";
  const bool with_system = messages.size() == 2 && messages[0].role == "system" && messages[1].role == "user";
  if (single || with_system) {
    const PromptFormat format{true, *state.chat_format, with_system ? messages[0].content : std::string()};
    return build_prompt(model, format, {messages.back().content, ""});
  }
  // A longer conversation: rendered whole. Steering positions count from its
  // start (the user anchor is the context's start here).
  const std::string text = render_chat(*state.chat_format, messages, true);
  Prompt prompt;
  prompt.tokens = model.tokenizer().tokenize(text, {.add_special = true, .parse_special = true});
  return prompt;
}

void check_fits_context(const ServerState& state, const Prompt& prompt) {
  if (prompt.tokens.empty()) throw bad_request("the prompt is empty", "prompt");
  const size_t n = prompt.tokens.size();
  if (n + 1 > size_t(state.n_ctx)) {
    throw bad_request("the prompt has " + std::to_string(n) + " tokens and the context holds " +
                          std::to_string(state.n_ctx) + " (one position must stay free for the answer); " +
                          "shorten the prompt or start the server with a larger -c",
                      "messages");
  }
}

std::shared_ptr<const Steering> request_steering(const ServerState& state, const CompletionRequest& request) {
  if (!request.steering || request.steering->empty()) return nullptr;
  const SteeringSpec& spec = *request.steering;
  // Every name is checked here, so that a missing one is a 404 (the resolver's
  // failures inside compile_steering are 400s). Names resolve through the
  // registry, whose rules (no link out of the folder) the vector endpoints share.
  for (const std::string& name : steering_vector_names(spec)) state.vectors->path_of(name);
  CompileOptions options;
  options.engine = state.engine;
  options.lookup_name = state.vectors->lookup();
  options.resolve_name = state.vectors->resolver();
  try {
    return compile_steering(spec, state.model, options);
  } catch (const Error& error) {
    // A vector of another model, a block the model lacks, an ActAdd prompt too short.
    throw bad_request(std::string("steering: ") + error.what(), "steering");
  }
}

}  // namespace tiller::server

// A parsed request made concrete for the loaded model: the prompt's tokens (and
// the layout steering positions refer to), checked against the context, and the
// steering compiled with its vectors from the vector folder. Faults are ApiErrors:
// an unknown vector 404, a prompt too long or a steering the model refuses 400.
#pragma once

#include <memory>

#include "server/request.h"
#include "server/server_state.h"
#include "tiller/prompt.h"

namespace tiller::server {

// The request's prompt (a plain prompt, or the conversation in the model's chat
// format with the assistant's turn opened). A conversation of at most a system
// message and one user message is built exactly as `tiller run --chat` builds it,
// so that the same prompt gives the same tokens (and ActAdd's user alignment).
Prompt request_prompt(const ServerState& state, const CompletionRequest& request);

// 400 when the prompt is empty or leaves no room in the context for a token.
void check_fits_context(const ServerState& state, const Prompt& prompt);

// Null when the request has no steering (or an empty one).
std::shared_ptr<const Steering> request_steering(const ServerState& state, const CompletionRequest& request);

}  // namespace tiller::server

#include "tiller/generate.h"

namespace tiller {

ComparedGeneration generate_compared(Session& session, SteeringBinding& steering, std::span<const TokenId> prompt,
                                     const GenerationOptions& options) {
  ComparedGeneration out;
  steering.detach();
  session.reset();
  out.unsteered = generate(session, prompt, options);
  session.reset();
  steering.attach(session);
  try {
    out.steered = generate(session, prompt, options);
  } catch (...) {
    steering.detach();
    throw;
  }
  steering.detach();
  return out;
}

}  // namespace tiller

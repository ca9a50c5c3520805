// Loads a model through the installed package and prints its block count. The
// umbrella header compiles every public header outside the tree.
#include <tiller/tiller.h>

#include <cstdio>
#include <exception>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer MODEL.gguf\n");
    return 2;
  }
  try {
    const auto model = tiller::Model::load(argv[1]);
    std::printf("%lld\n", static_cast<long long>(model->config().n_layer));
  } catch (const tiller::Error& error) {
    std::fprintf(stderr, "consumer: error: %s\n", error.what());
    return 1;
  }
}

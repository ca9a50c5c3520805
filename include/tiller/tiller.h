// Every public header of Tiller, in alphabetical order: `#include <tiller/tiller.h>`
// is the whole API. A new public header is added here too (the InstalledPackage
// test checks that none is missing).
#pragma once

#include "tiller/actadd.h"
#include "tiller/chat.h"
#include "tiller/control_vector.h"
#include "tiller/cpu_features.h"
#include "tiller/dequantize.h"
#include "tiller/engine.h"
#include "tiller/error.h"
#include "tiller/generate.h"
#include "tiller/gguf.h"
#include "tiller/hooks.h"
#include "tiller/model.h"
#include "tiller/model_config.h"
#include "tiller/model_paths.h"
#include "tiller/pair_dataset.h"
#include "tiller/printable.h"
#include "tiller/prompt.h"
#include "tiller/sampler.h"
#include "tiller/steer.h"
#include "tiller/steering_spec.h"
#include "tiller/stop_strings.h"
#include "tiller/tensor_type.h"
#include "tiller/thread_pool.h"
#include "tiller/tokenizer.h"
#include "tiller/train.h"

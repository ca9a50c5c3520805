#include "tiller/train.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

#include <Eigen/Dense>

#include "tiller/printable.h"
#include "steer/top_eigenvector.h"
#include "common/fail.h"

namespace tiller {
namespace {

bool is_pca(TrainMethod method) { return method != TrainMethod::Mean; }

// The row a prompt of `length` tokens is read at (Index), checked.
int index_in(const ReadToken& read, size_t length) {
  return read.index >= 0 ? read.index : static_cast<int>(length) + read.index;
}

void check_prompt(const std::vector<TokenId>& tokens, const ReadToken& read, size_t pair, const char* which) {
  if (tokens.empty()) fail("pair {}: the {} prompt has no tokens", pair + 1, which);
  if (read.kind != ReadToken::Kind::Index) return;
  const int k = index_in(read, tokens.size());
  if (k < 0 || k >= static_cast<int>(tokens.size())) {
    fail("pair {}: the {} prompt has {} tokens, too few for --read index:{}", pair + 1, which, tokens.size(),
         read.index);
  }
}

// The per-block sums the directions come from: exact for any number of pairs, and
// no larger than n_embd^2 doubles per block.
struct LayerSums {
  Eigen::VectorXd sum;     // sum of d = pos - neg
  Eigen::MatrixXd moment;  // sum of d d^T (lower triangle), PCA only
};

}  // namespace

TrainMethod parse_train_method(std::string_view name) {
  if (name == "mean") return TrainMethod::Mean;
  if (name == "pca-diff") return TrainMethod::PcaDiff;
  if (name == "pca-center") return TrainMethod::PcaCenter;
  fail("method '{}' is none of mean, pca-diff, pca-center", printable(name));
}

std::string_view train_method_name(TrainMethod method) {
  switch (method) {
    case TrainMethod::Mean: return "mean";
    case TrainMethod::PcaDiff: return "pca-diff";
    case TrainMethod::PcaCenter: return "pca-center";
  }
  return "unknown";
}

TrainScale parse_train_scale(std::string_view name) {
  if (name == "unit") return TrainScale::Unit;
  if (name == "projection") return TrainScale::Projection;
  fail("scale '{}' is neither unit nor projection", printable(name));
}

ReadToken parse_read_token(std::string_view text) {
  if (text == "last") return {ReadToken::Kind::Last, 0};
  if (text == "mean") return {ReadToken::Kind::Mean, 0};
  if (text.starts_with("index:")) {
    const std::string_view number = text.substr(6);
    int value = 0;
    const auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), value);
    if (error == std::errc() && end == number.data() + number.size() && !number.empty()) {
      return {ReadToken::Kind::Index, value};
    }
  }
  fail("--read '{}' is none of last, mean, index:K (K from 0, or negative from the end)", printable(text));
}

namespace {

int parse_block(std::string_view text, std::string_view whole, std::string_view what) {
  int value = -1;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty() || value < 0) {
    fail("{} '{}' is not A-B or L (blocks from 0)", what, printable(whole));
  }
  return value;
}

}  // namespace

std::vector<int> parse_block_range(std::string_view text, int64_t n_layer, std::string_view what) {
  std::vector<int> layers;
  int first = 1, last = static_cast<int>(n_layer) - 1;
  if (!text.empty()) {
    const auto dash = text.find('-');
    first = parse_block(text.substr(0, dash), text, what);
    last = dash == std::string_view::npos ? first : parse_block(text.substr(dash + 1), text, what);
    if (last < first) fail("{} '{}': the range is empty", what, printable(text));
    if (last >= n_layer) fail("{} '{}': the model has blocks 0 to {}", what, printable(text), n_layer - 1);
  }
  for (int layer = first; layer <= last; ++layer) layers.push_back(layer);
  return layers;
}

TrainResult train_control_vector(const std::shared_ptr<const Model>& model, const std::vector<TokenPair>& pairs,
                                 const TrainOptions& options) {
  const ModelConfig& config = model->config();
  const int64_t width = config.n_embd;
  if (pairs.empty()) fail("no prompt pairs to train on");
  if (is_pca(options.method) && pairs.size() < 2) {
    fail("{} needs at least 2 pairs, not {}", train_method_name(options.method), pairs.size());
  }
  if (options.layers.empty()) fail("no blocks to read");
  const std::set<int> unique(options.layers.begin(), options.layers.end());
  for (const int layer : unique) {
    if (layer < 0 || layer >= config.n_layer) {
      fail("block {} does not exist (the model has blocks 0 to {})", layer, config.n_layer - 1);
    }
  }
  const std::vector<int> layers(unique.begin(), unique.end());
  if (options.n_batch <= 0) fail("batch size {} must be positive", options.n_batch);
  size_t longest = 0;
  for (size_t p = 0; p < pairs.size(); ++p) {
    check_prompt(pairs[p].positive, options.read, p, "positive");
    check_prompt(pairs[p].negative, options.read, p, "negative");
    longest = std::max(longest, pairs[p].positive.size() + pairs[p].negative.size());
  }

  // The cache is scratch for one pass: whole pairs up to n_batch tokens, or one
  // longer pair alone.
  const int n_ctx = std::max(options.n_batch, static_cast<int>(longest));
  auto engine = options.engine ? options.engine
                               : Engine::create({.n_threads = options.n_threads, .kernels = std::nullopt});
  Session session(model, std::move(engine), {.n_ctx = n_ctx, .n_batch = options.n_batch});

  // One pass's reads: [layer][sequence][width], sequences 2j (positive) and 2j + 1.
  std::vector<double> reads;
  std::vector<int32_t> slot_sequence;  // cache slot -> sequence
  std::vector<int> lengths;
  size_t n_sequences = 0;
  const ReadToken read = options.read;
  for (size_t li = 0; li < layers.size(); ++li) {
    session.add_hook(layers[li], options.point, [&, li](const HookRows& rows) {
      for (int64_t r = 0; r < rows.n_rows; ++r) {
        const int32_t sequence = slot_sequence[static_cast<size_t>(rows.first_position + r)];
        const int length = lengths[static_cast<size_t>(sequence)];
        const int position = rows.position(r);
        double weight = 1.0;
        switch (read.kind) {
          case ReadToken::Kind::Last:
            if (position != length - 1) continue;
            break;
          case ReadToken::Kind::Mean: weight = 1.0 / length; break;
          case ReadToken::Kind::Index:
            if (position != index_in(read, static_cast<size_t>(length))) continue;
            break;
        }
        double* into = reads.data() + (li * n_sequences + static_cast<size_t>(sequence)) * static_cast<size_t>(width);
        const float* row = rows.data + r * rows.width;
        for (int64_t i = 0; i < width; ++i) into[i] += weight * row[i];
      }
    });
  }

  std::vector<LayerSums> sums(layers.size());
  for (LayerSums& s : sums) {
    s.sum = Eigen::VectorXd::Zero(width);
    if (is_pca(options.method)) s.moment = Eigen::MatrixXd::Zero(width, width);
  }
  TrainResult result;
  std::vector<TokenId> tokens;
  Eigen::MatrixXd differences;
  for (size_t first = 0; first < pairs.size();) {
    // Pack whole pairs while they fit in one batch.
    tokens.clear();
    lengths.clear();
    slot_sequence.clear();
    size_t last = first;
    while (last < pairs.size()) {
      const size_t size = pairs[last].positive.size() + pairs[last].negative.size();
      if (last > first && tokens.size() + size > static_cast<size_t>(options.n_batch)) break;
      for (const auto* prompt : {&pairs[last].positive, &pairs[last].negative}) {
        tokens.insert(tokens.end(), prompt->begin(), prompt->end());
        slot_sequence.insert(slot_sequence.end(), prompt->size(), static_cast<int32_t>(lengths.size()));
        lengths.push_back(static_cast<int>(prompt->size()));
      }
      ++last;
    }
    n_sequences = lengths.size();
    reads.assign(layers.size() * n_sequences * static_cast<size_t>(width), 0.0);
    session.decode_packed(tokens, lengths, Session::PackedLogits::None);

    const auto n_pairs = static_cast<Eigen::Index>(last - first);
    differences.resize(n_pairs, width);
    for (size_t li = 0; li < layers.size(); ++li) {
      for (Eigen::Index j = 0; j < n_pairs; ++j) {
        const double* pos = reads.data() + (li * n_sequences + 2 * static_cast<size_t>(j)) * static_cast<size_t>(width);
        const double* neg = pos + width;
        for (int64_t i = 0; i < width; ++i) differences(j, i) = pos[i] - neg[i];
      }
      sums[li].sum += differences.colwise().sum().transpose();
      if (is_pca(options.method)) sums[li].moment.selfadjointView<Eigen::Lower>().rankUpdate(differences.transpose());
    }
    result.pairs += last - first;
    result.tokens += tokens.size();
    ++result.passes;
    first = last;
    if (options.progress) options.progress(result.pairs, result.tokens);
  }

  result.vector.model_hint = config.architecture;
  result.vector.n_embd = width;
  const double n = static_cast<double>(pairs.size());
  for (size_t li = 0; li < layers.size(); ++li) {
    const Eigen::VectorXd mean = sums[li].sum / n;
    if (mean.norm() == 0) {
      fail("{}: the positive and negative prompts read the same there: no direction", hook_name(layers[li], options.point));
    }
    Eigen::VectorXd v = mean;
    double explained = 1.0;
    if (is_pca(options.method)) {
      Eigen::MatrixXd covariance = sums[li].moment.selfadjointView<Eigen::Lower>();
      covariance /= n;
      if (options.method == TrainMethod::PcaDiff) covariance -= mean * mean.transpose();
      // Lanczos starts from the mean difference, tilted by a fixed vector so that it
      // is never orthogonal to the answer.
      Eigen::VectorXd start = mean.normalized();
      for (int64_t i = 0; i < width; ++i) start(i) += 0.01 * std::sin(1.0 + static_cast<double>(i));
      const TopEigen top = top_eigenvector(covariance, start);
      v = top.vector;
      const double trace = covariance.trace();
      explained = trace > 0 ? top.value / trace : 0.0;
    }
    Eigen::VectorXd unit = v.normalized();
    // The sign: positive examples project higher than negative ones, on average.
    if (unit.dot(mean) < 0) unit = -unit;
    const double gap = unit.dot(mean);
    const Eigen::VectorXd direction = options.scale == TrainScale::Unit ? unit : Eigen::VectorXd(unit * gap);
    std::vector<float>& out = result.vector.directions[layers[li]];
    out.resize(static_cast<size_t>(width));
    for (int64_t i = 0; i < width; ++i) out[static_cast<size_t>(i)] = static_cast<float>(direction(i));
    result.layers.push_back({layers[li], gap, explained});
  }
  return result;
}

}  // namespace tiller

#include "steer/top_eigenvector.h"

#include <algorithm>
#include <cmath>

namespace tiller {

TopEigen top_eigenvector(const Eigen::MatrixXd& matrix, const Eigen::VectorXd& start) {
  const Eigen::Index n = matrix.rows();
  const Eigen::Index max_steps = std::min<Eigen::Index>(n, 64);
  TopEigen best{start.normalized(), 0.0};
  Eigen::MatrixXd basis(n, max_steps);
  Eigen::VectorXd alpha(max_steps), beta(max_steps);
  for (int restart = 0; restart < 50; ++restart) {
    Eigen::VectorXd q = best.vector;
    Eigen::Index steps = 0;
    for (Eigen::Index j = 0; j < max_steps; ++j) {
      basis.col(j) = q;
      Eigen::VectorXd z = matrix * q;
      alpha(j) = q.dot(z);
      // Twice Gram-Schmidt against every basis vector: the basis stays orthogonal
      // in floating point, so no spurious copies of the top eigenvalue appear.
      for (int pass = 0; pass < 2; ++pass) {
        z -= basis.leftCols(j + 1) * (basis.leftCols(j + 1).transpose() * z);
      }
      steps = j + 1;
      beta(j) = z.norm();
      if (beta(j) <= 1e-14 * std::max(std::fabs(alpha(j)), 1e-300)) break;  // the subspace is invariant
      q = z / beta(j);
    }
    // The projected matrix is tridiagonal: alpha on the diagonal, beta beside it.
    Eigen::MatrixXd projected = Eigen::MatrixXd::Zero(steps, steps);
    for (Eigen::Index j = 0; j < steps; ++j) {
      projected(j, j) = alpha(j);
      if (j + 1 < steps) projected(j, j + 1) = projected(j + 1, j) = beta(j);
    }
    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> small(projected);
    best.vector = (basis.leftCols(steps) * small.eigenvectors().col(steps - 1)).normalized();
    best.value = best.vector.dot(matrix * best.vector);
    const double residual = (matrix * best.vector - best.value * best.vector).norm();
    if (residual <= 1e-10 * std::fabs(best.value) || best.value == 0) break;
  }
  return best;
}

}  // namespace tiller

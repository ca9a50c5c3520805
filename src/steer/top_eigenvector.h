// The eigenvector of a symmetric matrix's largest eigenvalue, without a full
// eigendecomposition: vector training needs only the first principal component,
// and a full solve costs O(n^3) per block (about 0.4 s at n = 576).
#pragma once

#include <Eigen/Dense>

namespace tiller {

struct TopEigen {
  Eigen::VectorXd vector;  // unit length
  double value = 0;
};

// Restarted Lanczos with full reorthogonalization (Krylov subspaces of up to 64
// vectors, each restarted from the last Ritz vector) until |A v - l v| <= 1e-10 |l|.
// `matrix` must be symmetric (both triangles); `start` must not be zero.
TopEigen top_eigenvector(const Eigen::MatrixXd& matrix, const Eigen::VectorXd& start);

}  // namespace tiller

#!/usr/bin/env python3
"""Reference fit for tally's logistic-regression baseline (src/insights/models/logistic.h).

    scripts/python tests/insights/logistic_reference.py FIXTURE.json OUT.json
    scripts/python tests/insights/logistic_reference.py --write-fixture FIXTURE.json

The first form fits scikit-learn's LogisticRegression without a penalty on the fixture's rows
(x, y) and writes the intercept, the coefficients (original feature scale) and each row's
probability; tests/unit/models_test.cpp compares the C++ IRLS fit to them to 1e-4. The second
regenerates the committed fixture (tests/insights/logistic_fixture.json) from a fixed seed.
"""

import json
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression


def write_fixture(path):
    rng = np.random.default_rng(20261124)
    n, k = 400, 5
    scales = np.array([1.0, 10.0, 0.1, 100.0, 3.0])
    x = rng.normal(size=(n, k)) * scales + np.array([0.0, 50.0, 1.0, -20.0, 5.0])
    beta = np.array([0.8, -0.05, 4.0, 0.004, 0.3])
    z = -0.5 + (x - x.mean(axis=0)) @ beta
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-z))).astype(int)
    with open(path, "w") as f:
        json.dump({"x": [[round(float(v), 6) for v in row] for row in x], "y": y.tolist()}, f)
        f.write("\n")


def fit(fixture, out):
    with open(fixture) as f:
        data = json.load(f)
    x = np.array(data["x"], dtype=float)
    y = np.array(data["y"], dtype=int)
    try:
        model = LogisticRegression(penalty=None, solver="newton-cholesky", tol=1e-12, max_iter=10000)
    except TypeError:  # scikit-learn before 1.2 spells "no penalty" as the string "none"
        model = LogisticRegression(penalty="none", solver="newton-cholesky", tol=1e-12, max_iter=10000)
    model.fit(x, y)
    result = {
        "intercept": float(model.intercept_[0]),
        "coef": [float(c) for c in model.coef_[0]],
        "probability": [float(p) for p in model.predict_proba(x)[:, 1]],
    }
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--write-fixture":
        write_fixture(sys.argv[2])
    elif len(sys.argv) == 3:
        fit(sys.argv[1], sys.argv[2])
    else:
        sys.exit(__doc__)

#!/usr/bin/env python3
"""Reference values for tally's A/B statistics (src/insights/abtest.h), computed with scipy.

    scripts/python tests/insights/ab_reference.py FIXTURES.json OUT.json
    scripts/python tests/insights/ab_reference.py --write-fixtures FIXTURES.json

The first form reads the fixture inputs and writes, for every section and case name, the values
the C++ functions must reproduce (tests/unit/abtest_test.cpp compares them to 1e-6). The second
regenerates the committed fixtures (tests/insights/ab_fixtures.json) from fixed seeds.

Wherever scipy has the method, scipy computes it: ttest_ind / ttest_ind_from_stats (Welch),
chi2_contingency (the pooled two-proportion z test is its square root), chisquare (SRM),
integrate.quad over beta densities (beta-binomial probability and losses), norm.expect (normal
model losses), optimize.brentq (inverting the confidence sequence for its p-value). Formulas
that scipy does not have (delta-method standard errors, Holm, Benjamini-Hochberg, sample size)
are written out from docs/abtest.md, independently of the C++ code. Some values are computed two
ways and cross-checked here; a disagreement makes the script fail.
"""

import json
import math
import sys
import warnings

import numpy as np
from scipy import integrate, optimize, special, stats

NAN = float("nan")
INF = float("inf")


def fail(message):
    raise SystemExit("ab_reference.py: " + message)


# ---- arms -----------------------------------------------------------------------------------


def mean_arm(spec):
    """(n, mean, variance with n - 1) from {"values": [...]} or {"n", "sum", "sum_sq"}."""
    if "values" in spec:
        v = np.asarray(spec["values"], dtype=float)
        return len(v), float(np.mean(v)), float(np.var(v, ddof=1))
    n, s, ss = spec["n"], spec["sum"], spec["sum_sq"]
    dev = ss - s * (s / n)
    if dev <= 1e-10 * ss:
        dev = 0.0
    return n, s / n, dev / (n - 1)


def relative_se(mc, mt, var_mean_c, var_mean_t):
    """Delta-method se of (mt - mc) / mc."""
    if mc == 0:
        return NAN
    return math.sqrt(var_mean_t / mc**2 + var_mean_c * mt**2 / mc**4)


def interval(estimate, halfwidth, two_sided):
    if math.isnan(estimate):
        return NAN, NAN
    if not two_sided:
        return estimate - halfwidth, INF
    return estimate - halfwidth, estimate + halfwidth


def put_interval(out, name, lo_hi):
    out[name + "_lo"], out[name + "_hi"] = lo_hi


def frequentist_fields(mc, mt, vmc, vmt, se_test, statistic, df, p, q, two_sided):
    """Fields shared by the z and t tests; q is the critical value for the intervals."""
    abs_lift = mt - mc
    se_abs = math.sqrt(vmc + vmt)
    rel = abs_lift / mc if mc != 0 else NAN
    se_rel = relative_se(mc, mt, vmc, vmt)
    out = {
        "mean_control": mc,
        "mean_treatment": mt,
        "abs_lift": abs_lift,
        "rel_lift": rel,
        "se_abs": se_abs,
        "se_rel": se_rel,
        "se_test": se_test,
        "statistic": statistic,
        "df": df,
        "p_value": p,
    }
    put_interval(out, "ci_abs", interval(abs_lift, 0.0 if se_abs == 0 else q * se_abs, two_sided))
    put_interval(out, "ci_rel", interval(rel, 0.0 if se_rel == 0 else q * se_rel, two_sided))
    return out


# ---- frequentist ----------------------------------------------------------------------------


def proportion(case):
    (nc, xc), (nt, xt) = case["control"], case["treatment"]
    alpha, two_sided = case["alpha"], case["two_sided"]
    pc, pt = xc / nc, xt / nt
    pooled = (xc + xt) / (nc + nt)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / nc + 1 / nt))
    if se_pooled == 0:
        z, p = 0.0, 1.0
    else:
        z = (pt - pc) / se_pooled  # statsmodels proportions_ztest(prop_var=False)
        if two_sided:
            # Independent check: the pooled z test is the uncorrected chi-square test of the 2x2.
            table = [[xt, nt - xt], [xc, nc - xc]]
            chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
            if abs(math.sqrt(chi2) - abs(z)) > 1e-9 * max(1, abs(z)):
                fail(f"proportion {case['name']}: sqrt(chi2) {math.sqrt(chi2)} != |z| {abs(z)}")
        else:
            p = stats.norm.sf(z)
    q = stats.norm.isf(alpha / 2 if two_sided else alpha)
    return frequentist_fields(pc, pt, pc * (1 - pc) / nc, pt * (1 - pt) / nt, se_pooled, z, INF,
                              p, q, two_sided)


def t_isf(tail, df):
    """q with P(T > q) = tail. scipy's t.isf (cephes stdtrit) is off by ~1e-9 at small df; one
    Newton step on t.sf brings it to rounding level."""
    q = stats.t.isf(tail, df)
    return q + (stats.t.sf(q, df) - tail) / stats.t.pdf(q, df)


def welch_df(vc, nc, vt, nt):
    a, b = vc / nc, vt / nt
    if a + b == 0:
        return NAN
    return (a + b) ** 2 / (a**2 / (nc - 1) + b**2 / (nt - 1))


def welch(case):
    alpha, two_sided = case["alpha"], case["two_sided"]
    nc, mc, vc = mean_arm(case["control"])
    nt, mt, vt = mean_arm(case["treatment"])
    alternative = "two-sided" if two_sided else "greater"
    df = welch_df(vc, nc, vt, nt)
    if vc == 0 and vt == 0:
        if mt != mc:
            fail(f"welch {case['name']}: zero variance and different means is an error case")
        t, p = 0.0, 1.0
    elif "values" in case["control"] and "values" in case["treatment"]:
        with warnings.catch_warnings():
            # scipy warns when one arm is constant ("constant_control"); the result is exact.
            warnings.simplefilter("ignore", RuntimeWarning)
            res = stats.ttest_ind(case["treatment"]["values"], case["control"]["values"],
                                  equal_var=False, alternative=alternative)
        t, p = float(res.statistic), float(res.pvalue)
    else:
        res = stats.ttest_ind_from_stats(mt, math.sqrt(vt), nt, mc, math.sqrt(vc), nc,
                                         equal_var=False, alternative=alternative)
        t, p = float(res.statistic), float(res.pvalue)
    q = 0.0 if math.isnan(df) else t_isf(alpha / 2 if two_sided else alpha, df)
    se = math.sqrt(vc / nc + vt / nt)
    return frequentist_fields(mc, mt, vc / nc, vt / nt, se, t, df, p, q, two_sided)


# ---- Bayesian -------------------------------------------------------------------------------

TAIL = 1e-15


def beta_points(a, b):
    return [stats.beta.ppf(u, a, b) for u in (1e-9, 1e-4, 0.01, 0.5, 0.99)] + [
        stats.beta.isf(u, a, b) for u in (1e-4, 1e-9)]


def quad(f, lo, hi, points):
    inside = sorted({x for x in points if lo < x < hi})  # breakpoints strictly inside
    value, error = integrate.quad(f, lo, hi, points=inside or None, limit=2000, epsabs=1e-14,
                                  epsrel=1e-12)
    if error > 1e-9:
        fail(f"quad error estimate {error} too large")
    return value


def prob_b_beats_a_closed_form(aa, ba, ab, bb):
    """Evan Miller's exact sum for P(B > A), A ~ Beta(aa, ba), B ~ Beta(ab, bb), integer ab."""
    i = np.arange(int(ab), dtype=float)
    log_terms = (special.betaln(aa + i, ba + bb) - np.log(bb + i) - special.betaln(1 + i, bb)
                 - special.betaln(aa, ba))
    return float(np.exp(log_terms).sum())


def beta_cdf(x, a, b):
    return special.betainc(a, b, x)


def beta_sf(x, a, b):
    return special.betainc(b, a, 1 - x)


def unnormalized_beta_pdf(a, b):
    """x -> the Beta(a, b) density up to a constant, scaled to 1 at the mode (no betaln, whose
    lgamma-based error is about 1e-9 at a million units)."""
    mode = min(max((a - 1) / (a + b - 2), 0.0), 1.0) if a + b > 2 else 0.5
    peak = special.xlogy(a - 1, mode) + special.xlog1py(b - 1, -mode)
    if not math.isfinite(peak):
        peak = 0.0
    return lambda x: math.exp(special.xlogy(a - 1, x) + special.xlog1py(b - 1, -x) - peak)


def beta_binomial(case):
    (nc, xc), (nt, xt) = case["control"], case["treatment"]
    a0, b0 = case["prior"]
    credible = case["credible"]
    ac, bc = a0 + xc, b0 + nc - xc
    at, bt = a0 + xt, b0 + nt - xt
    mc, mt = ac / (ac + bc), at / (at + bt)
    vc = stats.beta.var(ac, bc)
    vt = stats.beta.var(at, bt)

    # P(T > C) = integral of f_C(x) P(T > x) dx over the control posterior: over its central
    # 1 - 2e-15, or over all of [0, 1] when the density is infinite at an end (shape below 1),
    # where quad's extrapolation (QAGS; breakpoints would switch it to QAGP, which is worse at
    # end singularities) handles the singularity and a cut would not. The density is normalized
    # by integrating it the same way.
    points = beta_points(ac, bc) + beta_points(at, bt)
    density = unnormalized_beta_pdf(ac, bc)
    if ac < 1 or bc < 1:
        lo, hi, pts = 0.0, 1.0, []
    else:
        lo, hi, pts = stats.beta.ppf(TAIL, ac, bc), stats.beta.isf(TAIL, ac, bc), points
    p_better = quad(lambda x: density(x) * beta_sf(x, at, bt), lo, hi, pts) / \
        quad(density, lo, hi, pts)
    if float(at).is_integer():
        # betaln goes through lgamma, whose absolute error grows with the argument (about 1e-9
        # at a million units), so the check is looser for large arms.
        exact = prob_b_beats_a_closed_form(ac, bc, at, bt)
        if abs(exact - p_better) > (1e-10 if max(ac + bc, at + bt) < 1e4 else 1e-7):
            fail(f"beta_binomial {case['name']}: quad {p_better} != closed form {exact}")

    # Losses through E[max(T, C)] = integral over [0, 1] of 1 - F_T(x) F_C(x); below `lo` both
    # cdfs are under 1e-15, so that part is `lo`.
    lo = min(stats.beta.ppf(TAIL, ac, bc), stats.beta.ppf(TAIL, at, bt))
    hi = max(stats.beta.isf(TAIL, ac, bc), stats.beta.isf(TAIL, at, bt))
    e_max = lo + quad(lambda x: 1 - beta_cdf(x, ac, bc) * beta_cdf(x, at, bt), lo, hi, points)

    z = stats.norm.isf((1 - credible) / 2)
    sd_abs = math.sqrt(vc + vt)
    log_mean = special.digamma(at) - special.digamma(at + bt) - special.digamma(ac) + \
        special.digamma(ac + bc)
    log_sd = math.sqrt(special.polygamma(1, at) - special.polygamma(1, at + bt)
                       + special.polygamma(1, ac) - special.polygamma(1, ac + bc))
    out = {
        "mean_control": mc,
        "mean_treatment": mt,
        "abs_lift": mt - mc,
        "rel_lift": mt / mc - 1,
        "sd_abs": sd_abs,
        "prob_treatment_better": p_better,
        "expected_loss_control": max(e_max - mc, 0.0),
        "expected_loss_treatment": max(e_max - mt, 0.0),
    }
    put_interval(out, "ci_abs", (mt - mc - z * sd_abs, mt - mc + z * sd_abs))
    put_interval(out, "ci_rel", (math.expm1(log_mean - z * log_sd),
                                 math.expm1(log_mean + z * log_sd)))
    return out


def posterior(estimate, var, prior):
    """Conjugate normal update; prior is None (flat) or (mean, variance)."""
    if prior is None:
        return estimate, var
    pm, pv = prior
    precision = 1 / pv + 1 / var
    return (pm / pv + estimate / var) / precision, 1 / precision


def normal_model(case):
    nc, mc, vc = mean_arm(case["control"])
    nt, mt, vt = mean_arm(case["treatment"])
    prior, credible = case["prior"], case["credible"]
    var_abs = vc / nc + vt / nt
    abs_prior = None if prior is None else (prior[0] * abs(mc), prior[1] * mc**2)
    m, v = posterior(mt - mc, var_abs, abs_prior)
    s = math.sqrt(v)
    post = stats.norm(m, s)
    out = {
        "mean_control": mc,
        "mean_treatment": mt,
        "abs_lift": m,
        "sd_abs": s,
        "prob_treatment_better": post.sf(0),
        # E[max(D, 0)] and E[max(-D, 0)] by quadrature over the posterior.
        "expected_loss_control": post.expect(lambda x: x, lb=0),
        "expected_loss_treatment": post.expect(lambda x: -x, ub=0),
    }
    put_interval(out, "ci_abs", post.ppf([(1 - credible) / 2, (1 + credible) / 2]))
    if mc == 0:
        out["rel_lift"] = NAN
        put_interval(out, "ci_rel", (NAN, NAN))
    else:
        se_rel = relative_se(mc, mt, vc / nc, vt / nt)
        rm, rv = posterior((mt - mc) / mc, se_rel**2, prior)
        out["rel_lift"] = rm
        put_interval(out, "ci_rel", stats.norm(rm, math.sqrt(rv)).ppf(
            [(1 - credible) / 2, (1 + credible) / 2]))
    return out


# ---- sequential -----------------------------------------------------------------------------


def sequential_fields(mc, mt, vmc, vmt, n, alpha, two_sided, tuning):
    a = alpha if two_sided else 2 * alpha
    rho = math.sqrt((-2 * math.log(a) + math.log(-2 * math.log(a) + 1)) / tuning)
    nr2 = n * rho**2

    def factor(level):  # half-width / se of the sequence at level `level`, rho fixed
        if two_sided:
            return math.sqrt(2 * (nr2 + 1) / nr2 * math.log(math.sqrt(nr2 + 1) / level))
        return math.sqrt(2 * (nr2 + 1) / nr2 * math.log(1 + math.sqrt(nr2 + 1) / (2 * level)))

    diff = mt - mc
    se_abs = math.sqrt(vmc + vmt)
    rel = diff / mc if mc != 0 else NAN
    se_rel = relative_se(mc, mt, vmc, vmt)
    # p-value: the level at which the sequence's edge reaches 0, found numerically (brentq on
    # log(level)) rather than by the closed form the C++ code uses.
    if se_abs == 0:
        p = 1.0
    elif not two_sided and diff <= 0:
        p = 1.0
    else:
        g = lambda log_level: factor(math.exp(log_level)) * se_abs - abs(diff)
        if g(0.0) >= 0:
            p = 1.0
        elif g(-745.0) < 0:
            p = 0.0  # below the smallest double
        else:
            p = math.exp(optimize.brentq(g, -745.0, 0.0, xtol=1e-14, rtol=1e-13))
    z = stats.norm.isf(alpha / 2 if two_sided else alpha)
    hw = factor(alpha)
    out = {
        "mean_control": mc,
        "mean_treatment": mt,
        "abs_lift": diff,
        "rel_lift": rel,
        "se_abs": se_abs,
        "se_rel": se_rel,
        "rho": rho,
        "p_value": p,
    }
    put_interval(out, "ci_abs", interval(diff, hw * se_abs, two_sided))
    put_interval(out, "ci_rel", interval(rel, hw * se_rel, two_sided))
    put_interval(out, "fixed_ci_abs", interval(diff, z * se_abs, two_sided))
    put_interval(out, "fixed_ci_rel", interval(rel, z * se_rel, two_sided))
    return out


def sequential_mean(case):
    nc, mc, vc = mean_arm(case["control"])
    nt, mt, vt = mean_arm(case["treatment"])
    return sequential_fields(mc, mt, vc / nc, vt / nt, nc + nt, case["alpha"], case["two_sided"],
                             case["tuning"])


def sequential_proportion(case):
    (nc, xc), (nt, xt) = case["control"], case["treatment"]
    pc, pt = xc / nc, xt / nt
    return sequential_fields(pc, pt, pc * (1 - pc) / nc, pt * (1 - pt) / nt, nc + nt,
                             case["alpha"], case["two_sided"], case["tuning"])


# ---- CUPED ----------------------------------------------------------------------------------


def cuped(case):
    alpha, two_sided = case["alpha"], case["two_sided"]
    yc, xc = (np.asarray(case["control"][k], dtype=float) for k in ("y", "x"))
    yt, xt = (np.asarray(case["treatment"][k], dtype=float) for k in ("y", "x"))
    y, x = np.concatenate([yc, yt]), np.concatenate([xc, xt])
    var_x = np.var(x, ddof=1)
    theta = 0.0 if var_x <= 1e-10 * np.mean(x * x) * len(x) / (len(x) - 1) else \
        float(np.cov(x, y, ddof=1)[0, 1] / var_x)
    # The adjusted per-unit values; Welch on them is the CUPED test.
    ac, at = yc - theta * (xc - x.mean()), yt - theta * (xt - x.mean())
    wc = {"values": list(ac)}
    wt = {"values": list(at)}
    adjusted = welch({"name": case["name"], "control": wc, "treatment": wt, "alpha": alpha,
                      "two_sided": two_sided})
    unadjusted = welch({"name": case["name"], "control": {"values": list(yc)},
                        "treatment": {"values": list(yt)}, "alpha": alpha,
                        "two_sided": two_sided})
    # The relative lift divides by the unadjusted control mean; delta method with the gradient
    # (1, -theta) / mean_yc for the treatment means and (-(1 + rel), theta) / mean_yc for the
    # control means.
    nc, nt = len(yc), len(yt)
    myc = float(yc.mean())
    diff = adjusted["abs_lift"]
    if myc == 0:
        rel, se_rel = NAN, NAN
    else:
        rel = diff / myc
        k = 1 + rel
        cov_c = np.cov(yc, xc, ddof=1)
        cov_t = np.cov(yt, xt, ddof=1)
        gt = np.array([1.0, -theta])
        gc = np.array([-k, theta])
        se_rel = math.sqrt(gt @ cov_t @ gt / nt + gc @ cov_c @ gc / nc) / abs(myc)
    q = 0.0 if math.isnan(adjusted["df"]) else t_isf(alpha / 2 if two_sided else alpha,
                                                      adjusted["df"])
    adjusted["rel_lift"], adjusted["se_rel"] = rel, se_rel
    put_interval(adjusted, "ci_rel", interval(rel, q * se_rel, two_sided))
    out = {
        "theta": theta,
        "adjusted_mean_control": float(ac.mean()),
        "adjusted_mean_treatment": float(at.mean()),
        "variance_reduction": 1 - adjusted["se_abs"] ** 2 / unadjusted["se_abs"] ** 2
        if unadjusted["se_abs"] > 0 else NAN,
    }
    out.update({"adjusted." + k: v for k, v in adjusted.items()})
    out.update({"unadjusted." + k: v for k, v in unadjusted.items()})
    return out


# ---- SRM, multiple testing ------------------------------------------------------------------


def srm(case):
    observed = np.asarray(case["observed"], dtype=float)
    weights = np.asarray(case["weights"], dtype=float)
    expected = observed.sum() * weights / weights.sum()
    res = stats.chisquare(observed, f_exp=expected)
    out = {"statistic": float(res.statistic), "df": len(observed) - 1,
           "p_value": float(res.pvalue), "mismatch": bool(res.pvalue < case["threshold"])}
    for i, e in enumerate(expected):
        out[f"expected[{i}]"] = float(e)
    return out


def holm(p):
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def benjamini_hochberg(p):
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    adjusted = [0.0] * m
    running = 1.0
    for rank in range(m - 1, -1, -1):
        i = order[rank]
        running = min(running, m / (rank + 1) * p[i])
        adjusted[i] = running
    return adjusted


def multiple(case):
    p = case["p"]
    out = {}
    for i, v in enumerate(holm(p)):
        out[f"holm[{i}]"] = v
    for i, v in enumerate(benjamini_hochberg(p)):
        out[f"bh[{i}]"] = v
    return out


# ---- power ----------------------------------------------------------------------------------


def power_fields(delta, sd_null, sd_alt, case):
    alpha, target, two_sided, n = case["alpha"], case["power"], case["two_sided"], case["n"]
    z = stats.norm.ppf(1 - alpha / 2) if two_sided else stats.norm.ppf(1 - alpha)
    exact = ((z * sd_null + stats.norm.ppf(target) * sd_alt) / delta) ** 2
    shift = abs(delta) * math.sqrt(n)
    power = stats.norm.cdf((shift - z * sd_null) / sd_alt)
    if two_sided:
        power += stats.norm.cdf((-shift - z * sd_null) / sd_alt)
    return {"n_exact": exact, "n_per_arm": math.ceil(exact), "power_at_n": power}


def power_proportion(case):
    p1 = case["baseline"]
    p2 = p1 * (1 + case["mde"])
    sd_alt = math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    pbar = (p1 + p2) / 2
    sd_null = math.sqrt(2 * pbar * (1 - pbar)) if case["variance"] == "pooled" else sd_alt
    return power_fields(p2 - p1, sd_null, sd_alt, case)


def power_mean(case):
    sd = case["sd"] * math.sqrt(2)
    return power_fields(case["mean"] * case["mde"], sd, sd, case)


SECTIONS = {
    "proportion": proportion,
    "welch": welch,
    "beta_binomial": beta_binomial,
    "normal_model": normal_model,
    "sequential_mean": sequential_mean,
    "sequential_proportion": sequential_proportion,
    "cuped": cuped,
    "srm": srm,
    "multiple": multiple,
    "power_proportion": power_proportion,
    "power_mean": power_mean,
}


def compute(fixtures):
    out = {}
    for section, function in SECTIONS.items():
        cases = fixtures.get(section)
        if not cases:
            fail(f"fixtures have no '{section}' cases")
        out[section] = {}
        for case in cases:
            if case["name"] in out[section]:
                fail(f"{section}: duplicate case name {case['name']}")
            out[section][case["name"]] = {k: float(v) for k, v in function(case).items()}
    return out


# ---- fixtures -------------------------------------------------------------------------------


def make_fixtures():
    rng = np.random.default_rng(20240611)

    def values(a):
        return [round(float(v), 4) for v in a]

    def sums(n, mean, sd):
        return {"n": n, "sum": n * mean, "sum_sq": (n - 1) * sd**2 + n * mean**2}

    def revenue(n, conversion, scale):
        paid = rng.random(n) < conversion
        return values(np.where(paid, rng.lognormal(math.log(scale), 1.2, n), 0.0))

    medium_c = values(rng.normal(10, 3, 200))
    medium_t = values(rng.normal(10.5, 3, 220))
    f = {}

    def binomial_case(name, c, t, alpha=0.05, two_sided=True, **extra):
        return dict(name=name, control=c, treatment=t, alpha=alpha, two_sided=two_sided, **extra)

    f["proportion"] = [
        binomial_case("small", [10, 2], [12, 5]),
        binomial_case("typical", [1000, 100], [1000, 120]),
        binomial_case("large", [2_000_000, 61_000], [2_000_000, 62_100]),
        binomial_case("zero_control_conversions", [500, 0], [500, 7]),
        binomial_case("zero_conversions_both", [500, 0], [400, 0]),
        binomial_case("all_converted_both", [50, 50], [60, 60]),
        binomial_case("none_vs_all", [100, 0], [100, 100]),
        binomial_case("equal_arms", [1000, 150], [1000, 150]),
        binomial_case("negative_lift", [5000, 600], [5000, 520]),
        binomial_case("unbalanced", [100, 12], [100_000, 9_800]),
        binomial_case("alpha_0_01", [20_000, 2_000], [20_000, 2_120], alpha=0.01),
        binomial_case("one_sided_positive", [3000, 300], [3000, 345], two_sided=False),
        binomial_case("one_sided_negative_effect", [3000, 300], [3000, 280], two_sided=False),
    ]

    def mean_case(name, c, t, alpha=0.05, two_sided=True):
        return dict(name=name, control=c, treatment=t, alpha=alpha, two_sided=two_sided)

    v = lambda a: {"values": a}
    f["welch"] = [
        mean_case("two_values_each", v([1.0, 3.0]), v([2.0, 7.0])),
        mean_case("three_vs_five", v([2.1, 3.4, 1.9]), v([4.0, 3.3, 5.1, 4.4, 3.9])),
        mean_case("medium_normal", v(medium_c), v(medium_t)),
        mean_case("revenue_heavy_tail", v(revenue(1500, 0.3, 20)), v(revenue(1400, 0.32, 21))),
        mean_case("equal_arms", v(medium_c), v(medium_c)),
        mean_case("negative_lift", v(medium_t), v(medium_c)),
        mean_case("alpha_0_10", v(medium_c), v(medium_t), alpha=0.10),
        mean_case("one_sided_positive", v(medium_c), v(medium_t), two_sided=False),
        mean_case("one_sided_negative_effect", v(medium_t), v(medium_c), two_sided=False),
        mean_case("zero_control_mean", v([-1.0, 1.0, -2.0, 2.0, 0.0]),
                  v([0.5, 1.5, -0.5, 1.0, 2.0])),
        mean_case("constant_control", v([5.0] * 8), v([4.0, 6.5, 5.5, 7.0, 6.0, 5.0])),
        mean_case("constant_equal_arms", v([3.0] * 5), v([3.0] * 7)),
        mean_case("large_n_sums", sums(2_000_000, 12.3, 40.0), sums(2_000_000, 12.41, 41.0)),
        mean_case("huge_n_tiny_effect", sums(50_000_000, 101.0, 12.0),
                  sums(49_990_000, 101.01, 12.0)),
        mean_case("unbalanced_sums", sums(300, 4.0, 1.5), sums(90_000, 4.1, 2.5)),
    ]

    def bb_case(name, c, t, prior=(1, 1), credible=0.95):
        return dict(name=name, control=c, treatment=t, prior=list(prior), credible=credible)

    f["beta_binomial"] = [
        bb_case("typical", [1000, 100], [1000, 120]),
        bb_case("small", [10, 2], [12, 5]),
        bb_case("large", [1_000_000, 100_000], [1_000_000, 100_600]),
        bb_case("zero_conversions_equal_n", [200, 0], [200, 0]),
        bb_case("zero_conversions_unequal_n", [200, 0], [300, 0]),
        bb_case("equal_arms", [500, 50], [500, 50]),
        bb_case("negative_lift", [4000, 480], [4000, 400]),
        bb_case("treatment_much_larger", [100, 10], [100_000, 12_000]),
        bb_case("control_much_larger", [100_000, 12_000], [100, 15]),
        bb_case("jeffreys_zero_control", [100, 0], [120, 3], prior=(0.5, 0.5)),
        bb_case("jeffreys_all_converted", [40, 40], [50, 49], prior=(0.5, 0.5)),
        bb_case("informative_prior", [300, 25], [300, 40], prior=(10, 90)),
        bb_case("well_separated", [1000, 50], [1000, 300]),
        bb_case("credible_0_90", [2000, 210], [2000, 250], credible=0.90),
        bb_case("no_units", [0, 0], [0, 0]),
    ]

    def nm_case(name, c, t, prior=None, credible=0.95):
        return dict(name=name, control=c, treatment=t, prior=prior, credible=credible)

    f["normal_model"] = [
        nm_case("flat_medium", v(medium_c), v(medium_t)),
        nm_case("flat_large_sums", sums(2_000_000, 12.3, 40.0), sums(2_000_000, 12.41, 41.0)),
        nm_case("proper_prior", v(medium_c), v(medium_t), prior=[0.0, 0.09]),
        nm_case("strong_prior", sums(5000, 20.0, 15.0), sums(5000, 21.0, 15.0),
                prior=[0.01, 0.0004]),
        nm_case("flat_negative_lift", v(medium_t), v(medium_c)),
        nm_case("flat_zero_control_mean", v([-1.0, 1.0, -2.0, 2.0, 0.0]),
                v([0.5, 1.5, -0.5, 1.0, 2.0])),
        nm_case("negative_control_mean_prior", sums(1000, -5.0, 3.0), sums(1000, -4.8, 3.0),
                prior=[0.0, 0.25]),
        nm_case("credible_0_80", v(medium_c), v(medium_t), credible=0.80),
    ]

    def seq_case(name, c, t, alpha=0.05, two_sided=True, tuning=5000):
        return dict(name=name, control=c, treatment=t, alpha=alpha, two_sided=two_sided,
                    tuning=tuning)

    f["sequential_mean"] = [
        seq_case("medium", v(medium_c), v(medium_t)),
        seq_case("large_sums", sums(2_000_000, 12.3, 40.0), sums(2_000_000, 12.41, 41.0)),
        seq_case("near_tuning", sums(2500, 10.0, 3.0), sums(2500, 10.3, 3.0)),
        seq_case("tuning_1000", sums(2500, 10.0, 3.0), sums(2500, 10.3, 3.0), tuning=1000),
        seq_case("tuning_100000", sums(2500, 10.0, 3.0), sums(2500, 10.3, 3.0), tuning=100_000),
        seq_case("alpha_0_10", sums(2500, 10.0, 3.0), sums(2500, 10.2, 3.0), alpha=0.10),
        seq_case("one_sided_positive", sums(2500, 10.0, 3.0), sums(2500, 10.25, 3.0),
                 two_sided=False),
        seq_case("one_sided_negative_effect", sums(2500, 10.0, 3.0), sums(2500, 9.8, 3.0),
                 two_sided=False),
        seq_case("equal_arms", v(medium_c), v(medium_c)),
        seq_case("very_significant", sums(200_000, 10.0, 3.0), sums(200_000, 10.05, 3.0)),
        seq_case("small_n", v([2.1, 3.4, 1.9]), v([4.0, 3.3, 5.1, 4.4, 3.9])),
    ]
    f["sequential_proportion"] = [
        seq_case("typical", [1000, 100], [1000, 120]),
        seq_case("large", [100_000, 10_000], [100_000, 10_450]),
        seq_case("zero_conversions_both", [300, 0], [300, 0]),
        seq_case("one_sided_positive", [20_000, 2_000], [20_000, 2_150], two_sided=False),
        seq_case("tuning_50000", [20_000, 2_000], [20_000, 2_150], tuning=50_000),
        seq_case("negative_lift", [8000, 900], [8000, 780]),
    ]

    def cuped_arm(n, effect, slope, noise, binary=False):
        if binary:
            x = (rng.random(n) < 0.3).astype(float)
            y = (rng.random(n) < np.where(x > 0, 0.45 + effect, 0.10 + effect)).astype(float)
        else:
            x = rng.gamma(2.0, 10.0, n)
            y = 5 + slope * x + rng.normal(0, noise, n) + effect
        return {"y": values(y), "x": values(x)}

    def cuped_case(name, c, t, alpha=0.05, two_sided=True):
        return dict(name=name, control=c, treatment=t, alpha=alpha, two_sided=two_sided)

    f["cuped"] = [
        cuped_case("strong_covariate", cuped_arm(500, 0, 0.8, 5), cuped_arm(520, 1.0, 0.8, 5)),
        cuped_case("weak_covariate", cuped_arm(400, 0, 0.02, 8), cuped_arm(410, 0.5, 0.02, 8)),
        cuped_case("binary_pre_post", cuped_arm(1500, 0, 0, 0, binary=True),
                   cuped_arm(1500, 0.03, 0, 0, binary=True)),
        cuped_case("negative_effect", cuped_arm(600, 0, 1.1, 6), cuped_arm(600, -1.5, 1.1, 6)),
        cuped_case("unequal_n", cuped_arm(300, 0, 0.5, 4), cuped_arm(1200, 0.4, 0.5, 4)),
        cuped_case("no_pre_period", {"y": medium_c, "x": [0.0] * len(medium_c)},
                   {"y": medium_t, "x": [0.0] * len(medium_t)}),
        cuped_case("one_sided", cuped_arm(500, 0, 0.8, 5), cuped_arm(500, 0.8, 0.8, 5),
                   two_sided=False),
    ]

    f["srm"] = [
        dict(name="balanced", observed=[5000, 5012], weights=[1, 1], threshold=0.001),
        dict(name="mismatch", observed=[5000, 5400], weights=[1, 1], threshold=0.001),
        dict(name="three_way", observed=[3300, 3350, 3280], weights=[1, 1, 1], threshold=0.001),
        dict(name="unequal_weights", observed=[8000, 2100], weights=[0.8, 0.2], threshold=0.001),
        dict(name="large_counts", observed=[1_000_000, 1_003_500], weights=[0.5, 0.5],
             threshold=0.001),
        dict(name="tiny_counts", observed=[3, 9], weights=[1, 1], threshold=0.001),
        dict(name="threshold_0_05", observed=[1000, 1090], weights=[1, 1], threshold=0.05),
        dict(name="empty_arm", observed=[0, 40, 38], weights=[1, 1, 1], threshold=0.001),
    ]

    f["multiple"] = [
        dict(name="basic", p=[0.01, 0.04, 0.03, 0.005]),
        dict(name="ties", p=[0.02, 0.02, 0.02, 0.5]),
        dict(name="single", p=[0.03]),
        dict(name="zero_and_one", p=[0.0, 1.0, 0.5, 0.001]),
        dict(name="capped", p=[0.3, 0.6, 0.9]),
        dict(name="twenty", p=[round(float(x), 6) for x in
                              np.concatenate([rng.uniform(0, 0.01, 5), rng.uniform(0, 1, 15)])]),
    ]

    def pp_case(name, baseline, mde, n, alpha=0.05, power=0.8, two_sided=True,
                variance="pooled"):
        return dict(name=name, baseline=baseline, mde=mde, n=n, alpha=alpha, power=power,
                    two_sided=two_sided, variance=variance)

    f["power_proportion"] = [
        pp_case("textbook_pooled", 0.10, 0.20, 3841),
        pp_case("textbook_unpooled", 0.10, 0.20, 3839, variance="unpooled"),
        pp_case("low_baseline", 0.02, 0.05, 200_000, power=0.9),
        pp_case("negative_mde", 0.30, -0.10, 2000),
        pp_case("one_sided", 0.10, 0.10, 10_000, two_sided=False),
        pp_case("alpha_0_01_unpooled", 0.25, 0.08, 8000, alpha=0.01, variance="unpooled"),
        pp_case("underpowered", 0.05, 0.10, 500),
    ]
    f["power_mean"] = [
        dict(name="revenue", mean=50.0, sd=120.0, mde=0.05, n=20_000, alpha=0.05, power=0.8,
             two_sided=True),
        dict(name="negative_mean", mean=-10.0, sd=4.0, mde=0.1, n=300, alpha=0.05, power=0.8,
             two_sided=True),
        dict(name="one_sided_power_0_9", mean=3.0, sd=2.0, mde=0.04, n=5000, alpha=0.10,
             power=0.9, two_sided=False),
    ]
    return f


def main(argv):
    if len(argv) == 3 and argv[1] == "--write-fixtures":
        with open(argv[2], "w") as out:  # one case per line
            sections = [f' "{name}": [\n' + ",\n".join("  " + json.dumps(case) for case in cases)
                        + "\n ]" for name, cases in make_fixtures().items()]
            out.write("{\n" + ",\n".join(sections) + "\n}\n")
        return
    if len(argv) != 3:
        fail("usage: ab_reference.py FIXTURES.json OUT.json | --write-fixtures FIXTURES.json")
    with open(argv[1]) as inp:
        fixtures = json.load(inp)
    result = compute(fixtures)
    with open(argv[2], "w") as out:
        json.dump(result, out, indent=1, allow_nan=True)
        out.write("\n")


if __name__ == "__main__":
    main(sys.argv)

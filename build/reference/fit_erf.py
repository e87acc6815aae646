"""Fits the polynomial coefficients used by src/Microsoft.ML.Peft/Tensors/Cpu/NormalDistribution.cs.

.NET has no erf, and GELU (erf form) needs Phi(x) = 0.5*erfc(-x/sqrt(2)) accurate to float precision.
Two Chebyshev least-squares fits against Python's math.erf / math.erfc, evaluated in double:
  |z| < 1      : erf(z)/z        = sum A[i] * (z^2)^i      (degree 10)
  1 <= z <= 6  : erfc(z)*exp(z^2) = sum B[i] * (1/z)^i     (degree 16)
Prints the coefficients and the maximum errors (relative for the erfc part). Run with /usr/bin/python3 (numpy).
"""
import math
import numpy as np

N = 8000
np.set_printoptions(precision=17)


def to_power_basis(cheb_coef, lo, hi):
    """Chebyshev series on u = (2v - (lo+hi))/(hi-lo) -> ordinary polynomial coefficients in v (lowest first)."""
    in_u = np.polynomial.Polynomial(np.polynomial.chebyshev.cheb2poly(cheb_coef))
    return in_u(np.polynomial.Polynomial([-(hi + lo) / (hi - lo), 2 / (hi - lo)])).coef


# Region A: variable s = z^2 on [0, 1].
s = np.cos(np.linspace(0, np.pi, N)) * 0.5 + 0.5
z = np.sqrt(s)
ya = np.array([math.erf(v) / v if v > 0 else 2 / math.sqrt(math.pi) for v in z])
A = to_power_basis(np.polynomial.chebyshev.chebfit(2 * s - 1, ya, 10), 0.0, 1.0)
grid = np.linspace(0, 1, 300001)
err_a = max(abs(v * np.polyval(A[::-1], v * v) - math.erf(v)) for v in grid)

# Region B: variable t = 1/z on [1/6, 1].
lo, hi = 1 / 6, 1.0
t = (np.cos(np.linspace(0, np.pi, N)) * (hi - lo) + (hi + lo)) / 2
yb = np.array([math.erfc(1 / v) * math.exp(1 / v ** 2) for v in t])
B = to_power_basis(np.polynomial.chebyshev.chebfit((2 * t - (hi + lo)) / (hi - lo), yb, 16), lo, hi)
grid = np.linspace(1, 6, 300001)
err_b = max(abs(np.polyval(B[::-1], 1 / v) / (math.erfc(v) * math.exp(v * v)) - 1) for v in grid)

print("A =", repr(A))
print("B =", repr(B))
print(f"max |erf error| on [0,1]: {err_a:.3g}; max relative erfc error on [1,6]: {err_b:.3g}")

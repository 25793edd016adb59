//! Numeric evaluation in complex arithmetic. Symbolic equivalence (`\tan^2 y + 1` vs `\sec^2 y`)
//! is decided by evaluating both sides at the same random points instead of simplifying; complex
//! values keep roots and logs of negative sample points meaningful instead of failing.

use std::collections::HashMap;

use super::node::{Const, Func, Node};

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct C {
    pub(crate) re: f64,
    pub(crate) im: f64,
}

impl C {
    pub(crate) const fn real(re: f64) -> C {
        C { re, im: 0.0 }
    }

    pub(crate) fn abs(self) -> f64 {
        self.re.hypot(self.im)
    }

    pub(crate) fn is_finite(self) -> bool {
        self.re.is_finite() && self.im.is_finite()
    }

    pub(crate) fn add(self, o: C) -> C {
        C { re: self.re + o.re, im: self.im + o.im }
    }

    pub(crate) fn sub(self, o: C) -> C {
        C { re: self.re - o.re, im: self.im - o.im }
    }

    pub(crate) fn mul(self, o: C) -> C {
        if self.im == 0.0 && o.im == 0.0 {
            return C::real(self.re * o.re);
        }
        C { re: self.re * o.re - self.im * o.im, im: self.re * o.im + self.im * o.re }
    }

    pub(crate) fn div(self, o: C) -> C {
        if self.im == 0.0 && o.im == 0.0 {
            return C::real(self.re / o.re);
        }
        let d = o.re * o.re + o.im * o.im;
        C { re: (self.re * o.re + self.im * o.im) / d, im: (self.im * o.re - self.re * o.im) / d }
    }

    pub(crate) fn neg(self) -> C {
        C { re: -self.re, im: -self.im }
    }

    fn exp(self) -> C {
        let m = self.re.exp();
        if self.im == 0.0 {
            return C::real(m);
        }
        C { re: m * self.im.cos(), im: m * self.im.sin() }
    }

    fn ln(self) -> C {
        if self.im == 0.0 && self.re > 0.0 {
            return C::real(self.re.ln());
        }
        C { re: self.abs().ln(), im: self.im.atan2(self.re) }
    }

    fn pow(self, e: C) -> C {
        if e.im == 0.0 && e.re.fract() == 0.0 && e.re.abs() <= 64.0 {
            let mut result = C::real(1.0);
            for _ in 0..e.re.abs() as u32 {
                result = result.mul(self);
            }
            return if e.re < 0.0 { C::real(1.0).div(result) } else { result };
        }
        if self.re == 0.0 && self.im == 0.0 {
            return C::real(if e.re > 0.0 { 0.0 } else { f64::NAN });
        }
        if self.im == 0.0 && e.im == 0.0 && self.re > 0.0 {
            return C::real(self.re.powf(e.re));
        }
        // Odd roots of negative reals stay real (`\sqrt[3]{x}^2` is `x^{2/3}` for every real x).
        if self.im == 0.0 && e.im == 0.0 && self.re < 0.0 {
            for q in [3.0_f64, 5.0, 7.0, 9.0, 11.0, 13.0, 15.0] {
                let p = e.re * q;
                if (p - p.round()).abs() < 1e-9 {
                    let magnitude = (-self.re).powf(e.re);
                    return C::real(if p.round() as i64 % 2 == 0 { magnitude } else { -magnitude });
                }
            }
        }
        e.mul(self.ln()).exp()
    }

    fn sqrt(self) -> C {
        if self.im == 0.0 && self.re >= 0.0 {
            return C::real(self.re.sqrt());
        }
        self.pow(C::real(0.5))
    }

    fn sin(self) -> C {
        C { re: self.re.sin() * self.im.cosh(), im: self.re.cos() * self.im.sinh() }
    }

    fn cos(self) -> C {
        C { re: self.re.cos() * self.im.cosh(), im: -self.re.sin() * self.im.sinh() }
    }

    fn real_only(self, f: impl Fn(f64) -> f64) -> Option<C> {
        (self.im.abs() < 1e-12).then(|| C::real(f(self.re)))
    }
}

/// Values of the free symbols at one sample point.
pub(crate) type Env = HashMap<String, C>;

/// The value of a closed expression as a real number (infinities allowed), for interval bounds.
pub(crate) fn real_constant(node: &Node) -> Option<f64> {
    let v = eval(node, &Env::new())?;
    (v.im.abs() <= 1e-12 * (1.0 + v.re.abs()) && !v.re.is_nan()).then_some(v.re)
}

pub(crate) fn eval(node: &Node, env: &Env) -> Option<C> {
    Some(match node {
        Node::Num(n) => C::real(n.to_f64()),
        Node::Sym(name) => *env.get(name)?,
        Node::Const(c) => match c {
            Const::Pi => C::real(std::f64::consts::PI),
            Const::E => C::real(std::f64::consts::E),
            Const::Infinity => C::real(f64::INFINITY),
        },
        Node::Add(terms) => terms.iter().try_fold(C::real(0.0), |acc, t| Some(acc.add(eval(t, env)?)))?,
        Node::Mul(factors) => factors.iter().try_fold(C::real(1.0), |acc, f| Some(acc.mul(eval(f, env)?)))?,
        Node::Div(a, b) => eval(a, env)?.div(eval(b, env)?),
        Node::Pow(a, b) => eval(a, env)?.pow(eval(b, env)?),
        Node::Neg(a) => eval(a, env)?.neg(),
        Node::Percent(a) => eval(a, env)?.div(C::real(100.0)),
        Node::Func(f, args) => eval_func(*f, args, env)?,
        Node::Apply(name, args) => {
            let values: Option<Vec<C>> = args.iter().map(|a| eval(a, env)).collect();
            unknown_function(name, &values?)
        }
        Node::Big { product, var, lo, hi, body } => {
            let lo = real_constant_in(lo, env)?.round();
            let hi = real_constant_in(hi, env)?.round();
            if !(lo.is_finite() && hi.is_finite()) || hi - lo > 10_000.0 {
                return None;
            }
            let mut scope = env.clone();
            let mut acc = C::real(if *product { 1.0 } else { 0.0 });
            let mut k = lo;
            while k <= hi {
                scope.insert(var.clone(), C::real(k));
                let v = eval(body, &scope)?;
                acc = if *product { acc.mul(v) } else { acc.add(v) };
                k += 1.0;
            }
            acc
        }
        _ => return None,
    })
}

fn real_constant_in(node: &Node, env: &Env) -> Option<f64> {
    let v = eval(node, env)?;
    (v.im.abs() < 1e-9).then_some(v.re)
}

fn eval_func(f: Func, args: &[Node], env: &Env) -> Option<C> {
    let x = eval(args.first()?, env)?;
    let second = || args.get(1).and_then(|a| eval(a, env));
    let one = C::real(1.0);
    Some(match f {
        Func::Sin => x.sin(),
        Func::Cos => x.cos(),
        Func::Tan => x.sin().div(x.cos()),
        Func::Sec => one.div(x.cos()),
        Func::Csc => one.div(x.sin()),
        Func::Cot => x.cos().div(x.sin()),
        Func::Asin => x.real_only(f64::asin)?,
        Func::Acos => x.real_only(f64::acos)?,
        Func::Atan => x.real_only(f64::atan)?,
        Func::Sinh => x.exp().sub(x.neg().exp()).div(C::real(2.0)),
        Func::Cosh => x.exp().add(x.neg().exp()).div(C::real(2.0)),
        Func::Tanh => x.exp().sub(x.neg().exp()).div(x.exp().add(x.neg().exp())),
        Func::Ln => x.ln(),
        Func::Log => x.ln().div(second()?.ln()),
        Func::Exp => x.exp(),
        Func::Sqrt => x.sqrt(),
        Func::Root => {
            let n = second()?;
            x.pow(one.div(n))
        }
        Func::Abs => C::real(x.abs()),
        Func::Floor => x.real_only(f64::floor)?,
        Func::Ceil => x.real_only(f64::ceil)?,
        Func::Factorial => x.real_only(|v| gamma(v + 1.0))?,
        Func::Binom => {
            let k = second()?;
            let (n, k) = (x.real_only(|v| v)?.re, k.real_only(|v| v)?.re);
            C::real(gamma(n + 1.0) / (gamma(k + 1.0) * gamma(n - k + 1.0)))
        }
        Func::Gcd | Func::Lcm => {
            let values: Option<Vec<i64>> =
                args.iter().map(|a| eval(a, env).filter(|v| v.im == 0.0 && v.re.fract() == 0.0).map(|v| v.re as i64)).collect();
            let values = values?;
            let gcd = |mut a: i64, mut b: i64| {
                while b != 0 {
                    (a, b) = (b, a % b);
                }
                a.abs()
            };
            let mut folded = *values.first()?;
            for &v in &values[1..] {
                folded = if f == Func::Gcd { gcd(folded, v) } else { (folded / gcd(folded, v).max(1)).checked_mul(v)?.abs() };
            }
            C::real(folded as f64)
        }
    })
}

/// An undefined function (`f(x)`) evaluated as a fixed smooth function chosen by its name, so
/// `f(x)` equals `f(x)` but not `f(y)` or `g(x)`.
fn unknown_function(name: &str, args: &[C]) -> C {
    let mut seed: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        seed = (seed ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    let mut rng = Rng(seed);
    args.iter().fold(C::real(rng.next_f64()), |acc, &a| {
        let scale = C::real(0.5 + rng.next_f64());
        let shift = C::real(rng.next_f64() * 3.0);
        acc.add(a.mul(scale).add(shift).sin())
    })
}

/// Lanczos coefficients (g = 7, n = 9).
const LANCZOS: [f64; 9] = [
    0.999_999_999_999_809_9,
    676.520_368_121_885_1,
    -1_259.139_216_722_402_8,
    771.323_428_777_653_1,
    -176.615_029_162_140_6,
    12.507_343_278_686_905,
    -0.138_571_095_265_720_12,
    9.984_369_578_019_572e-6,
    1.505_632_735_149_311_6e-7,
];

/// Lanczos approximation; exact enough that `5!` is 120 to ~1e-13.
pub(crate) fn gamma(x: f64) -> f64 {
    if x.fract() == 0.0 && x > 0.0 && x < 171.0 {
        return (1..x as u64).fold(1.0, |acc, k| acc * k as f64);
    }
    if x < 0.5 {
        return std::f64::consts::PI / ((std::f64::consts::PI * x).sin() * gamma(1.0 - x));
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let a = LANCZOS.iter().enumerate().skip(1).fold(LANCZOS[0], |acc, (i, g)| acc + g / (x + i as f64));
    (2.0 * std::f64::consts::PI).sqrt() * t.powf(x + 0.5) * (-t).exp() * a
}

/// A small deterministic generator: verdicts must not change from run to run.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Sample points for the given symbols: values of both signs away from 0 and ±1, where
/// coincidences (`x^2 = x`) would hide differences.
pub(crate) fn sample_points(symbols: &[String], count: usize) -> Vec<Env> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..count)
        .map(|i| {
            symbols
                .iter()
                .map(|s| {
                    let magnitude = 0.35 + 2.4 * rng.next_f64();
                    let sign = if i % 3 == 2 && rng.next_f64() < 0.7 { -1.0 } else { 1.0 };
                    (s.clone(), C::real(sign * magnitude))
                })
                .collect()
        })
        .collect()
}

/// Whether two values agree to about nine significant digits.
pub(crate) fn close(a: C, b: C) -> bool {
    let scale = a.abs().max(b.abs()).max(1.0);
    a.sub(b).abs() <= 1e-9 * scale
}

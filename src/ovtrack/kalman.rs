//! A constant-velocity Kalman filter on a box, as SORT and ByteTrack use it: the state is
//! `[cx, cy, a, h, vcx, vcy, va, vh]` (centre, aspect w/h, height and their velocities per
//! frame), the measurement `[cx, cy, a, h]`; the noise scales with the box's height
//! (ByteTrack's weights 1/20 for position, 1/160 for velocity). Small fixed-size matrices, f64.

// Matrix code reads best with the indices of the formulas.
#![allow(clippy::needless_range_loop)]

type Vec8 = [f64; 8];
type Mat8 = [[f64; 8]; 8];
type Mat4 = [[f64; 4]; 4];

const STD_POSITION: f64 = 1.0 / 20.0;
const STD_VELOCITY: f64 = 1.0 / 160.0;

/// The filter's state of one track.
#[derive(Debug, Clone, PartialEq)]
pub struct KalmanBox {
    mean: Vec8,
    cov: Mat8,
}

fn diag8(d: Vec8) -> Mat8 {
    let mut m = [[0.0; 8]; 8];
    for (i, v) in d.iter().enumerate() {
        m[i][i] = *v;
    }
    m
}

/// The inverse of a 4x4 matrix by Gauss-Jordan elimination with partial pivoting; `None` when it
/// is singular or not finite.
pub fn invert4(m: &Mat4) -> Option<Mat4> {
    let mut a = *m;
    let mut inv = [[0.0; 4]; 4];
    for (i, row) in inv.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    for col in 0..4 {
        let pivot = (col..4).max_by(|&x, &y| a[x][col].abs().total_cmp(&a[y][col].abs()))?;
        let p = a[pivot][col];
        if !p.is_finite() || p.abs() < 1e-300 {
            return None;
        }
        a.swap(col, pivot);
        inv.swap(col, pivot);
        for j in 0..4 {
            a[col][j] /= p;
            inv[col][j] /= p;
        }
        for r in 0..4 {
            if r != col {
                let f = a[r][col];
                for j in 0..4 {
                    a[r][j] -= f * a[col][j];
                    inv[r][j] -= f * inv[col][j];
                }
            }
        }
    }
    inv.iter().flatten().all(|v| v.is_finite()).then_some(inv)
}

impl KalmanBox {
    /// A track starting at measurement `z` (`[cx, cy, a, h]`), at rest.
    pub fn new(z: [f64; 4]) -> KalmanBox {
        let h = z[3];
        let (p, v) = (2.0 * STD_POSITION * h, 10.0 * STD_VELOCITY * h);
        let std = [p, p, 1e-2, p, v, v, 1e-5, v];
        KalmanBox {
            mean: [z[0], z[1], z[2], z[3], 0.0, 0.0, 0.0, 0.0],
            cov: diag8(std.map(|s| s * s)),
        }
    }

    /// The measurement part of the state: `[cx, cy, a, h]`.
    pub fn measurement(&self) -> [f64; 4] {
        [self.mean[0], self.mean[1], self.mean[2], self.mean[3]]
    }

    /// The velocity part of the state, per frame.
    pub fn velocity(&self) -> [f64; 4] {
        [self.mean[4], self.mean[5], self.mean[6], self.mean[7]]
    }

    /// One frame ahead: x' = F x, P' = F P Fᵀ + Q (F adds each velocity to its value).
    pub fn predict(&mut self) {
        let h = self.mean[3];
        let (p, v) = (STD_POSITION * h, STD_VELOCITY * h);
        let q = [p, p, 1e-2, p, v, v, 1e-5, v].map(|s| s * s);
        for i in 0..4 {
            self.mean[i] += self.mean[i + 4];
        }
        // F P: row i (< 4) gets row i + 4 added; then (F P) Fᵀ: column j (< 4) gets column j + 4.
        let mut fp = self.cov;
        for i in 0..4 {
            for j in 0..8 {
                fp[i][j] += self.cov[i + 4][j];
            }
        }
        let mut fpf = fp;
        for row in fpf.iter_mut() {
            for j in 0..4 {
                row[j] += row[j + 4];
            }
        }
        for (i, qi) in q.iter().enumerate() {
            fpf[i][i] += qi;
        }
        self.cov = fpf;
    }

    /// Corrects the state with measurement `z`: K = P Hᵀ S⁻¹ with S = H P Hᵀ + R,
    /// x += K (z − H x), P −= K S Kᵀ. A singular S (a degenerate state) restarts the filter at `z`.
    pub fn update(&mut self, z: [f64; 4]) {
        let h = self.mean[3];
        let p = STD_POSITION * h;
        let r = [p, p, 1e-1, p].map(|s| s * s);
        let mut s = [[0.0; 4]; 4];
        for i in 0..4 {
            for j in 0..4 {
                s[i][j] = self.cov[i][j];
            }
            s[i][i] += r[i];
        }
        let Some(s_inv) = invert4(&s) else {
            *self = KalmanBox::new(z);
            return;
        };
        // P Hᵀ is the first four columns of P.
        let mut k = [[0.0; 4]; 8];
        for (i, row) in k.iter_mut().enumerate() {
            for (j, kij) in row.iter_mut().enumerate() {
                *kij = (0..4).map(|l| self.cov[i][l] * s_inv[l][j]).sum();
            }
        }
        let innovation: Vec<f64> = (0..4).map(|i| z[i] - self.mean[i]).collect();
        for (i, row) in k.iter().enumerate() {
            self.mean[i] += (0..4).map(|j| row[j] * innovation[j]).sum::<f64>();
        }
        // K S Kᵀ = K (P Hᵀ)ᵀ = K H P: subtract K times the first four rows of P.
        let mut cov = self.cov;
        for (i, row) in cov.iter_mut().enumerate() {
            for (j, c) in row.iter_mut().enumerate() {
                *c -= (0..4).map(|l| k[i][l] * self.cov[l][j]).sum::<f64>();
            }
        }
        self.cov = cov;
        if !self.mean.iter().all(|v| v.is_finite()) {
            *self = KalmanBox::new(z);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_of_a_known_matrix() {
        let m = [
            [4.0, 1.0, 0.0, 0.0],
            [1.0, 3.0, 0.5, 0.0],
            [0.0, 0.5, 2.0, 0.1],
            [0.0, 0.0, 0.1, 1.0],
        ];
        let inv = invert4(&m).expect("invertible");
        for i in 0..4 {
            for j in 0..4 {
                let v: f64 = (0..4).map(|l| m[i][l] * inv[l][j]).sum();
                assert!((v - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
            }
        }
        assert!(invert4(&[[0.0; 4]; 4]).is_none());
        assert!(invert4(&[[f64::NAN; 4]; 4]).is_none());
    }

    #[test]
    fn learns_a_constant_velocity_and_predicts_ahead() {
        let z = |t: f64| [0.1 + 0.01 * t, 0.5 - 0.005 * t, 0.5, 0.2];
        let mut kf = KalmanBox::new(z(0.0));
        for t in 1..30 {
            kf.predict();
            kf.update(z(t as f64));
        }
        let v = kf.velocity();
        assert!((v[0] - 0.01).abs() < 1e-3, "{v:?}");
        assert!((v[1] + 0.005).abs() < 1e-3, "{v:?}");
        // Three frames without measurements follow the motion.
        for _ in 0..3 {
            kf.predict();
        }
        let m = kf.measurement();
        let want = z(32.0);
        for i in 0..4 {
            assert!((m[i] - want[i]).abs() < 2e-3, "{m:?} vs {want:?}");
        }
    }

    #[test]
    fn a_noisy_static_box_is_smoothed() {
        let mut kf = KalmanBox::new([0.5, 0.5, 1.0, 0.2]);
        let mut seed = 7u64;
        for _ in 0..50 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let noise = ((seed >> 33) as f64 / (1u64 << 31) as f64 - 0.5) * 0.02;
            kf.predict();
            kf.update([0.5 + noise, 0.5 - noise, 1.0, 0.2]);
        }
        let m = kf.measurement();
        assert!(
            (m[0] - 0.5).abs() < 0.01 && (m[1] - 0.5).abs() < 0.01,
            "{m:?}"
        );
    }
}

//! Matching tracks to detections on a cost matrix (rows: tracks, columns: detections), with a
//! gate: a pair costing more than `max_cost` (or a cost that is not finite) is never matched.

/// The cost a gated pair gets inside the Hungarian algorithm: more than any full assignment of
/// allowed pairs (costs are 1 − IoU, at most 1), so the fewest gated pairs are used first.
const GATED: f64 = 1e9;

fn allowed(c: f64, max_cost: f64) -> bool {
    c.is_finite() && c <= max_cost
}

/// Optimal assignment (Kuhn–Munkres, the O(n²m) potentials form): the most allowed pairs, and
/// among those the least total cost. Returns (row, column) pairs, rows in order.
pub fn hungarian(cost: &[Vec<f64>], max_cost: f64) -> Vec<(usize, usize)> {
    let rows = cost.len();
    let cols = cost.iter().map(Vec::len).min().unwrap_or(0);
    if rows == 0 || cols == 0 {
        return Vec::new();
    }
    let value = |r: usize, c: usize| {
        let v = cost[r][c];
        if allowed(v, max_cost) { v } else { GATED }
    };
    // The algorithm wants no more rows than columns: transpose when needed.
    let transposed = rows > cols;
    let (n, m) = if transposed {
        (cols, rows)
    } else {
        (rows, cols)
    };
    let a = |i: usize, j: usize| if transposed { value(j, i) } else { value(i, j) };
    let mut u = vec![0.0; n + 1];
    let mut v = vec![0.0; m + 1];
    let mut p = vec![0usize; m + 1];
    let mut way = vec![0usize; m + 1];
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0;
        let mut minv = vec![f64::INFINITY; m + 1];
        let mut used = vec![false; m + 1];
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0;
            for j in 1..=m {
                if !used[j] {
                    let cur = a(i0 - 1, j - 1) - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            if j1 == 0 {
                break; // cannot happen with finite costs; stops rather than loops
            }
            for j in 0..=m {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut pairs: Vec<(usize, usize)> = (1..=m)
        .filter(|&j| p[j] != 0)
        .map(|j| {
            if transposed {
                (j - 1, p[j] - 1)
            } else {
                (p[j] - 1, j - 1)
            }
        })
        .filter(|&(r, c)| allowed(cost[r][c], max_cost))
        .collect();
    pairs.sort_unstable();
    pairs
}

/// Greedy assignment: the cheapest allowed pair first, then the cheapest among the rest, and so
/// on (the classic IoU tracker's matching). Returns (row, column) pairs, rows in order.
pub fn greedy(cost: &[Vec<f64>], max_cost: f64) -> Vec<(usize, usize)> {
    let mut candidates: Vec<(f64, usize, usize)> = cost
        .iter()
        .enumerate()
        .flat_map(|(r, row)| row.iter().enumerate().map(move |(c, &v)| (v, r, c)))
        .filter(|&(v, _, _)| allowed(v, max_cost))
        .collect();
    candidates.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut row_used = vec![false; cost.len()];
    let mut col_used = vec![false; cost.iter().map(Vec::len).max().unwrap_or(0)];
    let mut pairs = Vec::new();
    for (_, r, c) in candidates {
        if !row_used[r] && !col_used[c] {
            row_used[r] = true;
            col_used[c] = true;
            pairs.push((r, c));
        }
    }
    pairs.sort_unstable();
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The best assignment by trying all: (most allowed pairs, least cost).
    fn brute(cost: &[Vec<f64>], max_cost: f64) -> (usize, f64) {
        fn go(
            cost: &[Vec<f64>],
            max_cost: f64,
            r: usize,
            used: &mut Vec<bool>,
            acc: (usize, f64),
            best: &mut (usize, f64),
        ) {
            if r == cost.len() {
                if acc.0 > best.0 || (acc.0 == best.0 && acc.1 < best.1 - 1e-12) {
                    *best = acc;
                }
                return;
            }
            go(cost, max_cost, r + 1, used, acc, best);
            for c in 0..used.len() {
                if !used[c] && allowed(cost[r][c], max_cost) {
                    used[c] = true;
                    go(
                        cost,
                        max_cost,
                        r + 1,
                        used,
                        (acc.0 + 1, acc.1 + cost[r][c]),
                        best,
                    );
                    used[c] = false;
                }
            }
        }
        let cols = cost.first().map_or(0, Vec::len);
        let mut best = (0, 0.0);
        go(
            cost,
            max_cost,
            0,
            &mut vec![false; cols],
            (0, 0.0),
            &mut best,
        );
        best
    }

    fn score(cost: &[Vec<f64>], pairs: &[(usize, usize)]) -> (usize, f64) {
        (pairs.len(), pairs.iter().map(|&(r, c)| cost[r][c]).sum())
    }

    fn valid(pairs: &[(usize, usize)], cost: &[Vec<f64>], max_cost: f64) {
        let mut rows: Vec<usize> = pairs.iter().map(|p| p.0).collect();
        let mut cols: Vec<usize> = pairs.iter().map(|p| p.1).collect();
        rows.dedup();
        cols.sort_unstable();
        cols.dedup();
        assert_eq!(rows.len(), pairs.len());
        assert_eq!(cols.len(), pairs.len());
        assert!(pairs.iter().all(|&(r, c)| allowed(cost[r][c], max_cost)));
    }

    #[test]
    fn hungarian_is_optimal_on_random_matrices() {
        let mut seed = 12345u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        for case in 0..400 {
            let rows = 1 + (next() * 5.0) as usize;
            let cols = 1 + (next() * 5.0) as usize;
            let cost: Vec<Vec<f64>> = (0..rows)
                .map(|_| {
                    (0..cols)
                        .map(|_| if next() < 0.1 { f64::INFINITY } else { next() })
                        .collect()
                })
                .collect();
            let max_cost = 0.7;
            let pairs = hungarian(&cost, max_cost);
            valid(&pairs, &cost, max_cost);
            let (n, c) = score(&cost, &pairs);
            let (bn, bc) = brute(&cost, max_cost);
            assert_eq!(n, bn, "case {case}: {cost:?}");
            assert!((c - bc).abs() < 1e-9, "case {case}: {c} vs {bc}: {cost:?}");
            let g = greedy(&cost, max_cost);
            valid(&g, &cost, max_cost);
        }
    }

    #[test]
    fn hungarian_beats_greedy_where_greedy_is_short_sighted() {
        // Greedy takes (0,0) at 0.1 and then must pay 0.9; the optimum pays 0.2 + 0.2.
        let cost = vec![vec![0.1, 0.2], vec![0.2, 0.9]];
        assert_eq!(hungarian(&cost, 1.0), vec![(0, 1), (1, 0)]);
        assert_eq!(greedy(&cost, 1.0), vec![(0, 0), (1, 1)]);
        // The gate removes the expensive pair.
        assert_eq!(greedy(&cost, 0.5), vec![(0, 0)]);
        assert!(hungarian(&[], 1.0).is_empty());
        assert!(hungarian(&[vec![], vec![]], 1.0).is_empty());
        assert!(hungarian(&[vec![f64::NAN]], 1.0).is_empty());
    }
}

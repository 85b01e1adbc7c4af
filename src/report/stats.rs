//! Per-request statistics of spend rows: p50, p95 and the maximum of cost and tokens
//! per request, exact (nearest rank over the stored events, so each figure is a request
//! that happened).

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Serialize;

use super::for_each_event;
use super::params::SpendRequest;
use super::spend::group_values;
use crate::pricing::PriceOutcome;
use crate::store::{Store, StoreError};

/// p50, p95 and the maximum of a group's per-request values (nearest rank: each is a
/// value some request really had).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Spread<T> {
    pub p50: T,
    pub p95: T,
    pub max: T,
}

impl<T: Ord + Copy> Spread<T> {
    fn of(mut values: Vec<T>) -> Option<Spread<T>> {
        if values.is_empty() {
            return None;
        }
        values.sort_unstable();
        let rank = |q: usize| values[(values.len() * q).div_ceil(100).max(1) - 1];
        Some(Spread {
            p50: rank(50),
            p95: rank(95),
            max: *values.last()?,
        })
    }
}

/// Per-request statistics of one spend row.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestStats {
    /// Over priced requests; `None` when the group has none.
    pub cost: Option<Spread<Decimal>>,
    /// All six buckets of each request.
    pub tokens: Spread<u64>,
}

/// Cost and tokens per request for each row of `request`, keyed like the spend rows (the
/// group values in `group_by` order). Exact, from the stored events: it reads every event
/// of the range, so it costs what a what-if costs.
pub async fn request_stats(
    store: &dyn Store,
    request: &SpendRequest,
) -> Result<BTreeMap<Vec<String>, RequestStats>, StoreError> {
    let mut groups: BTreeMap<Vec<String>, (Vec<Decimal>, Vec<u64>)> = BTreeMap::new();
    for_each_event(store, request, |event| {
        let key = group_values(request, &event);
        let (costs, tokens) = groups.entry(key).or_default();
        if let PriceOutcome::Priced(p) = &event.price {
            costs.push(p.cost);
        }
        tokens.push(event.record.tokens.total());
    })
    .await?;
    Ok(groups
        .into_iter()
        .filter_map(|(key, (costs, tokens))| {
            Some((
                key,
                RequestStats {
                    cost: Spread::of(costs),
                    tokens: Spread::of(tokens)?,
                },
            ))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::Spread;

    #[test]
    fn percentiles_are_nearest_rank_values() {
        let table: [(Vec<u64>, (u64, u64, u64)); 4] = [
            (vec![7], (7, 7, 7)),
            (vec![2, 1], (1, 2, 2)),
            ((1..=100).rev().collect(), (50, 95, 100)),
            ((1..=20).collect(), (10, 19, 20)),
        ];
        for (values, (p50, p95, max)) in table {
            assert_eq!(
                Spread::of(values.clone()),
                Some(Spread { p50, p95, max }),
                "{values:?}"
            );
        }
        assert_eq!(Spread::<u64>::of(vec![]), None);
    }
}

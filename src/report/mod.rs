//! The read side: everything llm-meter answers about stored usage. Spend (grouped,
//! bucketed in a timezone, split by token type), savings, what-if and routing advice,
//! per-request statistics, the FinOps FOCUS export, and the values of the store-derived
//! gauges. Parameters are parsed and validated in `params`, calendars in `calendar`,
//! and tables and CSV written in `render`; the API, the CLI and the metrics all call in
//! here, so they answer alike.
//!
//! Reads come from the rollups wherever the question allows; what-ifs, routing advice
//! and per-request statistics walk the events an hour at a time (`for_each_event`).

pub mod calendar;
pub mod focus;
pub mod gauges;
pub mod headroom;
pub mod params;
pub mod render;
pub mod savings;
pub mod spend;
pub mod stats;
pub mod whatif;

use crate::prepare::PricedRecord;
use crate::store::{EventScan, Store, StoreError, event_windows};

use params::SpendRequest;

/// Calls `visit` with every stored event of the request's range and filter, an hour's
/// worth at a time, reading only the hours that hold usage (a long range with little in it
/// stays cheap).
pub(crate) async fn for_each_event(
    store: &dyn Store,
    request: &SpendRequest,
    mut visit: impl FnMut(PricedRecord),
) -> Result<(), StoreError> {
    for (from, to) in event_windows(store, request.from, request.to, &request.filter).await? {
        let scan = EventScan {
            from,
            to,
            filter: request.filter.clone(),
        };
        for event in store.events(&scan).await? {
            visit(event);
        }
    }
    Ok(())
}

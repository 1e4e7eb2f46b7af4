//! Pagination of long histories (clause 6.3.10, temporal pagination): an answer holds
//! at most a limit of instances per attribute series; when a series has more, the
//! answer is cut at one instant for every series alike, so that it is complete up to
//! that instant, and the `Content-Range: date-time <start>-<end>/<size>` header says
//! which span it covers. The client asks for the next page with `timeAt` at `end`.
//!
//! Without `lastN` pages run forward in time (oldest first); with `lastN` they run
//! backwards from the most recent instance, and the size is `lastN`.

use super::query::TemporalQuery;
use super::TemporalInstance;
use crate::context::format_time;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// The span a cut answer covers (`Content-Range` of a 206 answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// `lastN` when given, else unknown (`*`).
    pub size: Option<usize>,
}

impl ContentRange {
    /// The header value: `date-time 2024-04-01T00:00:00Z-2024-04-02T00:00:00Z/*`.
    pub fn header_value(&self) -> String {
        let size = self.size.map_or_else(|| "*".to_owned(), |n| n.to_string());
        format!(
            "date-time {}-{}/{size}",
            format_time(&self.start),
            format_time(&self.end)
        )
    }
}

/// Cuts the selected histories of one or more entities (each in ascending time, as
/// [`TemporalQuery::select`] and the stores give them) so that no attribute series
/// holds more than `limit` instances, all series cut at the same instant. Returns the
/// range of the cut answer, or `None` when nothing had to be cut.
pub fn paginate(
    histories: &mut [Vec<TemporalInstance>],
    query: &TemporalQuery,
    limit: usize,
) -> Option<ContentRange> {
    let property = query.time_property;
    let backwards = query.last_n.is_some();
    // Series are told apart by entity (its index), attribute name and dataset id.
    type SeriesKey<'a> = (usize, &'a str, Option<&'a str>);
    let mut series: HashMap<SeriesKey, Vec<DateTime<Utc>>> = HashMap::new();
    for (entity, history) in histories.iter().enumerate() {
        for instance in history {
            if let Some(time) = instance.time(property) {
                let key = (
                    entity,
                    instance.name.as_str(),
                    instance.attribute.dataset_id.as_deref(),
                );
                series.entry(key).or_default().push(time);
            }
        }
    }
    let limit = limit.max(1);
    let cuts = series
        .values()
        .filter(|times| times.len() > limit)
        .map(|times| {
            if backwards {
                times[times.len() - limit]
            } else {
                times[limit - 1]
            }
        });
    let cut = if backwards { cuts.max()? } else { cuts.min()? };
    let kept = |t: DateTime<Utc>| if backwards { t >= cut } else { t <= cut };
    for history in histories.iter_mut() {
        history.retain(|i| i.time(property).is_some_and(kept));
    }
    let times = || histories.iter().flatten().filter_map(|i| i.time(property));
    let window = query.timerel;
    let range = if backwards {
        ContentRange {
            start: window
                .and_then(|w| w.end())
                .or_else(|| times().max())
                .unwrap_or(cut),
            end: cut,
            size: query.last_n,
        }
    } else {
        ContentRange {
            start: window
                .and_then(|w| w.start())
                .or_else(|| times().min())
                .unwrap_or(cut),
            end: cut,
            size: None,
        }
    };
    Some(range)
}

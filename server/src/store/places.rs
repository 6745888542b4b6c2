//! 每月一题: the reports of each category at each building, to flag a recurring problem when it
//! is reported. Rebuilt from the audit rows at start; owned by the committer, which drops a
//! report that is cancelled, so a flag is decided from memory alone.

use std::collections::HashMap;

use hongfan_shared::audit::AuditRow;
use hongfan_shared::{CategoryId, CompoundId, IncidentId, Report, Timestamp};

/// The most earlier reports a flag names (the latest ones): a place reported every day does not
/// make every new report carry its whole history.
pub(super) const MAX_EARLIER: usize = 10;

type Place = (CompoundId, String, CategoryId);

#[derive(Debug, Default)]
pub(super) struct Places {
    /// Reports at each place that are not cancelled, oldest first.
    reports: HashMap<Place, Vec<(Timestamp, IncidentId)>>,
}

fn place(compound: &CompoundId, building: &str, category: &CategoryId) -> Option<Place> {
    let building = building.trim();
    (!building.is_empty()).then(|| (compound.clone(), building.to_owned(), category.clone()))
}

fn place_of(report: &Report) -> Option<Place> {
    place(&report.compound, &report.building, &report.category)
}

impl Places {
    pub(super) fn from_rows(rows: &[AuditRow]) -> Places {
        let mut places = Places::default();
        for row in rows.iter().filter(|r| !r.status.is_withdrawn()) {
            if let Some(at) = place(&row.compound, &row.building, &row.category) {
                places.reports.entry(at).or_default().push((row.reported_at, row.id));
            }
        }
        places
    }

    pub(super) fn add(&mut self, report: &Report, at: Timestamp, id: IncidentId) {
        if let Some(place) = place_of(report) {
            self.reports.entry(place).or_default().push((at, id));
        }
    }

    /// A cancelled report (a duplicate, a mistake) no longer counts.
    pub(super) fn cancel(&mut self, report: &Report, id: IncidentId) {
        if let Some(list) = place_of(report).and_then(|p| self.reports.get_mut(&p)) {
            list.retain(|(_, i)| *i != id);
        }
    }

    /// The earlier reports that, with `report`, make `count` at its place since `since`: the
    /// latest `MAX_EARLIER` of them, oldest first; empty when there are fewer. Reads from the
    /// newest back, so a busy place costs no more than a quiet one.
    pub(super) fn recurring(
        &self,
        report: &Report,
        since: Timestamp,
        count: usize,
    ) -> Vec<IncidentId> {
        let Some(list) = place_of(report).and_then(|p| self.reports.get(&p)) else {
            return Vec::new();
        };
        let mut earlier: Vec<IncidentId> = list
            .iter()
            .rev()
            .take_while(|(at, _)| *at >= since)
            .take(MAX_EARLIER)
            .map(|(_, id)| *id)
            .collect();
        if earlier.len() + 1 < count {
            return Vec::new();
        }
        earlier.reverse();
        earlier
    }
}

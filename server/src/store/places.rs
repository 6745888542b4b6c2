//! 每月一题: the reports of each category at each building, to flag a recurring problem when it
//! is reported. Rebuilt from the audit rows at start; owned by the committer.

use std::collections::HashMap;

use hongfan_shared::audit::AuditRow;
use hongfan_shared::{CategoryId, CompoundId, IncidentId, Report, Status, Timestamp};

type Place = (CompoundId, String, CategoryId);

#[derive(Debug, Default)]
pub(super) struct Places {
    /// Reports at each place, oldest first.
    reports: HashMap<Place, Vec<(Timestamp, IncidentId)>>,
}

fn place_of(report: &Report) -> Option<Place> {
    let building = report.building.trim();
    (!building.is_empty())
        .then(|| (report.compound.clone(), building.to_owned(), report.category.clone()))
}

impl Places {
    pub(super) fn from_rows(rows: &[AuditRow]) -> Places {
        let mut places = Places::default();
        for row in rows.iter().filter(|r| r.status != Status::Cancelled) {
            let building = row.building.trim();
            if !building.is_empty() {
                let place = (row.compound.clone(), building.to_owned(), row.category.clone());
                places.reports.entry(place).or_default().push((row.reported_at, row.id));
            }
        }
        places
    }

    pub(super) fn add(&mut self, report: &Report, at: Timestamp, id: IncidentId) {
        if let Some(place) = place_of(report) {
            self.reports.entry(place).or_default().push((at, id));
        }
    }

    /// The reports at `report`'s place since `since`, oldest first (some may have been
    /// cancelled since: the committer looks).
    pub(super) fn since(&self, report: &Report, since: Timestamp) -> Vec<IncidentId> {
        let Some(list) = place_of(report).and_then(|p| self.reports.get(&p)) else {
            return Vec::new();
        };
        list.iter().filter(|(at, _)| *at >= since).map(|(_, id)| *id).collect()
    }
}
